# GFNet on the demo classification set without distractor cards (128 px canvases, one 14 px digit card
# among random strokes): fG and fL are mmpretrain ResNet-18s at 1/4 width (base 16, C_map = 128) that
# start from the shared stand-in for ImageNet pre-training (configs/demo/resnet18w16_card-crops_*.py,
# trained on 32 px crops around the card of the same training images). Data:
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
# Demo-only geometry (the paper: P = 96 or 128 on 224 px, the glance at P, stride-32 backbones):
# - P = 48: a 48 px patch on the 128 px canvas holds the whole card for only ~9 % of uniformly random
#   locations, so where the patches go matters. (P = 32, the stand-in's crop size, made hits so rare,
#   ~3 %, that the PPO rewards carried no usable signal within 10 epochs; README.md.)
# - The glance is the whole canvas at 96 px (2 P) instead of P: at small glances fG's map carries
#   little location (an MLP fitted on a 32 px glance's map to the card centre errs by 24 px, as much as
#   always guessing the mean).
# - Output strides 16 (fG) and 8 (fL) instead of 32, so that both the 96 px glance and the 48 px patches
#   give the 6 x 6 maps the policy reads (with stride 32: 3 x 3 and 2 x 2 maps).
#   Same ResNet-18 w16 architecture and stand-in weights otherwise (the strides change no shapes);
#   stage I adapts the weights to the new strides and the 48 px patches.
# - T = 3: the glance and two focus patches.
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../../_base_/datasets/demo_cls.py',
]
data_root = 'data/demo_glance/cls'
custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.utils.stage_inputs'],
                      allow_failed_imports=False)
# Checkpoints of earlier runs, referred to as ${name} below and in the stage configs and resolved when
# the run starts, after --cfg-options (mmdynamic/utils/stage_inputs.py): one override such as
#   --cfg-options stage_inputs.stage1=work_dirs/my_stage1
# changes every use, and a missing checkpoint fails before training with the entry to set.
#   pretrained: the stand-in's checkpoint (fG and fL init of stage I)
#   stage1, stage2: the work dirs of the previous stages (load_from of stages II and III)
runner_type = 'StageInputsRunner'
stage_inputs = dict(
    pretrained='work_dirs/resnet18w16_card-crops_1xb32-20e_demo-cls/epoch_20.pth',
    stage1='work_dirs/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls',
    stage2='work_dirs/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-cls')

patch_size = 48
backbone = dict(type='ResNet', depth=18, stem_channels=16, base_channels=16, out_indices=(3, ),
                style='pytorch')
global_encoder = dict(backbone=dict(backbone, strides=(1, 2, 2, 1)), in_channels=128)
local_encoder = dict(backbone=dict(backbone, strides=(1, 2, 1, 1)), in_channels=128)
model = dict(
    type='GFNet',
    num_classes={{_base_.num_classes}},
    global_encoder=global_encoder,
    local_encoder=local_encoder,
    patch_size=patch_size,
    glance_size=2 * patch_size,  # 96 px
    num_steps=3,
    classifier=dict(type='recurrent', hidden_channels=128),
    # feature_size: the 6 x 6 maps of the stride-16 fG / stride-8 fL (the default ceil(P / 32) assumes
    # stride 32).
    # action std 0.25 (paper: 0.1): the card can be anywhere on the canvas, and the short PPO schedule
    # must explore far from the initial centre action.
    policy=dict(variant='fc', fc_channels=256, hidden_channels=128, feature_size=patch_size // 8,
                action_std=0.25),
    glance_interp='bilinear',
    dsn_ratio=1.0,
    data_preprocessor={{_base_.data_preprocessor}},
)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='AnytimeAccuracy')]
test_evaluator = dict(type='Accuracy', topk=(1, ))  # BudgetEvalHook of tools/test.py: anytime
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1),
)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
randomness = dict(seed=0, deterministic=False)
