# SAR-ResNet ImageNet recipe (sar.md §4.2): 200 epochs, batch 256 (4 GPUs x 64), SGD (Nesterov, momentum
# 0.9, wd 1e-4 on all parameters), 5-epoch linear warm-up from lr/4 to 0.1 then cosine to 0, label
# smoothing 0.1, RandomResizedCrop + ColorJitter(0.4) + flip + PCA lighting; test: resize 256, crop 224.
# Sparsity: lambda = 0.5, tau 1 -> 0.01 (exponential, per iteration), target 1 -> t in three steps
# between 30 % and 50 % of training.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

model = dict(
    type='SARImageClassifier',
    sparsity=dict(target=0.5, weight=0.5, loss_type='batch'),
    backbone=dict(type='SARResNet', depth=50, groups=2, alpha=2, beta=1, base_scale=2,
                  mask_grid=(14, 7, 2), fusion='att', out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0),
              topk=(1, 5)),
)

# AlexNet PCA lighting (ImageNet RGB eigen decomposition, in 0..255 pixel units)
lighting = dict(
    type='Lighting',
    eigval=[55.4625, 4.7940, 1.1475],
    eigvec=[[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]],
    alphastd=0.1,
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    lighting,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.25, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=195, by_epoch=True, begin=5, end=200, eta_min=0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)

custom_hooks = [
    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.01, target_begin=0.3, target_end=0.5),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3,
                                     save_best='auto'))
