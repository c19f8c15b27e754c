# Uni-AdaFocus, MobileNet-V2 (f_G, 224 px full frames) + ResNet-50 (f_L, P x P patches), both ImageNet
# pre-trained; T_0 = 48 candidates, T_G = 16 glance frames, T_L = 16 focus frames (spec §2.7, §5.1).
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='UniAdaFocus',
    backbone=dict(type='MobileNetV2', pretrained='mmcls://mobilenet_v2'),
    local_backbone=dict(type='ResNet', depth=50, pretrained='torchvision://resnet50'),
    num_classes=200,
    global_channels=1280, local_channels=2048, feature_size=7,
    num_candidates=48, num_glance=16, num_focus=16,
    patch_size=128, min_box_size=96,
    spatial_hidden=128, temporal_hidden=64, fusion_hidden=4096, dropout=0.2,
    size_reg=1.0, temporal_loss='expected_ce', num_mc_samples=128,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))

# Learning rates per component, relative to f_L's base rate (spec §3.5): f_G, FC_G, FC_Aux x0.5;
# both policy branches x0.2; f_C x20; FC_L x1; weight decay on all groups.
paramwise_cfg = dict(custom_keys={
    'local_backbone': dict(lr_mult=1.0),
    'backbone': dict(lr_mult=0.5),
    'fc_global': dict(lr_mult=0.5),
    'fc_aux': dict(lr_mult=0.5),
    'fc_local': dict(lr_mult=1.0),
    'spatial_policy': dict(lr_mult=0.2),
    'temporal_policy': dict(lr_mult=0.2),
    'fusion_head': dict(lr_mult=20.0),
})
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=2e-4),
    paramwise_cfg=paramwise_cfg)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=50, by_epoch=True, begin=0, end=50)]
# validation every 5 epochs and every epoch in the last 10; the best checkpoint is kept
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=50, val_interval=5,
                 dynamic_intervals=[(40, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# the papers' total batch (ActivityNet: 32) on 4 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=32)
# `tools/test.py CONFIG CKPT --budget B ...`: thresholds fitted on the training set (with the training
# pipeline), entropy confidence, the 19 geometric operating points of the paper (spec §4.2)
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='mAP')]
