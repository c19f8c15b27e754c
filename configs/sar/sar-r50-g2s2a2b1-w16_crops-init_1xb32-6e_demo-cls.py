# SAR-ResNet-50 (G2 s2 a2 b1, target 0.5, 1/4 width) on the demo classification set, started from the SAR
# demos' stand-in for ImageNet pre-training (sar-r50-g2s2a2b1-w16_card-crops_1xb128-12e_demo-cls.py:
# the same network trained on 32 px crops around the digit card, mask generators untrained),
# as the paper's detection and segmentation models start from SAR ImageNet checkpoints. The network can
# then read the digit, but only where its refine branches run at full resolution (the base branch sees
# the 14 px card at half resolution), so the masks have a reason to pick the card's cells: this is the
# demo of object-selective masks (tools/analysis_tools/sar_mask_selectivity.py).
# Data: the 2000/400-image set without distractor cards of the stand-in
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
_base_ = ['./sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py']
data_root = 'data/demo_glance/cls'
load_from = 'work_dirs/sar-r50-g2s2a2b1-w16_card-crops_1xb128-12e_demo-cls/epoch_12.pth'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=6, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=6, eta_min=1e-5),
]
