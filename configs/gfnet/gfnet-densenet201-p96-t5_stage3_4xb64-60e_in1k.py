# GF-densenet201-p96-t5 on ImageNet, stage III (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-densenet.py', './_base_/gfnet_stage3.py']
model = dict(train_stage=3, patch_size=96, num_steps=5, global_encoder=dict(backbone=dict(arch='201'), in_channels=1920), local_encoder=dict(backbone=dict(arch='201'), in_channels=1920))
load_from = 'work_dirs/gfnet-densenet201-p96-t5_stage2_1xb256-15e_in1k/epoch_15.pth'
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0001), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=1)}))
