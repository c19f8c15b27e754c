# The demo video set (tools/misc/make_demo_data.py --tasks video): 16-frame 112 px mp4 videos, decoded by
# decord, 10 digit classes; the digit shows in only 3 consecutive frames at a random place.
# Every video yields all its 16 frames as the T_0 candidates (one per TSN segment). No flip: digits are
# orientation-sensitive (as the labels of Something-Something and Jester are).
data_root = 'data/demo/video'
num_classes = 10
num_candidates = 16
frame_size = 112

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_candidates),
    dict(type='DecordDecode'),
    # one crop for all frames of a video (shared augmentation), then back to the frame size
    dict(type='MultiScaleCrop', input_size=frame_size, scales=(1, 0.875), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(frame_size, frame_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_candidates,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, frame_size)),
    dict(type='CenterCrop', crop_size=frame_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VideoDataset', ann_file=data_root + '/train_list.txt',
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file=data_root + '/val_list.txt',
                 data_prefix=dict(video=data_root), pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='AccMetric', metric_list=('top_k_accuracy', ),
         metric_options=dict(top_k_accuracy=dict(topk=(1, )))),
    dict(type='AnytimeAccuracy'),  # top-1 after every exit (glance, then each focus step)
]
test_evaluator = val_evaluator
