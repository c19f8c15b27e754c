# Uni-AdaFocus-X3D (128², 16+32) on Kinetics-400: paper top-1 75.3 (1 crop) / 76.6 (3 crops) at 8.8 GFLOPs
# per view w/o sample-wise dynamic; 75.0 / 76.2 at 4.9 with it (Table 5). X3D-S reads 16 glance frames at
# 160 px, X3D-L 32 of 96 focus candidates as 128 px crops of one box per video; heads summed.
# Initialise both encoders from the official X3D-S / X3D-L Kinetics weights (converted to mmaction2's X3D
# keys), e.g. backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')).
# Input as the official code: RGB, ImageNet mean/std (main.py normalises with X3D.input_mean/std, set to
# ImageNet's in archs/x3d_video_model_builder.py). Single-crop test; the official 3-crop test (three
# views, raw logits averaged) is the _3crop config.
_base_ = ['mmaction::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='UniAdaFocusX3D',
    backbone=dict(type='X3D', gamma_w=1, gamma_b=2.25, gamma_d=2.2),   # X3D-S
    local_backbone=dict(type='X3D', gamma_w=1, gamma_b=2.25, gamma_d=5.0),  # X3D-L
    num_classes=400, global_channels=432, local_channels=432, feature_size=5, glance_size=160,
    num_glance=16, num_candidates=96, num_focus=32, patch_size=128, min_box_size=96,
    head_channels=2048, spatial_hidden=128, temporal_hidden=64, dropout=0.5, size_reg=0.5,
    temporal_loss='expected_ce', num_mc_samples=128,
    view_average='logits',  # multi-view (3-crop) tests average the raw logits, as the official code
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))

data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=16, num_candidates=96),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=16, num_candidates=96, test_mode=True),
    dict(type='DecordDecode'),
    # as the official test: short side 256 with PIL's bilinear filter (mmaction2's Resize uses
    # OpenCV), torchvision's centre crop (mmaction2's CenterCrop rounds the offset down)
    dict(type='PillowResize', scale=(-1, 256), interpolation='bilinear'),
    dict(type='TSNCenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VideoDataset', ann_file='data/kinetics400/kinetics400_train_list_videos.txt',
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file='data/kinetics400/kinetics400_val_list_videos.txt',
                 data_prefix=dict(video=data_root_val), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='AccMetric', metric_list=('top_k_accuracy', )),
                 dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator

# f_L and the heads 0.005; f_G, FC_G, FC_Aux 0.0025; policy 0.002 (x0.4); wd 5e-5; grad clip 20; the
# released code trains with AMP (tools/train.py --amp)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=5e-5),
    clip_grad=dict(max_norm=20, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),
        'fc_aux': dict(lr_mult=0.5),
        'fc_local': dict(lr_mult=1.0),
        'spatial_policy': dict(lr_mult=0.4),
        'temporal_policy': dict(lr_mult=0.4),
    }))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=50, by_epoch=True, begin=0, end=50)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=50, val_interval=5,
                 dynamic_intervals=[(40, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
