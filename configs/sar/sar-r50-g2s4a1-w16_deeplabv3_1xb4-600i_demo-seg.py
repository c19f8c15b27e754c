# DeepLabV3 (ASPP) with an OS-8 SAR-ResNet-50 (G2 s4 a1, t = 0.5, 1/4 width) on the demo segmentation set.
_base_ = ['./_base_/sar-seg-demo.py']
model = dict(
    type='SAREncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    sparsity=dict(target=0.5, weight=0.5, loss_type='batch'),
    backbone={{_base_.sar_seg_backbone}},
    decode_head=dict(type='ASPPHead', in_channels=512, in_index=3, channels=64,
                     dilations=(1, 12, 24, 36), dropout_ratio=0.1, num_classes=11,
                     norm_cfg={{_base_.norm_cfg}}, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=32, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=11,
                        norm_cfg={{_base_.norm_cfg}}, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
