# The SAR demos' stand-in for ImageNet pre-training (the paper's detection and segmentation models start
# from SAR ImageNet checkpoints): SAR-ResNet-50 G2s2a2b1 at 1/4 width trained on 32 px crops that contain
# the 14 px digit card (DemoObjectCrop), so that its refine branches learn to read the digits. The mask
# generators are not trained here (learning rate 0: they keep their initialisation, refining about 88 %
# of the cells under Gumbel noise, which the refine branches learn to tolerate): a generator trained
# towards dense masks saturates and cannot reach a lower target later. The classification demo
# (sar-r50-g2s2a2b1-w16_crops-init_1xb32-6e_demo-cls.py) starts from it and learns where to refine.
# Data (2000/400 images, the digit card the only card of the canvas):
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
_base_ = ['../demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py', './_base_/sar-r50-w16_demo.py']
model = dict(
    type='SARImageClassifier',
    sparsity=dict(target=1.0, weight=0.0, loss_type='batch'),
    backbone=dict(
        _delete_=True, type='SARResNet', depth=50, stem_channels=16, base_channels=16, groups=2,
        alpha=2, beta=1, base_scale=2,
        mask_grid=(8, 4, 2),  # 32 px crops: 1 px cells at stride 4 (the 128 px demo: 4 px cells)
        mask_bias_init=(0.0, 2.0), out_indices=(3, ), init_cfg=None),
    head=dict(in_channels=512),
)
# 32 px crops make small, overhead-bound iterations: a larger batch (and learning rate) trains faster on CPU
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'.masks.': dict(lr_mult=0.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=12, eta_min=1e-5),
]
train_cfg = dict(max_epochs=12, val_interval=4)
