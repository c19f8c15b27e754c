# SAR-ResNet32 G1 a2 b1 s2, target 0.5 on CIFAR-100 (the G1 reference of the G2-vs-G1 comparison).
_base_ = ['./_base_/sar-resnet32_cifar100-300e.py']
model = dict(backbone=dict(groups=1))
