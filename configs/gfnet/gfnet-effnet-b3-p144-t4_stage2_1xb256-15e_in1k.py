# GF-effnet-b3-p144-t4 on ImageNet, stage II (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-efficientnet.py', './_base_/gfnet_stage2.py']
train_dataloader = dict(batch_size=256)  # one GPU in the official stage II
model = dict(train_stage=2, reward='contrastive', patch_size=144, num_steps=4, global_encoder=dict(backbone=dict(arch='b3'), in_channels=1536), local_encoder=dict(backbone=dict(arch='b3'), in_channels=1536))
load_from = 'work_dirs/gfnet-effnet-b3-p144-t4_stage1_4xb64-30e_in1k/epoch_30.pth'
# the official EfficientNet inference resolution: 300 px (Resize 331 + CenterCrop 300, bicubic)
train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=300, backend='pillow', interpolation='bicubic'), dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackInputs')]))
val_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=331, edge='short', backend='pillow', interpolation='bicubic'), dict(type='CenterCrop', crop_size=300), dict(type='PackInputs')]))
test_dataloader = val_dataloader
