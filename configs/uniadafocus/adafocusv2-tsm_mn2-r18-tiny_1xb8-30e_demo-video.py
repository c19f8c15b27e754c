# AdaFocusV2-TSM scaled down for the demo videos on CPU: a 4-frame glance clip at 112 px for a half-width
# TSM-MobileNet-V2 (up to stride 16: 7 x 7 maps), one 32 x 32 patch place per video from a policy over all
# 4 glance maps, cropped from an independently sampled 4-frame focus clip for a TSM-ResNet-18; prediction
# = averaged prediction heads of both encoders, two exits (the glance, the prediction).
# Data, schedule, hooks and runtime: the Uni-AdaFocus-TSM demo config.
_base_ = ['./uniadafocus-tsm_mn2-r18-tiny_1xb8-30e_demo-video.py']
num_glance = 4
num_focus = 4
model = dict(
    _delete_=True,
    type='AdaFocusV2TSM',
    backbone=dict(type='MobileNetV2TSM', num_segments=num_glance, shift_div=8, widen_factor=0.5,
                  out_indices=(4, ), pretrained2d=False),
    local_backbone=dict(type='ResNetTSM', depth=18, num_segments=num_focus, shift_div=8,
                        shift_place='blockres', pretrained2d=False),
    num_classes={{_base_.num_classes}}, global_channels=48, local_channels=512, feature_size=7,
    num_glance=num_glance, num_focus=num_focus, patch_size=32, policy_hidden=(64, 32),
    policy_mid_channels=16, dropout=0.5,
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCHW'))
# the whole focus clip is read (no frame selection): T_0 = T_L; the rest as the base pipelines
frame_size = 112
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=num_glance, num_candidates=num_focus),
    dict(type='DecordDecode'),
    dict(type='MultiScaleCrop', input_size=frame_size, scales=(1, 0.875), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(frame_size, frame_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=num_glance, num_candidates=num_focus,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, frame_size)),
    dict(type='CenterCrop', crop_size=frame_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, custom_keys={
    'local_backbone': dict(lr_mult=1.0),
    'backbone': dict(lr_mult=0.5),
    'fc_global': dict(lr_mult=0.5),
    'policy': dict(lr_mult=0.1),
}))
