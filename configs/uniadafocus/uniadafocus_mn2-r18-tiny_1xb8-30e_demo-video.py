# Uni-AdaFocus, MobileNet-V2 + ResNet setting, scaled down for the demo videos on CPU:
# T_0 = 16 candidates (every frame), T_G = 4 glance frames at 64 px (half-width MobileNet-V2 up to stride 16:
# a 4 x 4 feature map), T_L = 4 focus frames, deformable boxes of 24..112 px resized to P = 32 for a
# 1/4-width ResNet-18. Costs and a budget curve: tools/test.py CONFIG CKPT --budget ... (see README).
_base_ = ['./_base_/demo_video.py', './_base_/demo_schedule_30e.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)

model = dict(
    type='UniAdaFocus',
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5, out_indices=(4, )),
    local_backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16, base_channels=16,
                        out_indices=(3, )),
    num_classes={{_base_.num_classes}},
    global_channels=48, local_channels=128, feature_size=4, glance_size=64,
    num_candidates={{_base_.num_candidates}}, num_glance=4, num_focus=4,
    patch_size=32, min_box_size=24,
    spatial_hidden=32, temporal_hidden=16, fusion_hidden=256, dropout=0.2,
    size_reg=1.0, temporal_loss='expected_ce', num_mc_samples=128,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))

# Per-component learning rates (spec §3.5): f_G x0.5, policy x0.2, FC_G / FC_Aux x0.5 of the base
# (f_L's) rate. The paper's x20 for f_C is an SGD setting; with AdamW from scratch f_C runs at x1.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'spatial_policy': dict(lr_mult=0.2),
        'temporal_policy': dict(lr_mult=0.2),
        'fc_global': dict(lr_mult=0.5),
        'fc_aux': dict(lr_mult=0.5),
    }))
# the glance encoder stops at stride 16 (out_indices=(4, )): its later stages are removed when the
# model is built (drop_unused_stages), so every parameter takes part in the loss
