# The demo video set for the pre-trained demo: 64 px frames with a 14 px digit card (the card scale of the
# shared stand-in pre-training, configs/demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py) and no letter
# cards, 400 training / 100 validation videos of 16 frames (the digit shows in 3 consecutive frames):
#   python tools/misc/make_demo_data.py --root data/demo_uaf64 --tasks video --img-size 64 \
#       --obj-size 14 --num-train 400 --num-val 100 --num-distractors 0
# (12 s). The geometry follows the paper's: P = 32 patches on 64 px frames (P = 128 on 224 px).
# The test pipeline leaves the frames as they are, so the boxes of val_meta.json are frame coordinates
# (tools/analysis_tools/uniadafocus_policy_stats.py).
_base_ = ['./demo_video.py']
data_root = 'data/demo_uaf64/video'
frame_size = 64

# The pipelines of demo_video.py with 64 px frames: MMEngine substitutes a base file's variables when it
# reads that file, so overriding frame_size here does not reach the pipelines defined there.
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips={{_base_.num_candidates}}),
    dict(type='DecordDecode'),
    dict(type='MultiScaleCrop', input_size=frame_size, scales=(1, 0.875), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(frame_size, frame_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips={{_base_.num_candidates}},
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, frame_size)),
    dict(type='CenterCrop', crop_size=frame_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(ann_file=data_root + '/train_list.txt',
                                     data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(ann_file=data_root + '/val_list.txt',
                                   data_prefix=dict(video=data_root), pipeline=test_pipeline))
test_dataloader = val_dataloader
