# The segmentation backbone of the paper (sar.md §4.4, §7.3): SAR-ResNet-50 G2 s4 a1 (b1), t = 0.5, at
# output stride 8 (SAR-2's fusion block stride 1, dilation 2 in SAR-3 and 4 in stage 4; the base branch
# keeps its own downsampling). mmseg's SyncBN by default (multi-GPU); the demo configs use BN.
sar_imagenet_checkpoint = 'work_dirs/sar-r50-g2s4a1-t0.5_4xb64-200e_in1k/epoch_200.pth'
sar_norm_cfg = dict(type='SyncBN', requires_grad=True)
sar_backbone = dict(
    _delete_=True,  # replaces mmseg's ResNetV1c entirely when merged into model.backbone
    type='SARResNet',
    depth=50,
    groups=2,
    alpha=1,
    beta=1,
    base_scale=4,
    # mask cells covering the image area of the ImageNet pretraining's (14, 7, 2) grid at 224 px:
    # 16 / 32 / 112 px of the image, i.e. 4 / 4 / 14 px at the OS-8 strides 4 / 8 / 8 (README, "Mask
    # cells for detection and segmentation")
    mask_cell_size=(4, 4, 14),
    sparse_infer=False,  # True: refine only the selected cells at test time (same results)
    strides=(2, 1, 1, 1),
    dilations=(1, 1, 2, 4),
    out_indices=(0, 1, 2, 3),
    norm_cfg=sar_norm_cfg,
    norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint=sar_imagenet_checkpoint, prefix='backbone.'))
