# GF-DenseNet (121 / 169 / 201): mmpretrain DenseNets (C_map = F = 1024 / 1664 / 1920; model configs
# set ``arch`` and ``in_channels``), GRU-1024 classifier, FC policy (2048 -> GRU-1024). The official
# inference glances with bilinear resizing (its training used bicubic): bilinear here, for parity
# with the released checkpoints.
model = dict(
    type='GFNet',
    num_classes=1000,
    global_encoder=dict(backbone=dict(type='DenseNet', arch='121'), in_channels=1024),
    local_encoder=dict(backbone=dict(type='DenseNet', arch='121'), in_channels=1024),
    patch_size=96,
    num_steps=5,
    classifier=dict(type='recurrent', hidden_channels=1024),
    policy=dict(variant='fc', fc_channels=2048, hidden_channels=1024, action_std=0.1),
    glance_interp='bilinear',
    glance_head='classifier',
    dsn_ratio=1.0,
    data_preprocessor=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
)
