# Faster R-CNN with a SAR-ResNet-50 backbone (G2 s2 a2 b1, target density 0.5), 1/4 width for CPU, on the
# demo detection set: the README's main job. Differs from the static demo baseline
# (configs/demo/faster-rcnn_r18_fpn_1xb4-8e_demo-det.py) only in the backbone and the sparsity loss.
_base_ = ['../demo/faster-rcnn_r18_fpn_1xb4-8e_demo-det.py', './_base_/sar-r50-w16_demo.py']
model = dict(
    type='SARFasterRCNN',
    sparsity={{_base_.sar_demo_sparsity}},
    backbone={{_base_.sar_demo_det_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512]),
)
custom_hooks = {{_base_.sar_demo_hooks}}
optim_wrapper = dict(paramwise_cfg={{_base_.sar_demo_paramwise_cfg}})
