# ImageNet100 (MGNet §2.3): the first 100 ImageNet classes in sorted WNID order (n01440764 ..
# n01855672), all their train images, the 50 official val images per class as the test set.
# Annotation files: python tools/dataset_converters/make_imagenet100.py data/imagenet
# (writes data/imagenet/meta/imagenet100/{classes,train,val}.txt).
dataset_type = 'CustomDataset'
data_root = 'data/imagenet'
ann_dir = 'meta/imagenet100/'
num_classes = 100

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)
# RandomResizedCrop(224) -> flip -> AutoAugment (ImageNet policy, fill 128) as in the authors' code
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='AutoAugment', policies='imagenet', hparams=dict(pad_val=128)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,  # x 4 GPUs = 256 (the authors' DDP setting, no SyncBN)
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_dir + 'train.txt',
                 data_prefix='train', classes=data_root + '/' + ann_dir + 'classes.txt',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_dir + 'val.txt',
                 data_prefix='val', classes=data_root + '/' + ann_dir + 'classes.txt',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='AnytimeAccuracy')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
