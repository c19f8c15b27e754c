# Untrimmed-video rawframe sets of the MN2 + R50 setting (ActivityNet v1.3, FCVID, Mini-Kinetics): 48 TSN
# segments per video (one frame each: the T_0 candidates), one shared multi-scale crop and flip for all
# frames of a video in training, single centre-crop clip at test (spec §5.3).
# Lists are mmaction2 RawframeDataset lists: `<frame_dir> <num_frames> <label> [<label> ...]`; the
# official comma-separated lists convert with `sed 's/,/ /g'`.
dataset_type = 'RawframeDataset'
data_root = 'data/activitynet/frames'
ann_file_train = 'data/activitynet/actnet_train_split.txt'
ann_file_val = 'data/activitynet/actnet_val_split.txt'
filename_tmpl = 'image_{:05d}.jpg'
num_classes = 200
multi_class = True
num_candidates = 48
file_client_args = dict(io_backend='disk')

train_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_candidates),
    dict(type='RawFrameDecode', **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_candidates,
         test_mode=True),
    dict(type='RawFrameDecode', **file_client_args),
    # the official test frames: short side 256 with PIL's bilinear filter, torchvision's centre crop
    dict(type='PillowResize', scale=(-1, 256), interpolation='bilinear'),
    dict(type='TSNCenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=ann_file_train, data_prefix=dict(img=data_root),
                 filename_tmpl=filename_tmpl, multi_class=multi_class, num_classes=num_classes,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=ann_file_val, data_prefix=dict(img=data_root),
                 filename_tmpl=filename_tmpl, multi_class=multi_class, num_classes=num_classes,
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
# mAP over classes from softmax scores (mmaction2's metric equals spec §5.2 on these sets), and the
# mAP after every exit
val_evaluator = [dict(type='AccMetric', metric_list=('mean_average_precision', )),
                 dict(type='AnytimeMAP')]
test_evaluator = val_evaluator
