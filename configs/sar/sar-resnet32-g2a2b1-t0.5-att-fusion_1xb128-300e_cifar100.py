# SAR-ResNet32 G2 a2 b1 s2, target 0.5 on CIFAR-100, with the paper's channel-attention fusion (Eq. 5)
# instead of the additive fusion of the authors' CIFAR code (the default of the other CIFAR configs): two
# bias-free Linear layers per stage (C -> C/16 -> C), 672 more parameters. Official CIFAR checkpoints
# have no attention weights and load into the additive configs only.
_base_ = ['./sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py']
model = dict(backbone=dict(fusion='att'))
