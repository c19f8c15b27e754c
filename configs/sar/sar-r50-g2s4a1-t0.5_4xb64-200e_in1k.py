# SAR-ResNet-50 G2 s4 a1 b1, target 0.5: the ImageNet pre-training of the segmentation backbone (2.53 GMACs
# at r = 0.5, 29.87 M parameters).
_base_ = ['./_base_/sar-r50_in1k-200e.py']
model = dict(sparsity=dict(target=0.5), backbone=dict(groups=2, alpha=1, beta=1, base_scale=4))
