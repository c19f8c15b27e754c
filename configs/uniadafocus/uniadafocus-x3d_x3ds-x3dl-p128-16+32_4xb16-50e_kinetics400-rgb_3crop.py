# The 3-crop test of Uni-AdaFocus-X3D on Kinetics-400 (Table 5: 76.6 top-1 at 8.8 x 3 GFLOPs without
# sample-wise dynamic, 76.2 at 4.9 x 3 with it): short side 224, three 224 x 224 crops covering the frame
# (mmaction2's ThreeCrop), each a view of the single-crop model; the views' softmax scores are averaged
# after every exit and a video costs three views (exit_macs). Train with the single-crop config, test with
#   python tools/test.py configs/uniadafocus/uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb_3crop.py CKPT
_base_ = ['./uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb.py']
num_glance, num_candidates = 16, 96
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=num_glance, num_candidates=num_candidates,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_dataloader = dict(batch_size=4, dataset=dict(pipeline=test_pipeline))
