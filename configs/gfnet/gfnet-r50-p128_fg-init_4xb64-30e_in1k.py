# fG initialisation (§1.4): the ImageNet ResNet-50 fine-tuned on training images downsampled to
# 128 x 128 (RandomResizedCrop 224 + flip, then a bicubic resize to 128; val: Resize 256 + CenterCrop 224
# + resize to 128). The paper uses "the same hyper-parameters as the backbone's training"; the exact
# recipe is not given: 30 epochs of SGD at 0.01 with a cosine schedule here (an assumption).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', prefix='backbone.',
    checkpoint=('https://download.openmmlab.com/mmclassification/v0/resnet/'
                'resnet50_8xb32_in1k_20210831-ea4938fc.pth'))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=(128, 128), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]))
val_dataloader = dict(batch_size=64, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='Resize', scale=(128, 128), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30)]
train_cfg = dict(max_epochs=30)
