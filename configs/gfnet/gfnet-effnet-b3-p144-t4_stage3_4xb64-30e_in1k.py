# GF-effnet-b3-p144-t4 on ImageNet, stage III (see README.md: released model of GFNet-Pytorch).
# (the paper skips stage III for EfficientNet: no gain; provided for completeness)
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-efficientnet.py', './_base_/gfnet_stage3.py']
model = dict(train_stage=3, patch_size=144, num_steps=4, global_encoder=dict(backbone=dict(arch='b3'), in_channels=1536), local_encoder=dict(backbone=dict(arch='b3'), in_channels=1536))
load_from = 'work_dirs/gfnet-effnet-b3-p144-t4_stage2_1xb256-15e_in1k/epoch_15.pth'
optim_wrapper = dict(optimizer=dict(lr=0.005, weight_decay=0.0001), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=2)}))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, convert_to_iter_based=False)]
train_cfg = dict(max_epochs=30)
# the official EfficientNet inference resolution: 300 px (Resize 331 + CenterCrop 300, bicubic)
train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=300, backend='pillow', interpolation='bicubic'), dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackInputs')]))
val_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=331, edge='short', backend='pillow', interpolation='bicubic'), dict(type='CenterCrop', crop_size=300), dict(type='PackInputs')]))
test_dataloader = val_dataloader
