# Faster R-CNN + FPN with a SAR-ResNet-50 backbone (G2 s2 a2 b1, t = 0.5) on COCO, 1x schedule (sar.md
# §4.3; paper: +0.9 mAP over ResNet-50 with ~25 % less computation). Identical to mmdet's
# faster-rcnn_r50_fpn_1x_coco.py except for the backbone, the detector type (adds the sparsity loss) and
# the SAR hook. The backbone starts from the SAR ImageNet checkpoint (train
# sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py first, or point `sar_imagenet_checkpoint` at yours).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

sar_imagenet_checkpoint = 'work_dirs/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k/epoch_200.pth'
model = dict(
    type='SARFasterRCNN',
    # fine-tuning keeps the ImageNet target with the paper's lambda
    sparsity=dict(target=0.5, weight=0.5, loss_type='batch'),
    backbone=dict(
        _delete_=True,
        type='SARResNet',
        depth=50,
        groups=2,
        alpha=2,
        beta=1,
        base_scale=2,
        mask_grid=(14, 7, 2),
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,  # stem and SAR-1 (with its fusion block)
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=sar_imagenet_checkpoint, prefix='backbone.')),
)
# the masks come pretrained at their target density: low, fixed temperature, target from the start
custom_hooks = [
    dict(type='SARScheduleHook', tau_start=0.01, tau_end=0.01, target_begin=0.0, target_end=0.0),
]
