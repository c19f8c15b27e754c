# The demo's stand-in for ImageNet pre-training, shared by the glance-and-focus demos (GFNet fG/fL,
# MGNet's encoder, Uni-AdaFocus's local encoder): the papers start from pretrained backbones, and from
# scratch none of these models (nor a static ResNet-18 on whole images) learns to read the digits within
# a CPU budget: they memorise the cluttered backgrounds instead.
# A static ResNet-18 at 1/4 width (stem/base 16 channels, 128-d features) trained on 32 px crops that
# contain the digit card (DemoObjectCrop, from the boxes the demo generator writes).
# Data (2000/400 images, the digit card the only card of the canvas):
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
_base_ = ['./resnet18_1xb32-6e_demo-cls.py']
data_root = 'data/demo_glance/cls'
model = dict(backbone=dict(stem_channels=16, base_channels=16), head=dict(in_channels=128))
crop_size = 32
pipeline = [dict(type='LoadImageFromFile'), dict(type='DemoObjectCrop', size=crop_size),
            dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=20, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None))
