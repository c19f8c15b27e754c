# SAR-ResNet-50 G1 s2 a2 b1, target 0.3 (76.8 % top-1, = ResNet-50, at ~2.49 GMACs, -39.7 %).
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(sparsity=dict(target=0.3), backbone=dict(groups=1, alpha=2, beta=1, base_scale=2))
