# GF-r50-p96-t5 on ImageNet, stage I (see README.md: released model of GFNet-Pytorch).
_base_ = ['./_base_/gfnet_in1k.py', './_base_/gfnet-resnet50.py', './_base_/gfnet_stage1.py']
# fG: the ResNet-50 fine-tuned on 96 x 96 images (gfnet-r50-p96_fg-init_4xb64-30e_in1k.py)
model = dict(train_stage=1, patch_size=96, num_steps=5, global_encoder=dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/gfnet-r50-p96_fg-init_4xb64-30e_in1k/epoch_30.pth', prefix='backbone.'))))
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0001), paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10)}))
