# PSPNet with SAR-ResNet-50 (G2 s4 a1, t = 0.5, OS 8) on VOC12+aug (sar.md §4.4). Identical to mmseg's
# pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py except for the backbone, the segmentor type (adds the
# sparsity loss) and the SAR hook. For CPU or single-process runs use BN:
# --cfg-options model.backbone.norm_cfg.type=BN model.decode_head.norm_cfg.type=BN \
#     model.auxiliary_head.norm_cfg.type=BN
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py',
    './_base_/sar-r50-g2s4a1-d8.py',
]
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='SAREncoderDecoder',
    pretrained=None,
    sparsity=dict(target=0.5, weight=0.5, loss_type='batch'),
    backbone={{_base_.sar_backbone}},
)
custom_hooks = [
    dict(type='SARScheduleHook', tau_start=0.01, tau_end=0.01, target_begin=0.0, target_end=0.0),
]
