# SAR-ResNet-50 G4 s4 a2 b1, target 0.5 (2.01 GMACs, -51 %; "even higher" accuracy than ResNet-50).
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(sparsity=dict(target=0.5), backbone=dict(groups=4, alpha=2, beta=1, base_scale=4))
