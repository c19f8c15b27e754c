# GFNet stage III on the demo set: fine-tune fG, fL and fC with locations sampled from the fixed
# stage-II policy (lower LR than stage I). Starts from the stage-II checkpoint.
_base_ = ['./_base_/gfnet-r18w16-p48-t3_demo.py']
model = dict(train_stage=3)
load_from = '${stage2}/epoch_20.pth'  # stage_inputs.stage2 of the base config
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=2, eta_min=1e-6)]
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
