# Frames of the Uni-AdaFocus-TSM settings (Something-Something V1/V2, Jester; spec §5): a glance clip of
# T_G = 8 TSN segments and T_0 = 3 T_L focus candidates (SampleGlanceAndFocusFrames), one multi-scale crop
# for every frame of a video, no flip (direction-sensitive labels); test: short side 256, centre crop 224.
# One pipeline pair per T_0 (24, 36, 48: T_L = 8, 12, 16; 12 for AdaFocusV2-TSM, which reads its whole focus
# clip); a config picks its pair for its dataloaders.
# Chain: default runtime + the model (uniadafocus_tsm.py) -> these frames -> tsm_{sthv1,sthv2,jester}.py.
_base_ = ['mmaction::_base_/default_runtime.py', './uniadafocus_tsm.py']
_train_tail = [
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
_test_tail = [
    dict(type='RawFrameDecode'),
    # the official test frames: short side 256 with PIL's bilinear filter, torchvision's centre crop
    dict(type='PillowResize', scale=(-1, 256), interpolation='bilinear'),
    dict(type='TSNCenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
# AdaFocusV2-TSM: 8 glance frames and a focus clip of 12 (all read; no frame selection)
train_pipeline_t12 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=12)
                      ] + _train_tail
test_pipeline_t12 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=12,
                          test_mode=True)] + _test_tail
train_pipeline_t24 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=24)
                      ] + _train_tail
test_pipeline_t24 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=24,
                          test_mode=True)] + _test_tail
train_pipeline_t36 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=36)
                      ] + _train_tail
test_pipeline_t36 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=36,
                          test_mode=True)] + _test_tail
train_pipeline_t48 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=48)
                      ] + _train_tail
test_pipeline_t48 = [dict(type='SampleGlanceAndFocusFrames', num_glance=8, num_candidates=48,
                          test_mode=True)] + _test_tail

val_evaluator = [dict(type='AccMetric', metric_list=('top_k_accuracy', )),
                 dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
