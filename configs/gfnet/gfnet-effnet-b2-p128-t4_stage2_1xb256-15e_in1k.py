# GF-effnet-b2-p128-t4 on ImageNet, stage II (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-efficientnet.py', './_base_/gfnet_stage2.py']
train_dataloader = dict(batch_size=256)  # one GPU in the official stage II
model = dict(train_stage=2, reward='contrastive', patch_size=128, num_steps=4)
load_from = 'work_dirs/gfnet-effnet-b2-p128-t4_stage1_4xb64-30e_in1k/epoch_30.pth'
# the official EfficientNet inference resolution: 260 px (Resize 297 + CenterCrop 260, bicubic)
train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=260, backend='pillow', interpolation='bicubic'), dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackInputs')]))
val_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=297, edge='short', backend='pillow', interpolation='bicubic'), dict(type='CenterCrop', crop_size=260), dict(type='PackInputs')]))
test_dataloader = val_dataloader
