# mmseg EncoderDecoder with an mmdynamic backbone, in mmseg's default scope, on VOC-format data.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.testing'], allow_failed_imports=False)
data_root = 'data/demo/seg'
classes = ('background', ) + tuple(str(i) for i in range(10))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[64.0] * 3,
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(128, 128)),
    backbone=dict(type='DynToyBackbone', base_channels=8, num_stages=3, out_indices=(2, )),
    decode_head=dict(type='FCNHead', in_channels=32, channels=16, num_convs=1,
                     num_classes=len(classes), in_index=0, norm_cfg=dict(type='BN'),
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=dict(classes=classes),
               img_suffix='.jpg', seg_map_suffix='.png',
               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(
    batch_size=2, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
    dataset=dict(**dataset, ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
randomness = dict(seed=0)
