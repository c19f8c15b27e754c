# AdaFocusV2-TSM (official `Experiments on Sth-Sth and Jester`): TSM-MobileNet-V2 (f_G) on T_G = 8 glance
# frames, one patch location per video from a policy over all 8 glance maps, the same P x P patch on the
# T_L = int(1.5 T_G) = 12 focus frames (sampled independently of the glance frames) for a TSM-ResNet-50
# (f_L; shift_div 8, blockres, no partial BN: `--npb`); prediction = avg new_fc(glance) + avg new_fc(focus).
# Released recipe (README command): SGD lr 0.01, momentum 0.9, wd 5e-4, batch 32, cosine 50 epochs, clip
# grads at 20 (`--gd 20`), dropout 0.5; lr x0.5 for f_G and its heads (`--global_lr_ratio 0.5`), x0.01 for
# the policy (`--stn_lr_ratio 0.01`), x1 for f_L and its heads; weight decay on every parameter.
# Data: Sth-Sth V1 by default (the V2 / Jester configs swap the data fields); P is set per config.
_base_ = ['./tsm_sthv1.py']
num_glance = 8
num_focus = 12
model = dict(
    _delete_=True,
    type='AdaFocusV2TSM',
    backbone=dict(type='MobileNetV2TSM', num_segments=num_glance, shift_div=8, is_shift=True,
                  pretrained='mmcls://mobilenet_v2'),
    local_backbone=dict(type='ResNetTSM', depth=50, num_segments=num_focus, shift_div=8,
                        shift_place='blockres', pretrained='torchvision://resnet50'),
    num_classes=174, global_channels=1280, local_channels=2048, feature_size=7,
    num_glance=num_glance, num_focus=num_focus, patch_size=128, policy_hidden=(1024, 512),
    policy_mid_channels=64, dropout=0.5,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=20, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'fc_local': dict(lr_mult=1.0),  # fc_local and fc_local_frame
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),  # fc_global and fc_global_frame
        'policy': dict(lr_mult=0.01),
    }))
auto_scale_lr = dict(enable=False, base_batch_size=32)
# a glance clip of 8 TSN segments and a focus clip of 12, sampled independently (tsm_rawframes.py)
train_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.train_pipeline_t12}}))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.test_pipeline_t12}}))
test_dataloader = val_dataloader
