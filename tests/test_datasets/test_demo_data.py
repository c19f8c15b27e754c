# Copyright (c) mmdynamic contributors. All rights reserved.
"""The demo data: deterministic, readable by the frameworks, and spatially/temporally redundant."""
import glob
import json
import os
import os.path as osp

import pytest

from mmdynamic.datasets import CanvasConfig, make_classification, make_demo_data

from .demo_checks import check_visible_in_few_frames, probe_full_and_quarter, tree_digest


def test_deterministic_and_seeded(tmp_path):
    kwargs = dict(tasks=('cls', 'det', 'seg', 'video'), num_train=4, num_val=2, img_size=64)
    make_demo_data(str(tmp_path / 'a'), seed=3, **kwargs)
    make_demo_data(str(tmp_path / 'b'), seed=3, **kwargs)
    make_demo_data(str(tmp_path / 'c'), seed=4, **kwargs)
    for task in ('cls', 'det', 'seg'):
        a, b, c = (tree_digest(str(tmp_path / x / task)) for x in 'abc')
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
def test_objects_need_full_resolution(tmp_path):
    """A linear probe reads the digit from its full-resolution patch, not from a 1/4-scale view."""
    root = make_classification(str(tmp_path), num_train=500, num_val=200, seed=0)
    side = CanvasConfig().obj_size
    full, quarter = probe_full_and_quarter(root, side)
    assert full >= 0.8, (full, quarter)
    assert full - quarter >= 0.25, (full, quarter)


def test_objects_visible_in_few_frames(demo_root):
    """The card shows in few frames: only there does a frame differ from its motion-compensated
    neighbour (the scene drifts by ``drift_per_frame``) inside the object box."""
    check_visible_in_few_frames(osp.join(demo_root, 'video'))
