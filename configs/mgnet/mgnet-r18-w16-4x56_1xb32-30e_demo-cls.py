# MGNet with a 1/4-width ResNet-18 on the demo classification set (128 px canvases, 14 px digit cards):
# 4 glimpses of 56 x 56 (M = 128 / 56, about the paper's 7/3). Glimpse 1 is the whole canvas, where a
# digit is 6 px high; glimpses 2..4 are crops of 0.2..0.5 of the side, zoomed to 56 px. A CPU schedule
# (AdamW, 30 epochs) instead of the paper's 400-epoch one-cycle SGD.
_base_ = ['../demo/resnet18_1xb32-6e_demo-cls.py']
model = dict(
    _delete_=True,
    type='MGNet',
    backbone=dict(type='ResNet', depth=18, stem_channels=16, base_channels=16, out_indices=(3, ),
                  style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    num_classes={{_base_.num_classes}},
    num_glimpses=4,
    glimpse_size=56,
    scale_range=(0.2, 0.5),
    grad_scale=0.02,
    aux_weight=0.6,
    data_preprocessor={{_base_.data_preprocessor}},
)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=30, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=10)
# top-1 of the last exit and the anytime accuracy of every exit (glimpse)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=1, save_best='auto'))
# MMEngine's log processor averages every key matching 'time' over its window, 'anytime/...' included:
# log the current anytime accuracy instead of the mean over the last validations
log_processor = dict(mean_pattern=r'.*(loss|(?<!any)time|data_time|grad_norm).*')
