# GF-mbv3-l-125-p128-t3 on ImageNet, stage II (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-mobilenetv3.py', './_base_/gfnet_stage2.py']
train_dataloader = dict(batch_size=256)  # one GPU in the official stage II
model = dict(train_stage=2, reward='contrastive', patch_size=128, num_steps=3, global_encoder=dict(backbone=dict(type='MobileNetV3Wide', widen_factor=1.25), in_channels=1200), local_encoder=dict(backbone=dict(type='MobileNetV3Wide', widen_factor=1.25), in_channels=1200))
load_from = 'work_dirs/gfnet-mbv3-l-125-p128-t3_stage1_4xb64-90e_in1k/epoch_90.pth'
