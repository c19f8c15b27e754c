# Uni-AdaFocus on the 64 px demo videos (_base_/demo_video_card64.py) with pre-trained encoders: both
# start from the demo's stand-in for ImageNet pre-training, a ResNet-18 at 1/4 width trained on 32 px
# crops around the digit card (configs/demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py; train it first:
# its checkpoint is `stage_inputs.pretrained` below).
# f_G: that network with its last stage dilated instead of strided (4 x 4 maps of 128 channels on the
# whole 64 px glance frames); f_L: the network on P = 32 patches, whose 14 px card then has the scale of
# the pre-training when the box is 32 px. T_0 = 16 candidates, T_G = 8 glance frames (every 3-frame run
# of the digit contains one at test), T_L = 4 focus frames, boxes of 32..64 px.
# The equal-cost baseline (random P x P patches, uniform frames, no policy) is
# uniadafocus_r18w16-pre-p32-8+4_random-uniform_1xb8-10e_demo-video.py; results in README.md.
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/demo_video_card64.py']
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.utils.stage_inputs'],
                      allow_failed_imports=False)
# The stand-in's checkpoint, resolved when the run starts (after --cfg-options; mmdynamic/utils/
# stage_inputs.py): --cfg-options stage_inputs.pretrained=PATH changes both uses, and a missing file
# fails before training.
runner_type = 'StageInputsRunner'
stage_inputs = dict(pretrained='work_dirs/resnet18w16_card-crops_1xb32-20e_demo-cls/epoch_20.pth')
model = dict(
    type='UniAdaFocus',
    backbone=dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, ), stem_channels=16,
                  base_channels=16, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                  init_cfg=dict(type='Pretrained', checkpoint='${pretrained}', prefix='backbone.')),
    local_backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16, base_channels=16,
                        out_indices=(3, ),
                        init_cfg=dict(type='Pretrained', checkpoint='${pretrained}',
                                      prefix='backbone.')),
    num_classes={{_base_.num_classes}},
    global_channels=128, local_channels=128, feature_size=4, glance_size=None,
    num_candidates={{_base_.num_candidates}}, num_glance=8, num_focus=4,
    patch_size=32, min_box_size=32,
    spatial_hidden=32, temporal_hidden=16, fusion_hidden=256, dropout=0.2,
    # alpha = 0: the smallest box (min_box_size = P, the scale of the pre-training) is the collapse
    # that the size regulariser guards against on the real datasets, and the one the demo needs
    size_reg=0.0, temporal_loss='expected_ce', num_mc_samples=128,
    # without the diversity branch (a second f_L/f_C pass on random patches, averaged with the
    # policy's): on the demo random patches rarely hold the digit and teach f_C to ignore f_L
    # (60 vs 56 % top-1 on the validation videos with it; README.md)
    random_patch_branch=False,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=0.1),  # pre-trained encoders: fine-tuned gently
        'backbone': dict(lr_mult=0.1),
    }))
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, eta_min=1e-5),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1))
randomness = dict(seed=0)
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
