# GFNet stage I on the demo set: fG, fL, fC and the DSN heads with uniformly random patches
# (from scratch, Adam; ImageNet uses SGD from pretrained encoders). Validation uses random patches.
_base_ = ['./_base_/gfnet-r18w16-p64-t3_demo.py']
model = dict(train_stage=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=16, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=16, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
