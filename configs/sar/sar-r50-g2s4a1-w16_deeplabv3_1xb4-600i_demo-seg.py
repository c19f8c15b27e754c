# DeepLabV3 (ASPP) with an OS-8 SAR-ResNet-50 (G2 s4 a1, t = 0.5, 1/4 width) on the demo segmentation set.
_base_ = ['./_base_/sar-seg-demo.py']
model = dict(
    decode_head=dict(type='ASPPHead', in_channels=512, in_index=3, channels=64,
                     dilations=(1, 12, 24, 36), dropout_ratio=0.1,
                     num_classes={{_base_.num_seg_classes}}, norm_cfg={{_base_.norm_cfg}},
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
