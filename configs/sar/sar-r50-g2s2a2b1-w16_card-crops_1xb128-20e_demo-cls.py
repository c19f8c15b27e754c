# The SAR demos' stand-in for ImageNet pre-training (the paper's detection and segmentation models start
# from SAR ImageNet checkpoints): SAR-ResNet-50 G2s2a2b1 at 1/4 width trained on 32 px crops that contain
# the 14 px digit card (DemoObjectCrop), with dense masks (sparsity target 1, no schedule), so that its
# refine branches learn to read the digits. The classification demo
# (sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py) starts from it and learns where to refine.
# Data (2000/400 images, the digit card the only card of the canvas):
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
_base_ = ['../demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py', './_base_/sar-r50-w16_demo.py']
model = dict(
    type='SARImageClassifier',
    sparsity=dict(target=1.0, weight=5.0, loss_type='batch'),
    backbone=dict(
        _delete_=True, type='SARResNet', depth=50, stem_channels=16, base_channels=16, groups=2,
        alpha=2, beta=1, base_scale=2,
        mask_grid=(8, 4, 2),  # 32 px crops: 1 px cells at stride 4 (the 128 px demo: 4 px cells)
        mask_bias_init=(0.0, 2.0), out_indices=(3, ), init_cfg=None),
    head=dict(in_channels=512),
)
optim_wrapper = dict(paramwise_cfg={{_base_.sar_demo_paramwise_cfg}})
# 32 px crops make small, overhead-bound iterations: a larger batch (and learning rate) trains faster on CPU
train_dataloader = dict(batch_size=128)
optim_wrapper.update(optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.05))
