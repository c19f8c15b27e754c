# Faster R-CNN + FPN with a SAR-ResNet-50 backbone (G2 s2 a2 b1, t = 0.5) on COCO, 1x schedule (sar.md
# §4.3; paper: +0.9 mAP over ResNet-50 with ~25 % less computation). Identical to mmdet's
# faster-rcnn_r50_fpn_1x_coco.py except for the backbone, the detector type (adds the sparsity loss) and
# the SAR hook (_base_/sar-r50-g2s2a2b1_coco.py).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', './_base_/sar-r50-g2s2a2b1_coco.py']
model = dict(type='SARFasterRCNN', sparsity={{_base_.sar_coco_sparsity}},
             backbone={{_base_.sar_coco_backbone}})
