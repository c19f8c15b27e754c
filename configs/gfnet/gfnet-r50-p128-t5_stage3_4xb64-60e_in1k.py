# GF-r50-p128-t5 on ImageNet, stage III (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-resnet50.py', './_base_/gfnet_stage3.py']
model = dict(train_stage=3, patch_size=128, num_steps=5)
load_from = 'work_dirs/gfnet-r50-p128-t5_stage2_1xb256-15e_in1k/epoch_15.pth'
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0001), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=1)}))
