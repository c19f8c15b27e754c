# The demo's stand-in for the ImageNet pre-training of GFNet's local encoder (the paper starts fL
# from a pretrained backbone): a static ResNet-18 at 1/4 width trained on 32 px crops that contain
# the 24 px digit card (DemoObjectCrop, from the boxes the demo generator writes). Stage I loads its
# backbone into fG and fL (64 px crops are not learnt within this budget). From scratch, neither this network on whole images nor GFNet learns the digits
# within a CPU budget: both memorise the cluttered backgrounds.
_base_ = ['../demo/resnet18_1xb32-6e_demo-cls.py']
data_root = 'data/demo_gfnet/cls'
model = dict(backbone=dict(stem_channels=16, base_channels=16), head=dict(in_channels=128))
pipeline = [dict(type='LoadImageFromFile'), dict(type='DemoObjectCrop', size=32),
            dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=20, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None))
