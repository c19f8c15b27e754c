# Uni-AdaFocus-TSM: TSM-MobileNet-V2 (f_G, 8 glance frames) + TSM-ResNet-50 (f_L, T_L focus frames,
# shift_div 8, blockres, no partial BN), one box per video, FC + averaging, ImageNet initialisation
# (spec §2.6-2.7, §3.5). The T_L-dependent parts (num_segments of f_L, the sampler) are set per config.
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='UniAdaFocusTSM',
    backbone=dict(type='MobileNetV2TSM', num_segments=8, shift_div=8, is_shift=True,
                  pretrained='mmcls://mobilenet_v2'),
    local_backbone=dict(type='ResNetTSM', depth=50, num_segments=12, shift_div=8,
                        shift_place='blockres', pretrained='torchvision://resnet50'),
    num_classes=174, global_channels=1280, local_channels=2048, feature_size=7,
    num_glance=8, num_candidates=36, num_focus=12, patch_size=128, min_box_size=96,
    spatial_hidden=128, temporal_hidden=64, dropout=0.5, size_reg=0.5,
    temporal_loss='expected_ce', num_mc_samples=128,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
# f_L 0.02; f_G, FC_G, FC_Aux 0.01; policy 0.004; FC_L 0.02 (f_C = FC_G + FC_L); clip grads at 20
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-3),
    clip_grad=dict(max_norm=20, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),
        'fc_aux': dict(lr_mult=0.5),
        'fc_local': dict(lr_mult=1.0),
        'spatial_policy': dict(lr_mult=0.2),
        'temporal_policy': dict(lr_mult=0.2),
    }))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=50, by_epoch=True, begin=0, end=50)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=50, val_interval=5,
                 dynamic_intervals=[(40, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)
# two exits: the glance alone, or the glance plus f_L (conditional exit = running f_L at all)
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
