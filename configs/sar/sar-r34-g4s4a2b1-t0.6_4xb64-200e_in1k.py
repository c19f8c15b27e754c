# SAR-ResNet-34 G4 s4 a2 b1, target 0.6 (paper: ResNet-34 + 0.3 % top-1 at -46 % FLOPs; with this
# architecture the count is 1.55 GMACs = -57.7 %, see sar.md §2.10).
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(
    sparsity=dict(target=0.6),
    backbone=dict(depth=34, groups=4, alpha=2, beta=1, base_scale=4),
    head=dict(in_channels=512))
