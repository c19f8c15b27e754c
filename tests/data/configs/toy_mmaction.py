# mmaction2 2D recognizer with an mmdynamic backbone, in mmaction's default scope, on decoded videos.
_base_ = ['mmaction::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.testing'], allow_failed_imports=False)
data_root = 'data/demo/video'
model = dict(
    type='Recognizer2D',
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                           format_shape='NCHW'),
    backbone=dict(type='DynToyBackbone', base_channels=8, num_stages=4, out_indices=(3, ),
                  return_tuple=False),
    cls_head=dict(type='TSNHead', num_classes=10, in_channels=64, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), average_clips='prob'))
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=4, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    dataset=dict(type='VideoDataset', ann_file=data_root + '/train_list.txt',
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file=data_root + '/val_list.txt',
                 data_prefix=dict(video=data_root), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
