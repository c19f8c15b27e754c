# SAR-ResNet-50 G2 s2 a2 b1, target 0.5: the paper's default (77.8 % top-1 at ~2.38 GMACs, -41 %).
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(sparsity=dict(target=0.5), backbone=dict(groups=2, alpha=2, beta=1, base_scale=2))
