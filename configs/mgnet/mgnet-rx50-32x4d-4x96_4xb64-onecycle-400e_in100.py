# MGNet, ResNeXt-50 32x4d, 4 glimpses of 96 x 96 from 224 x 224 (M = 7/3), ImageNet100, the paper's recipe.
# Paper (Table 1): 3.276 GMACs, top-1 83.16 % at glimpse 4.
_base_ = ['./_base_/runtime.py', './_base_/imagenet100_bs64.py', './_base_/onecycle_sgd_400e.py']
model = dict(
    type='MGNet',
    backbone=dict(type='ResNeXt', depth=50, groups=32, width_per_group=4, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    num_classes={{_base_.num_classes}},
    num_glimpses=4,
    glimpse_size=96,  # not int(224 // (7 / 3)) = 95
    scale_range=(0.2, 0.5),
    grad_scale=0.01,
    aux_weight=0.6,
    aux_on_first_glimpse=False,  # the authors' code; True: the paper's Eq. 8
    data_preprocessor={{_base_.data_preprocessor}},
)
