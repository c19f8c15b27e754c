# SAR-ResNet-50 G2 s2 a2 b1 at 1/4 width (stem and stage-1 planes 16): small enough for CPU demos.
sar_demo_backbone = dict(
    _delete_=True,
    type='SARResNet',
    depth=50,
    stem_channels=16,
    base_channels=16,
    groups=2,
    alpha=2,
    beta=1,
    base_scale=2,
    mask_grid=(10, 5, 2),  # 4 px cells at strides 4 and 8, 5 px at stride 16 for 160 px inputs
    mask_bias_init=(0.0, 2.0),  # P(refine) = 0.88 at the start: a short run can reach its target
    out_indices=(0, 1, 2, 3),
    norm_cfg=dict(type='BN', requires_grad=True),
    init_cfg=None)
# The detection demos: mask cells in pixels instead of the fixed grid (see README, "Mask cells for
# detection and segmentation"): 4 / 4 / 5 px at strides 4 / 8 / 16 is the (10, 5, 2) grid at the
# 160 px training size, and the cells keep their size at any other test size. ``sparse_infer=True``
# (or --cfg-options model.backbone.sparse_infer=True) refines only the selected cells at test time.
sar_demo_det_backbone = dict(
    sar_demo_backbone, mask_grid=None, mask_cell_size=(4, 4, 5), sparse_infer=False)
# Short CPU schedules: the target steps down between 10 % and 30 % of training (paper: 30-50 % of 200
# epochs) and the task models use a sparsity weight of 5 (paper: 0.5), so that the realised density ends
# near the target within a few hundred iterations.
sar_demo_hooks = [
    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.01, target_begin=0.1, target_end=0.3),
]
sar_demo_sparsity = dict(target=0.5, weight=5.0, loss_type='batch')
# Short CPU schedules: Adam moves a parameter by about lr per step, so the mask generators get a larger
# learning rate (and no weight decay) to follow the target density within a few hundred iterations.
sar_demo_paramwise_cfg = dict(custom_keys={'.masks.': dict(lr_mult=25.0, decay_mult=0.0)})
