# SAR-ResNet CIFAR recipe (sar.md §4.1): SGD (Nesterov, momentum 0.9, wd 1e-4), lr 0.2 for batch 128,
# cosine per iteration without warm-up, 300 epochs, pad-4 crop + flip. Sparsity: lambda = 1, tau 1 -> 0.01
# over all epochs, target steps between 30 % and 50 % of training (epochs 90 and 150).
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

model = dict(
    type='SARImageClassifier',
    sparsity=dict(target=0.5, weight=1.0, loss_type='batch'),
    # fusion='add': the authors' CIFAR model (sar_resnet_cifar3stage_alphaBase) sums the branches and
    # has no attention weights. fusion='att' (paper Eq. 5): sar-resnet32-g2a2b1-t0.5-att-fusion_*.py.
    backbone=dict(type='SARResNetCifar', depth=32, width=1, groups=2, alpha=2, beta=1,
                  mask_grid=(4, 4, 2), fusion='add'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=300, by_epoch=True, begin=0, end=300, eta_min=0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
custom_hooks = [
    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.01, target_begin=0.3, target_end=0.5),
]
