# GFNet stage I on the demo set: fG, fL, fC and the DSN heads with uniformly random patches.
# fG and fL start from the shared stand-in for ImageNet pre-training (stage_inputs.pretrained of the
# base config);
# Adam instead of the paper's SGD. Validation uses random patches.
_base_ = ['./_base_/gfnet-r18w16-p48-t3_demo.py']
init = dict(type='Pretrained', checkpoint='${pretrained}', prefix='backbone.')
model = dict(
    train_stage=1,
    global_encoder=dict(backbone=dict(init_cfg=init)),
    local_encoder=dict(backbone=dict(init_cfg=init)))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=6, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
