# AdaFocusV2 scaled down for the demo videos on CPU: all 16 frames glanced at 112 px by a half-width
# MobileNet-V2 (up to stride 16: 7 x 7 maps), one 32 x 32 patch per frame for a 1/4-width ResNet-18.
_base_ = ['./_base_/demo_video.py', './_base_/demo_schedule_30e.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='AdaFocusV2',
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5, out_indices=(4, )),
    local_backbone=dict(type='mmpretrain.ResNet', depth=18, stem_channels=16, base_channels=16,
                        out_indices=(3, )),
    num_classes={{_base_.num_classes}}, global_channels=48, local_channels=128, feature_size=7,
    num_frames={{_base_.num_candidates}}, patch_size=32, policy_hidden=64, fusion_hidden=256,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        'local_backbone': dict(lr_mult=1.0),
        'backbone': dict(lr_mult=0.5),
        'fc_global': dict(lr_mult=0.5),
        'policy': dict(lr_mult=0.1),
    }))
# the glance encoder stops at stride 16 (out_indices=(4, )): its later stages are removed when the
# model is built (drop_unused_stages), so every parameter takes part in the loss
