# A static mmpretrain ResNet-18 on the demo classification set: the baseline that the dynamic models of
# mmdynamic are compared with, and the README's demo job until a dynamic model replaces it.
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/datasets/demo_cls.py',
]
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes={{_base_.num_classes}},
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, ),
    ),
)

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=6, eta_min=1e-4),
]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=2)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=2, save_best='auto'),
)
randomness = dict(seed=0, deterministic=False)
