# Copyright (c) mmdynamic contributors. All rights reserved.
"""Video pipelines of Uni-AdaFocus: T_0 frames with shared augmentation; the two-clip input."""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdynamic.datasets  # noqa: F401
from mmdynamic.datasets.transforms import SampleGlanceAndFocusFrames
from tests.conftest import REPO


def _compose(pipeline):
    init_default_scope('mmaction')
    import mmaction.datasets  # noqa: F401
    from mmaction.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in pipeline])


def test_glance_and_focus_frames_segments():
    results = dict(total_frames=48, start_index=0)
    test = SampleGlanceAndFocusFrames(8, 24, test_mode=True).transform(dict(results))
    inds = test['frame_inds']
    assert len(inds) == 32 and test['num_clips'] == 32 and test['clip_len'] == 1
    assert test['num_glance_frames'] == 8
    assert inds[:8].tolist() == list(range(3, 48, 6))  # centre of each of 8 segments of 6
    assert inds[8:].tolist() == list(range(1, 48, 2))  # centre of each of 24 segments of 2
    np.random.seed(0)
    train = [SampleGlanceAndFocusFrames(8, 24).transform(dict(results))['frame_inds']
             for _ in range(20)]
    for inds in train:
        assert (inds[:8] // 6 == np.arange(8)).all() and (inds[8:] // 2 == np.arange(24)).all()
    assert len({tuple(i) for i in train}) > 1  # random member of each segment in training
    with pytest.raises(ValueError, match='positive'):
        SampleGlanceAndFocusFrames(0, 24)


def test_shared_augmentation_across_frames():
    """One crop and one flip for every frame of a video (MultiScaleCrop, Resize, Flip)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    pipeline = _compose([
        dict(type='MultiScaleCrop', input_size=64, scales=(1, 0.875, 0.75, 0.66),
             random_crop=False, max_wh_scale_gap=1),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='Flip', flip_ratio=0.5),
        dict(type='FormatShape', input_format='NCHW'),
    ])
    flips = set()
    for seed in range(8):
        np.random.seed(seed)
        import random
        random.seed(seed)
        out = pipeline(dict(imgs=[frame.copy() for _ in range(48)], img_shape=(120, 160),
                            original_shape=(120, 160), modality='RGB', num_clips=48, clip_len=1))
        imgs = out['imgs']
        assert imgs.shape == (48, 3, 64, 64)
        assert all(np.array_equal(imgs[0], imgs[t]) for t in range(48))  # the same crop/flip
        flips.add(bool(out['flip']))
    assert flips == {True, False}


def test_demo_pipeline_decodes_t0_frames(demo_root):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'uniadafocus',
                                   'uniadafocus_mn2-r18-tiny_1xb8-30e_demo-video.py'))
    video = osp.join(demo_root, 'video', 'train', 'train_00000.mp4')
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        out = _compose(pipeline)(dict(filename=video, label=0, start_index=0, modality='RGB'))
        assert tuple(out['inputs'].shape) == (16, 3, 112, 112)
    assert not any(t['type'] == 'Flip' for t in cfg.train_pipeline)  # digits: no flip


def test_two_clip_pipeline_on_a_real_video(demo_root):
    video = osp.join(demo_root, 'video', 'val', 'val_00000.mp4')
    pipeline = _compose([
        dict(type='DecordInit'),
        dict(type='SampleGlanceAndFocusFrames', num_glance=4, num_candidates=12, test_mode=True),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(-1, 64)),
        dict(type='CenterCrop', crop_size=64),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs'),
    ])
    out = pipeline(dict(filename=video, label=3, start_index=0, modality='RGB'))
    assert tuple(out['inputs'].shape) == (16, 3, 64, 64)  # 4 glance + 12 candidates
