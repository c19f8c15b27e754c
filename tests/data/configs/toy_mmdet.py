# mmdet RetinaNet with an mmdynamic backbone, in mmdet's default scope, with real COCO evaluation.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.testing'], allow_failed_imports=False)
data_root = 'data/demo/det/'
classes = tuple(str(i) for i in range(10))
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='DynToyBackbone', base_channels=8, num_stages=4, out_indices=(1, 2, 3)),
    neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=32, start_level=0,
              add_extra_convs='on_input', num_outs=3),
    bbox_head=dict(
        type='RetinaHead', num_classes=len(classes), in_channels=32, stacked_convs=1,
        feat_channels=32,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=2,
                              ratios=[1.0], strides=[4, 8, 16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                 min_pos_iou=0, ignore_iof_thr=-1),
                   sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                   debug=False),
    test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, batch_sampler=dict(type='AspectRatioBatchSampler'),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox', format_only=False)
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
