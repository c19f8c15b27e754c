# The demo segmentation set written by tools/misc/make_demo_data.py (VOC format, 128 px images, label k + 1
# on the card of digit k, 0 elsewhere), evaluated with mmseg's IoUMetric.
dataset_type = 'BaseSegDataset'
data_root = 'data/demo/seg'
classes = ('background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
crop_size = (128, 128)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
                         size=crop_size)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline
_dataset = dict(type=dataset_type, data_root=data_root, metainfo=dict(classes=classes),
                img_suffix='.jpg', seg_map_suffix='.png',
                data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
