# The 3-crop test of Uni-AdaFocus-X3D on Kinetics-400 (Table 5: 76.6 top-1 at 8.8 x 3 GFLOPs without
# sample-wise dynamic, 76.2 at 4.9 x 3 with it), as the official main_nViewEval.py: the short side to 256
# with PIL's bilinear filter (PillowResize: mmaction2's Resize uses OpenCV, whose bilinear does not
# antialias when it shrinks and rounds the long side where torchvision truncates it), then three 224 x 224
# crops at TSN's offsets (TSNThreeCrop: x = 0, 4s, 2s with s = floor((W - 224) / 4), all at
# y = 2 floor((H - 224) / 4); left, right, centre). Each crop is a view of the single-crop model; the
# views' raw logits are averaged after every exit (the model's view_average='logits'; 'softmax' averages
# the softmax scores instead), early exit decides on the averaged logits, and a video costs three views
# (exit_macs). Train with the single-crop config, test with
#   python tools/test.py configs/uniadafocus/uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb_3crop.py CKPT
_base_ = ['./uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb.py']
num_glance, num_candidates = 16, 96
short_side, crop_size = 256, 224
model = dict(view_average='logits')
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleGlanceAndFocusFrames', num_glance=num_glance, num_candidates=num_candidates,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='PillowResize', scale=(-1, short_side), interpolation='bilinear'),
    dict(type='TSNThreeCrop', crop_size=crop_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_dataloader = dict(batch_size=4, dataset=dict(pipeline=test_pipeline))
