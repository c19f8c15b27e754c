# mmpretrain classifier with an mmdynamic backbone, in mmpretrain's default scope.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.testing'], allow_failed_imports=False)
data_root = 'data/demo/cls'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=10, mean=[127.5] * 3, std=[64.0] * 3, to_rgb=True),
    backbone=dict(type='DynToyBackbone', base_channels=8, num_stages=4, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(by_epoch=False, max_iters=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
randomness = dict(seed=0)
