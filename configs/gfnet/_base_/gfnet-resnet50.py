# GF-ResNet-50: fG and fL are mmpretrain ResNet-50s (torchvision names, C_map = F = 2048; the DSN
# heads play the torchvision fc), GRU-1024 classifier, FC policy (2048 -> GRU-1024), bicubic glance.
# fL starts from mmpretrain's ImageNet ResNet-50; fG from the P x P fine-tune
# (gfnet-r50-p{P}_fg-init config).
r50_pretrained = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                  'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
model = dict(
    type='GFNet',
    num_classes=1000,
    global_encoder=dict(backbone=dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch'),
                        in_channels=2048),
    local_encoder=dict(
        backbone=dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch',
                      init_cfg=dict(type='Pretrained', checkpoint=r50_pretrained,
                                    prefix='backbone.')),
        in_channels=2048),
    patch_size=96,
    num_steps=5,
    classifier=dict(type='recurrent', hidden_channels=1024),
    policy=dict(variant='fc', fc_channels=2048, hidden_channels=1024, action_std=0.1),
    glance_interp='bicubic',
    glance_head='classifier',
    dsn_ratio=1.0,
    data_preprocessor=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
)
