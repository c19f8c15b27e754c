# Tiny ImageNet (MGNet Table 3): 200 classes, 64 x 64 images, 500 train / 50 val per class; the val set
# is the test set. Folder format for mmpretrain's CustomDataset: train/<wnid>/images/*.JPEG as
# distributed, and val/ arranged into val/<wnid>/*.JPEG with val/val_annotations.txt (the usual
# preprocessing step). The paper gives no augmentation for this set: ours is random crop with 8 px
# padding, flip and AutoAugment.
dataset_type = 'CustomDataset'
data_root = 'data/tiny-imagenet-200'
num_classes = 200

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[122.46, 114.26, 101.37],
    std=[70.49, 68.56, 71.81],
    to_rgb=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=64, padding=8, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='AutoAugment', policies='imagenet', hparams=dict(pad_val=128)),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='AnytimeAccuracy')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
