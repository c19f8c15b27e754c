# GFNet on the demo classification set (128 px canvases, a 14 px digit card among distractors):
# fG and fL are mmpretrain ResNet-18s at 1/4 width (base 16, C_map = 128) trained from scratch,
# P = 64 (the glance is the whole image at 64 px), T = 3 (glance + 2 focus patches).
# Data: the 400-image default demo set is too small for the recurrent classifier (it memorises the
# training images); the results of README.md use a larger set of the same generator:
#   python tools/misc/make_demo_data.py --root data/demo_gfnet --tasks cls --num-train 2000 --num-val 400
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../../_base_/datasets/demo_cls.py',
]
data_root = 'data/demo_gfnet/cls'
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

encoder = dict(
    backbone=dict(type='ResNet', depth=18, stem_channels=16, base_channels=16, out_indices=(3, ),
                  style='pytorch'),
    in_channels=128)
model = dict(
    type='GFNet',
    num_classes={{_base_.num_classes}},
    global_encoder=encoder,
    patch_size=64,
    num_steps=3,
    classifier=dict(type='recurrent', hidden_channels=128),
    # action std 0.25 (paper: 0.1): the digit can be anywhere on the demo canvas, and the short PPO
    # schedule must explore the corners from the initial centre action
    policy=dict(variant='fc', fc_channels=256, hidden_channels=128, action_std=0.25),
    glance_interp='bilinear',
    dsn_ratio=1.0,
    data_preprocessor={{_base_.data_preprocessor}},
)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='AnytimeAccuracy')]
test_evaluator = dict(type='Accuracy', topk=(1, ))  # BudgetEvalHook of tools/test.py: anytime
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1),
)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
randomness = dict(seed=0, deterministic=False)
