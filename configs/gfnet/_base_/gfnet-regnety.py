# GF-RegNet-Y (600MF / 800MF / 1.6GF): mmdynamic's RegNetY (RegNet-X + SE; C_map = F = 608 / 768 /
# 888), GRU-1024 classifier, conv policy (1x1 conv 32 -> GRU-256), bilinear glance (official
# inference). As in the official code, step 1 is predicted by fC's GRU + linear layer in training
# (``train_glance_head='classifier'``) and by fG's own head at inference
# (``glance_head='encoder'``; the GRU still runs at step 1, its state feeds step 2), so a converted
# official checkpoint gives the authors' predictions. ``glance_head='classifier'`` predicts step 1
# with fC at inference too.
model = dict(
    type='GFNet',
    num_classes=1000,
    global_encoder=dict(backbone=dict(type='RegNetY', arch='regnety_600mf'), in_channels=608),
    local_encoder=dict(backbone=dict(type='RegNetY', arch='regnety_600mf'), in_channels=608),
    patch_size=96,
    num_steps=5,
    classifier=dict(type='recurrent', hidden_channels=1024),
    policy=dict(variant='conv', conv_channels=32, hidden_channels=256, action_std=0.1),
    glance_interp='bilinear',
    glance_head='encoder',
    train_glance_head='classifier',
    dsn_ratio=1.0,
    data_preprocessor=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
)
