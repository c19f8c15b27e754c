# SAR-ResNet32 G2 a2 b1 s2 on CIFAR-10, 500 epochs (paper: DynConv32's ~93.9 % with 20 % fewer FLOPs).
_base_ = ['./_base_/sar-resnet32_cifar100-300e.py']
model = dict(head=dict(num_classes=10))
data_preprocessor = dict(
    num_classes=10, mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255], to_rgb=False)
train_dataloader = dict(dataset=dict(type='CIFAR10', data_root='data/cifar10'))
val_dataloader = dict(dataset=dict(type='CIFAR10', data_root='data/cifar10/'))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=500, by_epoch=True, begin=0, end=500, eta_min=0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=500)
