# Copyright (c) mmdynamic contributors. All rights reserved.
"""The demo data: deterministic, readable by the frameworks, and spatially/temporally redundant."""
import glob
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmdynamic.datasets import CanvasConfig, make_classification, make_demo_data


def _tree_digest(root: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(root, '**', '*'), recursive=True)):
        if osp.isfile(path):
            digest.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def test_deterministic_and_seeded(tmp_path):
    kwargs = dict(tasks=('cls', 'det', 'seg', 'video'), num_train=4, num_val=2, img_size=64)
    make_demo_data(str(tmp_path / 'a'), seed=3, **kwargs)
    make_demo_data(str(tmp_path / 'b'), seed=3, **kwargs)
    make_demo_data(str(tmp_path / 'c'), seed=4, **kwargs)
    for task in ('cls', 'det', 'seg'):
        a, b, c = (_tree_digest(str(tmp_path / x / task)) for x in 'abc')
        assert a == b, task
        assert a != c, task
    # videos: the encoder may differ in container metadata, so compare the list and the metadata
    for name in ('train_list.txt', 'train_meta.json'):
        assert (tmp_path / 'a/video' / name).read_text() == (tmp_path / 'b/video' / name).read_text()


def test_regenerates_only_on_change(tmp_path):
    root = str(tmp_path)
    make_demo_data(root, tasks=('cls', ), num_train=4, num_val=2, img_size=64)
    stamp = osp.join(root, 'cls', '.complete')
    mtime = os.stat(stamp).st_mtime_ns
    make_demo_data(root, tasks=('cls', ), num_train=4, num_val=2, img_size=64)
    assert os.stat(stamp).st_mtime_ns == mtime
    make_demo_data(root, tasks=('cls', ), num_train=6, num_val=2, img_size=64)
    assert len(glob.glob(osp.join(root, 'cls', 'train', '*', '*.png'))) == 6
    # fewer samples: the set is rewritten, no stale files of the larger one survive
    make_demo_data(root, tasks=('cls', ), num_train=3, num_val=2, img_size=64, num_distractors=0)
    assert len(glob.glob(osp.join(root, 'cls', 'train', '*', '*.png'))) == 3


def test_geometry_options(tmp_path):
    """``obj_size`` and ``num_distractors`` reach the canvas and the stamp; bad values raise."""
    root = str(tmp_path)
    make_demo_data(root, tasks=('cls', ), num_train=4, num_val=2, img_size=96, obj_size=20,
                   num_distractors=0)
    with open(osp.join(root, 'cls', 'train_boxes.json')) as f:
        boxes = json.load(f)
    for rel, (x1, y1, x2, y2) in boxes.items():
        assert (x2 - x1, y2 - y1) == (20, 20)
    with open(osp.join(root, 'cls', '.complete')) as f:
        stamp = json.load(f)
    assert stamp['obj_size'] == 20 and stamp['num_distractors'] == 0
    with pytest.raises(ValueError, match='num_distractors must be >= 0'):
        make_demo_data(str(tmp_path / 'bad'), tasks=('cls', ), num_distractors=-1)


@pytest.mark.parametrize('kwargs, match', [
    (dict(tasks=('audio', )), 'unknown demo task'),
    (dict(num_classes=11), 'num_classes must be in'),
    (dict(num_classes=1), 'num_classes must be in'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_demo_data(str(tmp_path), **kwargs)


def test_canvas_checks():
    with pytest.raises(ValueError, match='at least twice obj_size'):
        CanvasConfig(img_size=40, obj_size=24)


def test_mmpretrain_reads_cls(demo_root):
    from mmpretrain.datasets import CustomDataset
    ds = CustomDataset(data_root=osp.join(demo_root, 'cls'), data_prefix='train',
                       pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    assert len(ds) == 40 and len(ds.CLASSES) == 10
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 128, 128)


def test_mmdet_reads_coco(demo_root):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoDataset(
        data_root=osp.join(demo_root, 'det'), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'), metainfo=dict(classes=tuple(str(i) for i in range(10))),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackDetInputs')], test_mode=True)
    assert len(ds) == 20
    sample = ds[0]
    boxes = sample['data_samples'].gt_instances.bboxes.tensor
    assert boxes.shape[0] >= 1 and (boxes[:, 2:] > boxes[:, :2]).all()


def test_mmseg_reads_voc(demo_root):
    from mmseg.datasets import BaseSegDataset
    from mmseg.utils import register_all_modules
    register_all_modules()
    root = osp.join(demo_root, 'seg')
    with open(osp.join(root, 'meta.json')) as f:
        classes = tuple(json.load(f)['classes'])
    ds = BaseSegDataset(
        data_root=root, ann_file='ImageSets/Segmentation/train.txt', img_suffix='.jpg',
        seg_map_suffix='.png', metainfo=dict(classes=classes),
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')])
    assert len(ds) == 40
    seg = ds[0]['data_samples'].gt_sem_seg.data
    assert seg.max() <= 10 and seg.max() >= 1 and (seg == 0).any()


def test_mmaction_decodes_videos(demo_root):
    import mmdynamic  # noqa: F401  (mmaction import shim)
    from mmaction.datasets import VideoDataset
    from mmaction.utils import register_all_modules
    register_all_modules()
    root = osp.join(demo_root, 'video')
    ds = VideoDataset(
        ann_file=osp.join(root, 'val_list.txt'), data_prefix=dict(video=root),
        pipeline=[dict(type='DecordInit'), dict(type='SampleFrames', clip_len=16, num_clips=1,
                                                  test_mode=True),
                  dict(type='DecordDecode'), dict(type='FormatShape', input_format='NCTHW'),
                  dict(type='PackActionInputs')], test_mode=True)
    assert len(ds) == 20
    assert tuple(ds[0]['inputs'].shape) == (1, 3, 16, 112, 112)


# ------------------------------------------------------------------------------------------------
# The redundancy the dynamic models exploit
# ------------------------------------------------------------------------------------------------
def _ink(patch: np.ndarray) -> np.ndarray:
    """Colour-independent glyph features: deviation from the patch's median colour, in [0, 1]."""
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return np.abs(gray - np.median(gray)) / 255.0


def _crop_features(root: str, split: str, scale: float, side: int):
    """Object crops at full resolution (scale 1) or from the image downscaled by ``scale``.

    Both are resampled to ``side`` x ``side``, so only the resolution the crop carries differs.
    """
    with open(osp.join(root, f'{split}_boxes.json')) as f:
        boxes = json.load(f)
    feats, labels = [], []
    for rel, (x1, y1, x2, y2) in sorted(boxes.items()):
        img = cv2.imread(osp.join(root, split, rel))
        if scale != 1:
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        crop = cv2.resize(img[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA)
        feats.append(_ink(crop).ravel())
        labels.append(int(rel.split('/')[0]))
    return torch.tensor(np.stack(feats)), torch.tensor(labels)


def _linear_probe(train, val, num_classes: int = 10, steps: int = 300) -> float:
    torch.manual_seed(0)
    (xt, yt), (xv, yv) = train, val
    mean, std = xt.mean(0), xt.std(0) + 1e-3
    layer = torch.nn.Linear(xt.shape[1], num_classes)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(layer((xt - mean) / std), yt).backward()
        opt.step()
    return (layer((xv - mean) / std).argmax(1) == yv).float().mean().item()


def test_objects_need_full_resolution(tmp_path):
    """A linear probe reads the digit from its full-resolution patch, not from a 1/4-scale view."""
    root = make_classification(str(tmp_path), num_train=500, num_val=200, seed=0)
    side = CanvasConfig().obj_size
    full = _linear_probe(_crop_features(root, 'train', 1, side), _crop_features(root, 'val', 1, side))
    quarter = _linear_probe(_crop_features(root, 'train', 0.25, side),
                            _crop_features(root, 'val', 0.25, side))
    assert full >= 0.8, (full, quarter)
    assert full - quarter >= 0.25, (full, quarter)


def test_objects_visible_in_few_frames(demo_root):
    """The card shows in few frames: only there does a frame differ from its motion-compensated
    neighbour (the scene drifts by ``drift_per_frame``) inside the object box."""
    import decord
    root = osp.join(demo_root, 'video')
    with open(osp.join(root, 'train_meta.json')) as f:
        meta = json.load(f)
    for rel, info in list(meta.items())[:8]:
        frames = decord.VideoReader(osp.join(root, rel)).get_batch(range(16)).asnumpy()
        frames = frames.astype(np.float32)
        size = frames.shape[1]
        x1, y1, x2, y2 = info['box']
        dx, dy = info['drift_per_frame']
        hidden = [t for t in range(16) if t not in info['visible']]
        change = {}
        for t in range(16):
            ref = min((h for h in hidden if h != t), key=lambda h: abs(h - t))
            sx, sy = (t - ref) * dx, (t - ref) * dy  # same scene content sits here in frame ref
            if not (0 <= x1 + sx and x2 + sx <= size and 0 <= y1 + sy and y2 + sy <= size):
                continue
            region = frames[t, y1:y2, x1:x2]
            change[t] = np.abs(region - frames[ref, y1 + sy:y2 + sy, x1 + sx:x2 + sx]).mean()
        assert len(info['visible']) <= 16 // 4
        seen = [change[t] for t in info['visible'] if t in change]
        unseen = [change[t] for t in hidden if t in change]
        assert seen and unseen
        assert min(seen) > 2 * max(unseen), (info, change)
