# AdaFocusV2 scaled down for the demo videos on CPU: all 16 frames glanced at 112 px by a half-width
# MobileNet-V2 (up to stride 16: 7 x 7 maps), one 32 x 32 patch per frame for a 1/4-width ResNet-18.
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/demo_video.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='AdaFocusV2',
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5, out_indices=(4, )),
    local_backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16, base_channels=16,
                        out_indices=(3, )),
    num_classes={{_base_.num_classes}}, global_channels=48, local_channels=128, feature_size=7,
    num_frames={{_base_.num_candidates}}, patch_size=32, policy_hidden=64, fusion_hidden=256,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),
        'policy': dict(lr_mult=0.1),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=30, eta_min=1e-5),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
randomness = dict(seed=0)
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
# the glance encoder stops at stride 16 (out_indices=(4, )): its later stages are removed when the
# model is built (drop_unused_stages), so every parameter takes part in the loss
