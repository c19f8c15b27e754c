# GF-EfficientNet (B2 / B3): mmpretrain EfficientNets (C_map = F = 1408 / 1536, dropout 0.3,
# drop-path 0.2), cascade of linear classifiers with step 1 = fG's own head, conv policy, fG frozen,
# DSN weight 5, T = 4. The official inference runs at 260 (B2) / 300 (B3) px: see the model configs.
# The official encoders are gen-efficientnet's PyTorch EfficientNets: symmetric padding and BN eps 1e-5
# (mmpretrain's defaults are TF "same" padding and eps 1e-3), so converted official weights give the
# official feature maps (tests/test_tools/test_gfnet_tools.py).
backbone = dict(type='EfficientNet', arch='b2', drop_path_rate=0.2, conv_cfg=None,
                norm_cfg=dict(type='BN', eps=1e-5))
model = dict(
    type='GFNet',
    num_classes=1000,
    global_encoder=dict(backbone=backbone, in_channels=1408, dropout=0.3),
    local_encoder=dict(backbone=backbone, in_channels=1408, dropout=0.3),
    patch_size=128,
    num_steps=4,
    classifier=dict(type='cascade'),
    policy=dict(variant='conv', conv_channels=32, hidden_channels=256, action_std=0.1),
    glance_interp='bicubic',
    glance_head='encoder',
    freeze_global_encoder=True,
    dsn_ratio=5.0,
    data_preprocessor=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
)
