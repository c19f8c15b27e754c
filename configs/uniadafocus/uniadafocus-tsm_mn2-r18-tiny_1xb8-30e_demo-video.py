# Uni-AdaFocus-TSM scaled down for the demo videos on CPU: a 4-frame glance clip at 64 px for a half-width
# TSM-MobileNet-V2 (up to stride 16: 4 x 4 maps), T_0 = 12 focus candidates of which T_L = 4 are read by a
# TSM-ResNet-18 on one 24..112 px box per video resized to P = 32; FC + averaging, two exits.
_base_ = ['./_base_/demo_video.py', './_base_/demo_schedule_30e.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
model = dict(
    type='UniAdaFocusTSM',
    backbone=dict(type='MobileNetV2TSM', num_segments=4, shift_div=8, widen_factor=0.5,
                  out_indices=(4, ), pretrained2d=False),
    local_backbone=dict(type='ResNetTSM', depth=18, num_segments=4, shift_div=8,
                        shift_place='blockres', pretrained2d=False),
    num_classes={{_base_.num_classes}}, global_channels=48, local_channels=512, feature_size=4,
    glance_size=64, num_glance=4, num_candidates=12, num_focus=4, patch_size=32, min_box_size=24,
    spatial_hidden=32, temporal_hidden=16, dropout=0.5, size_reg=0.5,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
frame_size = 112
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=4, num_candidates=12),
    dict(type='DecordDecode'),
    dict(type='MultiScaleCrop', input_size=frame_size, scales=(1, 0.875), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(frame_size, frame_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=4, num_candidates=12, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, frame_size)),
    dict(type='CenterCrop', crop_size=frame_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(
    clip_grad=dict(max_norm=20, norm_type=2),
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
