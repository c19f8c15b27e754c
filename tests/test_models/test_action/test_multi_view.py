# Copyright (c) mmdynamic contributors. All rights reserved.
"""Multi-view (3-crop) testing: the official 3-crop pipeline into the recognizers' predict and early exit.

The official Uni-AdaFocus-X3D 3-crop test (``main_nViewEval.py`` and its early-exit script) averages the
views' raw logits; the recognizers do so by default (``view_average='logits'``), the mean softmax is the
``'softmax'`` option. The references below are computed view by view, independently of the averaging code.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image

import mmdynamic.models  # noqa: F401
from mmdynamic.evaluation import ExitPolicy
from mmdynamic.models.action.multi_view import (VIEW_AVERAGES, ViewAveragedSteps, average_views,
                                                split_views)
from mmdynamic.models.utils.early_exit import EarlyExitExecutor
from tests.conftest import REPO

from .test_uni_adafocus import build as build_uni
from .test_uni_adafocus import T0, videos

SHARPEN = 5.0
X3D_3CROP = osp.join(REPO, 'configs', 'uniadafocus',
                     'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb_3crop.py')


def test_average_views_logits_and_softmax():
    logits = torch.randn(2, 6, 5, dtype=torch.float64)  # (K exits, B * V, C)
    merged = average_views(logits, 3)  # default: raw logits, as the official code
    assert merged.shape == (2, 2, 5)
    assert torch.allclose(merged, logits.view(2, 2, 3, 5).mean(2), atol=1e-15)
    assert torch.equal(merged, average_views(logits, 3, 'logits'))
    soft = average_views(logits, 3, 'softmax')  # log of the mean softmax
    assert torch.allclose(soft.softmax(-1), logits.softmax(-1).view(2, 2, 3, 5).mean(2),
                          atol=1e-12)
    assert not torch.allclose(merged.softmax(-1), soft.softmax(-1), atol=1e-3)
    assert torch.equal(split_views(torch.arange(12).view(2, 6), 3), torch.arange(12).view(6, 2))
    assert VIEW_AVERAGES == ('logits', 'softmax')
    with pytest.raises(ValueError, match='views'):
        split_views(torch.zeros(2, 7), 3)
    with pytest.raises(ValueError, match='views'):
        average_views(torch.zeros(7, 5), 3)
    with pytest.raises(ValueError, match='view_average'):
        average_views(logits, 3, 'prob')
    with pytest.raises(ValueError, match='view_average'):
        build_uni(view_average='mean')


def _sharpened(**overrides):
    """The tiny Uni-AdaFocus with its classifier's weights scaled up, so that the views disagree and
    the mean of the logits and the mean softmax differ clearly (~1e-2 instead of ~1e-5)."""
    model = build_uni(**overrides)
    with torch.no_grad():
        for module in model.fusion_head.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(SHARPEN)
    model.eval()
    return model


def _single_view_exit_logits(model, views):
    """(K, B, C) exit logits of each view, predicted one by one: a list over the views."""
    out = []
    for v in views:
        samples = model.predict(v, [ActionDataSample() for _ in range(v.shape[0])])
        out.append(torch.stack([s.exit_logits for s in samples], dim=1))
    return out


@pytest.mark.parametrize('view_average', [None, 'logits', 'softmax'])
def test_three_views_average_the_single_view_predictions(view_average):
    model = _sharpened() if view_average is None else _sharpened(view_average=view_average)
    assert model.view_average == (view_average or 'logits')
    views = [videos(batch=2, seed=s) for s in range(3)]
    inputs = torch.cat(views, dim=1)  # the 3-crop layout: the frames of each crop in turn
    assert model.num_views(inputs) == 3 and model.num_views(views[0]) == 1
    out = model.predict(inputs, [ActionDataSample() for _ in range(2)])
    single = _single_view_exit_logits(model, views)  # V x (K, B, C)
    single_macs = model.predict(views[0], [ActionDataSample()] * 2)[0].exit_macs
    for i, sample in enumerate(out):
        per_view = torch.stack([s[:, i] for s in single])  # (V, K, C)
        gap = (per_view.softmax(-1).mean(0) - per_view.mean(0).softmax(-1)).abs().max()
        assert gap > 1e-3  # the two averages are told apart
        if view_average == 'softmax':
            expected = per_view.softmax(-1).mean(0)  # mean softmax per exit
            assert torch.allclose(sample.exit_logits.softmax(-1), expected, atol=1e-6)
        else:  # official: the mean of the raw logits per exit, the prediction its softmax
            expected = per_view.mean(0)
            assert torch.allclose(sample.exit_logits, expected, atol=1e-5)
            assert torch.allclose(sample.pred_score, expected[-1].softmax(-1), atol=1e-6)
        assert torch.allclose(sample.exit_macs, 3 * single_macs)


def _reference_early_exit(per_view, thresholds):
    """Official early exit on V views: per exit, the views' mean raw logits; a video leaves at the
    first exit whose max softmax reaches the threshold (the last exit takes every video).

    Args:
        per_view (Tensor): (V, K, B, C) exit logits of every view. thresholds (list): (K, ).
    Returns:
        tuple: (B, ) exit indices and (B, C) logits at the exit.
    """
    mean = per_view.mean(0)  # (K, B, C)
    exits, logits = [], []
    for b in range(mean.shape[1]):
        for k in range(mean.shape[0]):
            if k == mean.shape[0] - 1 or float(mean[k, b].softmax(-1).max()) >= thresholds[k]:
                exits.append(k)
                logits.append(mean[k, b])
                break
    return torch.tensor(exits), torch.stack(logits)


def test_three_views_with_early_exit_decide_on_the_averaged_logits():
    model = _sharpened()
    views = [videos(batch=4, seed=s) for s in range(3)]
    inputs = torch.cat(views, dim=1)
    costs = [3.0 * c for c in model.exit_macs_for((T0, ) + tuple(inputs.shape[2:]))]
    full = model.predict(inputs, [ActionDataSample() for _ in range(4)])
    per_view = torch.stack(_single_view_exit_logits(model, views))  # (V, K, B, C)
    # the budget machinery fits thresholds on these exit logits: they are the views' mean logits
    assert torch.allclose(torch.stack([s.exit_logits for s in full], 1), per_view.mean(0),
                          atol=1e-5)

    def policy(thresholds):
        return ExitPolicy(thresholds=thresholds, exit_costs=costs, confidence='max_softmax',
                          model='UniAdaFocus', fit_split='train', ratio=0.5,
                          expected_cost=costs[-1])

    # exit at the glance for every video: the averaged glance exit is the prediction
    model.set_exit_policy(policy([-float('inf')] * model.num_exits))
    out = model.predict(inputs, [ActionDataSample() for _ in range(4)])
    for a, b in zip(out, full):
        assert int(a.exit_index) == 0
        assert torch.allclose(a.pred_score, b.exit_logits[0].softmax(-1), atol=1e-5)
    # thresholds between the videos' averaged confidences: the official decisions, made on the
    # mean logits (the mean softmax would give other confidences)
    conf = per_view.mean(0).softmax(-1).amax(-1)  # (K, B)
    assert (conf - per_view.softmax(-1).mean(0).amax(-1)).abs().max() > 1e-3
    cuts = [float(c.sort().values[1:3].mean()) for c in conf[:-1]] + [-float('inf')]
    ref_exits, ref_logits = _reference_early_exit(per_view, cuts)
    assert len(set(ref_exits.tolist())) > 1
    model.set_exit_policy(policy(cuts))
    out = model.predict(inputs, [ActionDataSample() for _ in range(4)])
    assert [int(s.exit_index) for s in out] == ref_exits.tolist()
    for s, ref in zip(out, ref_logits):
        assert torch.allclose(s.pred_score, ref.softmax(-1), atol=1e-5)
    # early_exit() on multi-view inputs: the same decisions and the averaged logits themselves
    model.set_exit_policy(None)
    result = model.early_exit(inputs, EarlyExitExecutor(cuts, 'max_softmax'))
    assert result.exits.tolist() == ref_exits.tolist()
    assert torch.allclose(result.logits, ref_logits, atol=1e-5)
    # the adaptor keeps each video's views together in the executor's state
    stepper = ViewAveragedSteps(model, 3)
    state = stepper.init_state(inputs)
    logits, state = stepper.step(0, inputs, state)
    assert logits.shape == (4, 5) and state['maps'].shape[:2] == (4, 3)
    assert torch.allclose(logits, per_view[:, 0].mean(0), atol=1e-5)


def _pil_short_side(frame: np.ndarray, side: int) -> np.ndarray:
    """torchvision's Resize(side) on a PIL image: the long side truncated, PIL's bilinear filter."""
    h, w = frame.shape[:2]
    size = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def test_three_crop_config_pipeline_into_x3d_predict():
    """The K400 3-crop test pipeline (short side by PIL, TSN's three crops) feeds a (small) X3D
    model: its frames are the official crops, its prediction the views' mean raw logits."""
    cfg = Config.fromfile(X3D_3CROP)
    init_default_scope('mmaction')
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t['type'] for t in pipeline][3:5] == ['PillowResize', 'TSNThreeCrop']
    assert pipeline[3]['scale'] == (-1, 256) and pipeline[4]['crop_size'] == 224
    assert cfg.model.view_average == 'logits'
    # a small X3D with 4 glance + 12 candidates on 61 x 97 frames -> short side 56 -> 89 x 56,
    # three crops of 48 (x = 0, 40, 20 at y = 4)
    num_glance, num_candidates, side, crop = 4, 12, 56, 48
    steps = [dict(pipeline[3], scale=(-1, side)), dict(pipeline[4], crop_size=crop)] + pipeline[5:]
    transform = Compose(steps)
    frames = np.random.default_rng(0).integers(0, 255, (num_glance + num_candidates, 61, 97, 3),
                                               dtype=np.uint8)
    packed = transform(dict(imgs=list(frames), img_shape=(61, 97), original_shape=(61, 97),
                            num_clips=num_glance + num_candidates, clip_len=1, label=1,
                            modality='RGB'))
    assert packed['inputs'].shape == (3 * (num_glance + num_candidates), 3, crop, crop)
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    model_cfg = dict(cfg.model, backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                     local_backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                     num_classes=5, global_channels=128, local_channels=128, feature_size=2,
                     glance_size=crop, num_glance=num_glance, num_candidates=num_candidates,
                     num_focus=4, patch_size=32, min_box_size=32, head_channels=16,
                     spatial_hidden=8, temporal_hidden=8)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    inputs = data['inputs']
    assert model.num_views(inputs) == 3
    (out, ) = model.predict(inputs, data['data_samples'])
    crops = inputs.view(1, 3, num_glance + num_candidates, *inputs.shape[2:])
    # the official crops: PIL short side 56 (89 x 56), s = (89 - 48) // 4 = 10, y = 2 * (8 // 4) = 4;
    # left (x = 0), right (x = 40), centre (x = 20), ImageNet mean / std
    resized = np.stack([_pil_short_side(f, side) for f in frames])
    assert resized.shape[1:3] == (56, 89)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    for view, x in enumerate((0, 40, 20)):
        ref = torch.from_numpy(resized[:, 4:4 + crop, x:x + crop]).permute(0, 3, 1, 2).float()
        assert torch.allclose(crops[0, view], (ref - mean) / std, atol=1e-5)
    single = [model.predict(crops[:, v], [ActionDataSample()])[0] for v in range(3)]
    expected = torch.stack([s.exit_logits for s in single]).mean(0)  # mean raw logits per exit
    assert torch.allclose(out.exit_logits, expected, atol=1e-5)
    assert torch.allclose(out.pred_score, expected[-1].softmax(-1), atol=1e-5)
    assert torch.allclose(out.exit_macs, 3 * single[0].exit_macs)
