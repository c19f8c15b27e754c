# SAR-ResNet20 (x1.5 width) G2 a2 b1 s2 on CIFAR-10, 500 epochs (paper: +0.8 % vs ResNet20-BAS at
# ~37 MFLOPs; 36.4 MMACs at r = 0.5 with this width, sar.md §2.8).
_base_ = ['./sar-resnet32-g2a2b1-t0.5_1xb128-500e_cifar10.py']
model = dict(backbone=dict(depth=20, width=1.5), head=dict(in_channels=96))
