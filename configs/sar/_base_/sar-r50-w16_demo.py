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
    out_indices=(0, 1, 2, 3),
    norm_cfg=dict(type='BN', requires_grad=True),
    init_cfg=None)
sar_demo_hooks = [
    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.01, target_begin=0.3, target_end=0.5),
]
