# SAR-ResNet32 G2 a2 b1 s2, target 0.5 on CIFAR-100 (25.8 MMACs at r = 0.5; G2 vs G1: +0.5 % and -41 %).
_base_ = ['./_base_/sar-resnet32_cifar100-300e.py']
