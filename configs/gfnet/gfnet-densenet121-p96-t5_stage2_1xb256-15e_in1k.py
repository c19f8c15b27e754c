# GF-densenet121-p96-t5 on ImageNet, stage II (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-densenet.py', './_base_/gfnet_stage2.py']
train_dataloader = dict(batch_size=256)  # one GPU in the official stage II
model = dict(train_stage=2, reward='contrastive', patch_size=96, num_steps=5, global_encoder=dict(backbone=dict(arch='121'), in_channels=1024), local_encoder=dict(backbone=dict(arch='121'), in_channels=1024))
load_from = 'work_dirs/gfnet-densenet121-p96-t5_stage1_4xb64-60e_in1k/epoch_60.pth'
