# MGNet on the demo classification set without distractor cards (128 px canvases, one 14 px digit card at
# a uniformly random place among random strokes), with its encoder (ResNet-18 at 1/4 width, 128-d
# features) started from the shared stand-in for ImageNet pre-training (configs/demo/
# resnet18w16_card-crops_1xb32-20e_demo-cls.py: the same network trained on 32 px crops around the card of
# the same training images), as the paper's models start from ImageNet-trained backbones. Data:
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
# Demo-only settings (the paper: g = 96 of 224, a_s in 0.2..0.5, 400 epochs of one-cycle SGD):
# - g = 56 (M = 128 / 56, about the paper's 7/3): glimpse 1 (the whole canvas) shows the card at 6 px,
#   too small to read; a glimpse of side 0.5 shows it at 12 px, close to the 14 px of the pre-training.
# - a_s fixed at 0.5 (scale_range (0.5, 0.5)): the GAP features of glimpse 1 carry (almost) no position
#   of a 6 px card (a ridge probe on the stand-in's features predicts the card centre no better than the
#   canvas centre), so the localisation cannot aim at the card at first; the widest window of the
#   paper's range holds the whole card for ~20 % of positions and the encoder reads the card only at
#   about its pre-training scale (smaller windows would zoom it past that). Located glimpses need a longer
#   schedule (the encoder has to learn where the card is from the localisation's gradient alone).
# - AdamW 1e-3 for 8 epochs (~5 min on one CPU thread) instead of the paper's schedule.
_base_ = ['./mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py']
data_root = 'data/demo_glance/cls'
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.utils.stage_inputs'],
                      allow_failed_imports=False)
# The stand-in's checkpoint, resolved when the run starts (after --cfg-options; mmdynamic/utils/
# stage_inputs.py): --cfg-options stage_inputs.pretrained=PATH changes its use, and a missing file
# fails before training.
runner_type = 'StageInputsRunner'
stage_inputs = dict(pretrained='work_dirs/resnet18w16_card-crops_1xb32-20e_demo-cls/epoch_20.pth')
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='${pretrained}', prefix='backbone.')),
    glimpse_size=56,
    scale_range=(0.5, 0.5),
)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=8, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1, save_best=None))
