# GF-MobileNetV3-Large: mmpretrain MobileNetV3 'large' (C_map = 960; pooled F = 1280 after the
# 960 -> 1280 HSwish pre-logits layer, dropout 0.2), cascade of linear classifiers with step 1 = fG's
# own head, conv policy (1x1 conv 32 -> GRU-256), fG frozen in all stages, DSN weight 5, T = 3.
# The official encoders are gen-efficientnet's PyTorch MobileNetV3s: BN eps 1e-5 and momentum 0.1
# (mmpretrain's defaults are TF's 1e-3 / 0.01), so converted official weights give the official
# feature maps (tests/test_tools/test_gfnet_tools.py).
norm_cfg = dict(type='BN', eps=1e-5, momentum=0.1)
model = dict(
    type='GFNet',
    num_classes=1000,
    global_encoder=dict(backbone=dict(type='MobileNetV3', arch='large', norm_cfg=norm_cfg), in_channels=960,
                        pre_logits_channels=1280, pre_logits_act='hswish', dropout=0.2),
    local_encoder=dict(backbone=dict(type='MobileNetV3', arch='large', norm_cfg=norm_cfg), in_channels=960,
                       pre_logits_channels=1280, pre_logits_act='hswish', dropout=0.2),
    patch_size=96,
    num_steps=3,
    classifier=dict(type='cascade'),
    policy=dict(variant='conv', conv_channels=32, hidden_channels=256, action_std=0.1),
    glance_interp='bicubic',
    glance_head='encoder',
    freeze_global_encoder=True,
    dsn_ratio=5.0,
    data_preprocessor=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
)
