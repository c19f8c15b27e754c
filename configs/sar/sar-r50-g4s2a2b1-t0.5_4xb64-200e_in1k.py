# SAR-ResNet-50 G4 s2 a2 b1 (-8.3 % params: 23.43 M; "-48.8 % FLOPs without sacrificing accuracy").
# The paper does not state t for this model; 0.5 as the default recipe.
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(sparsity=dict(target=0.5), backbone=dict(groups=4, alpha=2, beta=1, base_scale=2))
