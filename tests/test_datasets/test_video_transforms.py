# Copyright (c) mmdynamic contributors. All rights reserved.
"""Video pipelines of Uni-AdaFocus: T_0 frames with shared augmentation; the two-clip input."""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdynamic.datasets  # noqa: F401
from mmdynamic.datasets.transforms import (PillowResize, SampleGlanceAndFocusFrames,
                                           TSNCenterCrop, TSNThreeCrop)
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


def _frames(height, width, num=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num)]


@pytest.mark.parametrize('height, width, y, xs', [
    # s_x = (55 - 21) // 4 = 8, s_y = (39 - 21) // 4 = 4: the right crop ends at 53, not 55, and
    # y = 8, not the centred 9 (mmaction2's ThreeCrop needs crop_h == 39 or crop_w == 55)
    (39, 55, 8, (0, 32, 16)),
    # portrait: still along the width; s_x = (25 - 21) // 4 = 1, s_y = (60 - 21) // 4 = 9
    (60, 25, 18, (0, 4, 2)),
])
def test_tsn_three_crop_official_offsets_and_order(height, width, y, xs):
    """TSN's GroupFullResSample offsets (the official X3D 3-crop test), by hand: left, right, centre."""
    frames = _frames(height, width)
    out = _compose([dict(type='TSNThreeCrop', crop_size=21)])(
        dict(imgs=list(frames), img_shape=(height, width), modality='RGB'))
    assert len(out['imgs']) == 9 and out['img_shape'] == (21, 21)
    for view, x in enumerate(xs):  # all frames of a crop, then the next crop
        for t, frame in enumerate(frames):
            assert np.array_equal(out['imgs'][3 * view + t], frame[y:y + 21, x:x + 21])
    boxes = [[x, y, x + 21, y + 21] for x in xs for _ in frames]
    assert out['crop_bbox'].tolist() == boxes
    assert TSNThreeCrop((21, 21)).offsets(width, height) == [(x, y) for x in xs]


@pytest.mark.parametrize('height, width, x, y', [
    (25, 31, 6, 2),  # (31 - 20) / 2 = 5.5 -> 6 and 2.5 -> 2 (halves to even); mmaction2: 5 and 2
    (29, 29, 4, 4),  # 4.5 -> 4 both ways
])
def test_tsn_center_crop_rounds_as_torchvision(height, width, x, y):
    frames = _frames(height, width)
    out = _compose([dict(type='TSNCenterCrop', crop_size=20)])(
        dict(imgs=list(frames), img_shape=(height, width), modality='RGB'))
    assert out['img_shape'] == (20, 20) and out['crop_bbox'].tolist() == [x, y, x + 20, y + 20]
    for frame, img in zip(frames, out['imgs']):
        assert np.array_equal(img, frame[y:y + 20, x:x + 20])
    assert TSNCenterCrop(224).offset(455, 256) == (116, 16)  # 16:9 at short side 256
    ref = _compose([dict(type='CenterCrop', crop_size=20)])(
        dict(imgs=list(frames), img_shape=(height, width), modality='RGB'))
    assert (ref['crop_bbox'][0] == x) == (width != 31)
    with pytest.raises(ValueError, match='does not fit'):
        TSNCenterCrop(32).transform(dict(imgs=frames, img_shape=(height, width)))


def test_tsn_three_crop_rejects_bad_sizes():
    with pytest.raises(ValueError, match='does not fit'):
        TSNThreeCrop(224).transform(dict(imgs=_frames(200, 300), img_shape=(200, 300)))
    with pytest.raises(ValueError, match='crop_size'):
        TSNThreeCrop(0)
    with pytest.raises(ValueError, match='crop_size'):
        TSNThreeCrop((224, 224, 3))


@pytest.mark.parametrize('height, width, size', [
    (61, 97, (63, 40)),  # 40 * 97 / 61 = 63.6: truncated as torchvision does (mmcv rounds: 64)
    (97, 61, (40, 63)),  # portrait
    (30, 45, (60, 40)),  # enlarged
])
def test_pillow_resize_matches_pil_and_torchvision_sizes(height, width, size):
    """PIL's bilinear filter and torchvision's size rule, as the official test's GroupScale."""
    from PIL import Image
    frames = _frames(height, width)
    out = _compose([dict(type='PillowResize', scale=(-1, 40))])(
        dict(imgs=list(frames), img_shape=(height, width), modality='RGB'))
    assert out['img_shape'] == size[::-1]
    for frame, img in zip(frames, out['imgs']):
        expected = np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
        assert np.array_equal(img, expected)
    assert np.allclose(out['scale_factor'], [size[0] / width, size[1] / height])
    # mmaction2's Resize: OpenCV (no antialiasing when shrinking) and mmcv's rounded long side
    ref = _compose([dict(type='Resize', scale=(-1, 40))])(
        dict(imgs=list(frames), img_shape=(height, width), modality='RGB'))
    if ref['img_shape'] == out['img_shape']:
        assert not np.array_equal(ref['imgs'][0], out['imgs'][0])
    rounded = PillowResize((-1, 40), size_rounding='round').output_size(width, height)
    assert rounded == ref['img_shape'][::-1]


def test_pillow_resize_keeps_frames_at_size_and_rejects_bad_args():
    frames = _frames(40, 71)
    out = PillowResize((-1, 40)).transform(dict(imgs=list(frames), img_shape=(40, 71)))
    assert all(a is b for a, b in zip(out['imgs'], frames)) and out['img_shape'] == (40, 71)
    fixed = PillowResize((32, 24), keep_ratio=False).transform(
        dict(imgs=list(frames), img_shape=(40, 71)))
    assert fixed['imgs'][0].shape == (24, 32, 3)
    with pytest.raises(ValueError, match='scale'):
        PillowResize((64, 64))  # keep_ratio needs (-1, S)
    with pytest.raises(ValueError, match='interpolation'):
        PillowResize((-1, 64), interpolation='area')
    with pytest.raises(ValueError, match='size_rounding'):
        PillowResize((-1, 64), size_rounding='ceil')
    with pytest.raises(ValueError, match='uint8'):
        PillowResize((-1, 20)).transform(dict(imgs=[np.zeros((40, 71, 3), np.float32)],
                                              img_shape=(40, 71)))
