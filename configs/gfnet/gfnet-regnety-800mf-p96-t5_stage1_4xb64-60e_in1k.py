# GF-regnety-800mf-p96-t5 on ImageNet, stage I (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-regnety.py', './_base_/gfnet_stage1.py']
model = dict(train_stage=1, patch_size=96, num_steps=5, global_encoder=dict(backbone=dict(arch='regnety_800mf'), in_channels=768), local_encoder=dict(backbone=dict(arch='regnety_800mf'), in_channels=768))
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=5e-05), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=5)}))
