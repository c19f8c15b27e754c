# Shared SAR parts of the COCO detectors (sar.md §4.3): SAR-ResNet-50 G2 s2 a2 b1 (t = 0.5) in place of
# mmdet's ResNet-50, started from the SAR ImageNet checkpoint (train sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py
# first, or point `sar_imagenet_checkpoint` at yours).
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
sar_imagenet_checkpoint = 'work_dirs/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k/epoch_200.pth'
sar_coco_backbone = dict(
    _delete_=True,
    type='SARResNet',
    depth=50,
    groups=2,
    alpha=2,
    beta=1,
    base_scale=2,
    # mask cells of the ImageNet pretraining's size in pixels (its (14, 7, 2) grid at 224 px): at
    # 800 x 1333 a fixed 14 x 14 grid would give cells of about 14 x 24 px in SAR-1 (README, "Mask
    # cells for detection and segmentation")
    mask_cell_size=(4, 4, 7),
    sparse_infer=False,  # True: refine only the selected cells at test time (same results)
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,  # stem and SAR-1 (with its fusion block)
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint=sar_imagenet_checkpoint, prefix='backbone.'))
# fine-tuning keeps the ImageNet target with the paper's lambda
sar_coco_sparsity = dict(target=0.5, weight=0.5, loss_type='batch')
# the masks come pretrained at their target density: low, fixed temperature, target from the start
custom_hooks = [
    dict(type='SARScheduleHook', tau_start=0.01, tau_end=0.01, target_begin=0.0, target_end=0.0),
]
