# GF-mbv3-l-125-p128-t3 on ImageNet, stage I (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-mobilenetv3.py', './_base_/gfnet_stage1.py']
model = dict(train_stage=1, patch_size=128, num_steps=3, global_encoder=dict(backbone=dict(type='MobileNetV3Wide', widen_factor=1.25), in_channels=1200), local_encoder=dict(backbone=dict(type='MobileNetV3Wide', widen_factor=1.25), in_channels=1200))
optim_wrapper = dict(optimizer=dict(lr=0.005, weight_decay=0.0001), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=20)}))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=90, convert_to_iter_based=False)]
train_cfg = dict(max_epochs=90)
