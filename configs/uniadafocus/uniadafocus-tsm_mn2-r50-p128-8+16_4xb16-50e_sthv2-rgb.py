# Uni-AdaFocus-TSM (128², 8+16) on Something-Something V2: paper top-1 / GFLOPs 64.2 / 24.2
# (Table 4; w/o sample-wise). T_0 = 48 focus candidates. No flip (direction-sensitive labels).
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/uniadafocus_tsm.py']
data_root = 'data/sthv2/rawframes'
model = dict(
    local_backbone=dict(num_segments=16), num_classes=174, num_candidates=48,
    num_focus=16, patch_size=128, size_reg=0.5)
train_pipeline = [
    dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=48),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=48, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='RawframeDataset', ann_file='data/sthv2/train_list.txt',
                 data_prefix=dict(img=data_root), filename_tmpl='{:06d}.jpg',
                 start_index=1, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='RawframeDataset', ann_file='data/sthv2/val_list.txt',
                 data_prefix=dict(img=data_root), filename_tmpl='{:06d}.jpg',
                 start_index=1, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='AccMetric', metric_list=('top_k_accuracy', )),
                 dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(weight_decay=0.0005))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
