# SAR-ResNet32 (x2 width) G4 a2 b2 s2, target 0.3 on CIFAR-100: the paper's 74.94 % at 127 MFLOPs (with
# this width the count is 115.6 MMACs at r = 0.3, sar.md §2.8).
_base_ = ['./_base_/sar-resnet32_cifar100-300e.py']
model = dict(
    sparsity=dict(target=0.3),
    backbone=dict(width=2, groups=4, alpha=2, beta=2),
    head=dict(in_channels=128))
