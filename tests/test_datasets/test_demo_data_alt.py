# Copyright (c) mmdynamic contributors. All rights reserved.
"""The alt demo data: deterministic, readable by the frameworks, redundant like the cards data, and
made differently from it (glyphs of dots / segments on blotchy ground, no cards)."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmdynamic.datasets.demo_data_alt import (AltCanvasConfig, make_alt_classification,
                                              make_alt_demo_data, render_glyph)

from .demo_checks import check_visible_in_few_frames, probe_full_and_quarter, tree_digest


@pytest.fixture(scope='module')
def alt_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('demo_alt'))
    make_alt_demo_data(root, tasks=('cls', 'video'), num_train=40, num_val=20)
    return root


def test_deterministic_and_seeded(tmp_path):
    kwargs = dict(tasks=('cls', 'video'), num_train=4, num_val=2)
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        make_alt_demo_data(str(tmp_path / name), seed=seed, **kwargs)
    a, b, c = (tree_digest(str(tmp_path / x / 'cls')) for x in 'abc')
    assert a == b and a != c
    for name in ('train_list.txt', 'train_meta.json', 'val_meta.json'):
        assert (tmp_path / 'a/video' / name).read_text() == (tmp_path / 'b/video' / name).read_text()
    assert (tmp_path / 'a/video/train_meta.json').read_text() != \
        (tmp_path / 'c/video/train_meta.json').read_text()


def test_differs_from_cards_generator(tmp_path):
    """Same seed and sizes as the cards generator, other images (and the stamp names the generator)."""
    from mmdynamic.datasets import make_demo_data
    make_demo_data(str(tmp_path / 'cards'), tasks=('cls', ), num_train=4, num_val=2, seed=0)
    make_alt_demo_data(str(tmp_path / 'alt'), tasks=('cls', ), num_train=4, num_val=2, seed=0)
    cards = sorted(glob.glob(str(tmp_path / 'cards/cls/train/*/*.png')))
    alt = sorted(glob.glob(str(tmp_path / 'alt/cls/train/*/*.png')))
    assert len(cards) == len(alt) == 4
    for p, q in zip(cards, alt):
        assert not np.array_equal(cv2.imread(p), cv2.imread(q))
    with open(tmp_path / 'alt/cls/.complete') as f:
        assert json.load(f)['generator'] == 'alt'


def test_regenerates_only_on_change(tmp_path):
    import os
    root = str(tmp_path)
    make_alt_demo_data(root, num_train=6, num_val=2)
    stamp = osp.join(root, 'cls', '.complete')
    mtime = os.stat(stamp).st_mtime_ns
    make_alt_demo_data(root, num_train=6, num_val=2)
    assert os.stat(stamp).st_mtime_ns == mtime
    make_alt_demo_data(root, num_train=3, num_val=2, num_distractors=0)
    assert len(glob.glob(osp.join(root, 'cls', 'train', '*', '*.png'))) == 3


@pytest.mark.parametrize('kwargs, match', [
    (dict(tasks=('det', )), 'unknown alt demo task'),
    (dict(num_classes=11), 'num_classes must be in'),
    (dict(num_distractors=-1), 'num_distractors must be >= 0'),
    (dict(num_fragments=-1), 'num_fragments must be >= 0'),
    (dict(obj_size=8), 'obj_size must be at least 10'),
    (dict(img_size=40, obj_size=16), 'at least 3 x obj_size'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_alt_demo_data(str(tmp_path), **kwargs)


def test_glyph_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match='unknown glyph style'):
        render_glyph('1', 'font', 16, rng)
    with pytest.raises(ValueError, match='no seven-segment code'):
        render_glyph('Q', 'segments', 16, rng)


def test_glyphs_are_distinct():
    """Every digit and letter bitmap differs from every other one in its style (no ambiguous class)."""
    rng = np.random.default_rng(0)
    from mmdynamic.datasets import demo_data_alt as alt
    for style, table in (('dots', {**alt._DOT_DIGITS, **alt._DOT_LETTERS}),
                         ('segments', {**alt._SEG_DIGITS, **alt._SEG_LETTERS})):
        codes = [tuple(v) if style == 'dots' else ''.join(sorted(v)) for v in table.values()]
        assert len(set(codes)) == len(codes), style
        if style == 'dots':
            assert all(len(rows) == 7 and all(len(r) == 5 for r in rows) for rows in table.values())
        mask = render_glyph('8', style, 16, rng)
        assert mask.shape[0] == 16 and 0 < mask.max() <= 1


def test_cli_generator_option(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'make_demo_data', osp.join(osp.dirname(__file__), '../../tools/misc/make_demo_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--generator', 'alt', '--root', str(tmp_path), '--tasks', 'cls', '--num-train', '3',
               '--num-val', '2', '--seed', '5'])
    with open(tmp_path / 'cls' / '.complete') as f:
        stamp = json.load(f)
    assert stamp['generator'] == 'alt' and stamp['seed'] == 5 and stamp['num_train'] == 3
    with pytest.raises(SystemExit):
        tool.main(['--generator', 'alt', '--root', str(tmp_path), '--tasks', 'det'])
    assert 'has no task' in capsys.readouterr().err
    # 64 px video frames: the six default fragments do not fit, two do (the Uni-AdaFocus alt set)
    with pytest.raises(RuntimeError, match='could not place'):
        tool.main(['--generator', 'alt', '--root', str(tmp_path / 'v6'), '--tasks', 'video',
                   '--img-size', '64', '--obj-size', '14', '--num-train', '2', '--num-val', '1',
                   '--num-distractors', '0'])
    tool.main(['--generator', 'alt', '--root', str(tmp_path / 'v2'), '--tasks', 'video',
               '--img-size', '64', '--obj-size', '14', '--num-train', '2', '--num-val', '1',
               '--num-distractors', '0', '--num-fragments', '2'])
    with open(tmp_path / 'v2' / 'video' / '.complete') as f:
        assert json.load(f)['num_fragments'] == 2
    with pytest.raises(SystemExit):
        tool.main(['--root', str(tmp_path / 'c'), '--tasks', 'cls', '--num-fragments', '2'])
    assert 'option of --generator alt' in capsys.readouterr().err


def test_mmpretrain_reads_cls(alt_root):
    from mmpretrain.datasets import CustomDataset
    ds = CustomDataset(data_root=osp.join(alt_root, 'cls'), data_prefix='train',
                       pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    assert len(ds) == 40 and len(ds.CLASSES) == 10
    assert tuple(ds[0]['inputs'].shape) == (3, 128, 128)
    with open(osp.join(alt_root, 'cls', 'train_boxes.json')) as f:
        boxes = json.load(f)
    assert len(boxes) == 40
    for rel, (x1, y1, x2, y2) in boxes.items():
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
        assert 0.75 * 16 - 1 <= y2 - y1 <= 1.25 * 16 + 1  # glyph heights vary around obj_size


def test_mmaction_decodes_videos(alt_root):
    import mmdynamic  # noqa: F401  (mmaction import shim)
    from mmaction.datasets import VideoDataset
    from mmaction.utils import register_all_modules
    register_all_modules()
    root = osp.join(alt_root, 'video')
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
    """A linear probe reads the digit from its full-resolution box, not from a 1/4-scale view."""
    root = make_alt_classification(str(tmp_path), num_train=500, num_val=200, seed=0)
    side = AltCanvasConfig().obj_size
    full, quarter = probe_full_and_quarter(root, side)
    assert full >= 0.8, (full, quarter)
    assert full - quarter >= 0.25, (full, quarter)


def test_objects_visible_in_few_frames(alt_root):
    """The glyph shows in few frames: only there does a frame differ from its motion-compensated
    neighbour (the scene drifts by the per-video ``drift_per_frame``) inside the glyph box."""
    meta = check_visible_in_few_frames(osp.join(alt_root, 'video'))
    assert len({tuple(info['drift_per_frame']) for info in meta.values()}) > 1  # several directions
