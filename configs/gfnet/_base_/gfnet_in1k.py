# ImageNet-1k (mmpretrain layout: data/imagenet/{train,val} + meta/{train,val}.txt) for GFNet: the
# official pipelines (RandomResizedCrop 224 + flip / Resize 256 + CenterCrop 224, bilinear); glance
# resizing and patch cropping happen inside the model on the normalised batch. Batch 256 in total.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
num_classes = 1000
data_preprocessor = dict(num_classes=num_classes, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=8,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=8,
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='AnytimeAccuracy')]
test_evaluator = dict(type='Accuracy', topk=(1, 5))
val_cfg = dict()
test_cfg = dict()
# the paper selects by the top-1 of the last step on val (optimistic); the last epoch is kept too
# (accuracy/top1 is the last step's prediction)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='accuracy/top1', rule='greater'))
# budgeted batch classification: tools/test.py CONFIG CKPT --budget ... fits thresholds on (a subset
# of) the training set with the training pipeline, as the paper does
auto_scale_lr = dict(base_batch_size=256)
