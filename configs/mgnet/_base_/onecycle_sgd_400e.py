# The MGNet recipe (§2.2): SGD, peak lr 0.1, weight decay 1e-4 on every parameter, one-cycle schedule
# stepped per iteration (pct_start 0.2, div 25, final div 1e4, cosine) with the momentum cycling
# 0.95 -> 0.85 -> 0.95 of torch's OneCycleLR, 400 epochs, global batch 256.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4,
                                    nesterov=False))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=0.1, pct_start=0.2, div_factor=25, final_div_factor=1e4,
         anneal_strategy='cos', by_epoch=True, begin=0, end=400, convert_to_iter_based=True),
    dict(type='OneCycleMomentum', base_momentum=0.85, max_momentum=0.95, pct_start=0.2,
         anneal_strategy='cos', by_epoch=True, begin=0, end=400, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=400, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
