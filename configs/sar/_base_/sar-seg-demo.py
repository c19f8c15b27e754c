# Shared parts of the SAR segmentation demos: OS-8 SAR-ResNet-50 (G2 s4 a1, 1/4 width, BN) in an
# EncoderDecoder with the sparsity loss and an FCN auxiliary head, iteration schedule for CPU. The demo
# configs add their decode head.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../../_base_/datasets/demo_seg.py',
]
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
sar_seg_backbone = dict(
    type='SARResNet', depth=50, stem_channels=16, base_channels=16, groups=2, alpha=1, beta=1,
    base_scale=4, strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4),
    # mask cells in pixels at the OS-8 strides 4 / 8 / 8: the (8, 4, 2) grid at the 128 px demo size
    mask_cell_size=(4, 4, 8),
    sparse_infer=False,  # True: refine only the selected cells at test time (same results)
    mask_bias_init=(0.0, 2.0), out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg, init_cfg=None)
num_seg_classes = 11  # background + 10 digits
model = dict(
    type='SAREncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    sparsity=dict(target=0.5, weight=0.5, loss_type='batch'),
    backbone=sar_seg_backbone,
    auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2, channels=32, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=num_seg_classes,
                        norm_cfg=norm_cfg, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# larger learning rate for the mask generators in this short schedule (see sar-r50-w16_demo.py)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=10),
                     paramwise_cfg=dict(custom_keys={'.masks.': dict(lr_mult=25.0, decay_mult=0.0)}))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=600, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600, val_interval=300)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=300,
                                     max_keep_ckpts=2))
custom_hooks = [
    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.01, target_begin=0.3, target_end=0.5),
]
randomness = dict(seed=0)
