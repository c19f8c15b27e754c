# MGNet, ResNet-34 without the stem max-pool (the paper's "dagger"), 3 glimpses of 32 x 32 from 64 x 64
# (M = 2), Tiny ImageNet. Paper (Table 3): 0.8837 GMACs, top-1 58.38 %. The paper gives no Tiny ImageNet
# hyper-parameters (alpha, s, epochs, augmentation): ours are the ImageNet100 ones.
_base_ = ['./_base_/runtime.py', './_base_/tiny_imagenet_bs64.py', './_base_/onecycle_sgd_400e.py']
model = dict(
    type='MGNet',
    backbone=dict(type='ResNet', depth=34, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    num_classes={{_base_.num_classes}},
    num_glimpses=3,
    glimpse_size=32,
    scale_range=(0.2, 0.5),
    grad_scale=0.02,
    aux_weight=0.6,
    stem_maxpool=False,
    data_preprocessor={{_base_.data_preprocessor}},
)
