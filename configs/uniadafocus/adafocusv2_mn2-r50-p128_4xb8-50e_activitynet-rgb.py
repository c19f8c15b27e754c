# AdaFocusV2 (128²) on ActivityNet v1.3: 16 uniformly sampled frames, MobileNet-V2 on every full frame,
# a recurrent policy places one 128 x 128 patch per frame for ResNet-50 (paper mAP 79.0, Table 3;
# released 27.0 GFLOPs). Released recipe: batch 32, lr 0.002, wd 1e-4, f_G x0.5, policy x0.1, f_C x5.
# Frames are processed in the official `--sample` order [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10,
# 12, 14] (frame_order='bisection'; the pipeline keeps temporal order): the GRU, the patches and the
# exits depend on it, so converted official checkpoints need it.
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/rawframes_t48.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
num_frames = 16
model = dict(
    type='AdaFocusV2',
    backbone=dict(type='MobileNetV2', pretrained='mmcls://mobilenet_v2'),
    local_backbone=dict(type='ResNet', depth=50, pretrained='torchvision://resnet50'),
    num_classes=200, global_channels=1280, local_channels=2048, feature_size=7,
    num_frames=num_frames, patch_size=128, frame_order='bisection', policy_hidden=2048,
    fusion_hidden=4096, dropout=0.2,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
# 16 TSN segments instead of the 48 candidates of Uni-AdaFocus; same augmentation
train_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_frames),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_frames, test_mode=True),
    dict(type='RawFrameDecode'),
    # the official test frames: short side 256 with PIL's bilinear filter, torchvision's centre crop
    dict(type='PillowResize', scale=(-1, 256), interpolation='bilinear'),
    dict(type='TSNCenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),
        'policy': dict(lr_mult=0.1),
        'fusion_head': dict(lr_mult=5.0),
    }))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=50, by_epoch=True, begin=0, end=50)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=50, val_interval=5,
                 dynamic_intervals=[(40, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='mAP')]
