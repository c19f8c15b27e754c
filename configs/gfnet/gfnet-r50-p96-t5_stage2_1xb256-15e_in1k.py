# GF-r50-p96-t5 on ImageNet, stage II (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-resnet50.py', './_base_/gfnet_stage2.py']
train_dataloader = dict(batch_size=256)  # one GPU in the official stage II
model = dict(train_stage=2, reward='contrastive', patch_size=96, num_steps=5)
load_from = 'work_dirs/gfnet-r50-p96-t5_stage1_4xb64-60e_in1k/epoch_60.pth'
