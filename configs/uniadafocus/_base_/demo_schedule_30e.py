# Schedule, logging, seed and the budget-evaluation hook of the demo-video configs (CPU): AdamW 2e-3 from
# scratch, one warm-up epoch then cosine to 1e-5 over 30 epochs, validation and checkpoints every 10
# epochs, on mmaction2's default runtime. Each config adds its per-component learning rates
# (optim_wrapper.paramwise_cfg).
_base_ = 'mmaction::_base_/default_runtime.py'
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=30, eta_min=1e-5),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
randomness = dict(seed=0)
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
