# Copyright (c) mmdynamic contributors. All rights reserved.
"""Multi-view (3-crop) testing: mmaction2's ThreeCrop pipeline into the recognizers' predict."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
from mmdynamic.evaluation import ExitPolicy
from mmdynamic.models.action.multi_view import (ViewAveragedSteps, average_views, split_views)
from tests.conftest import REPO

from .test_uni_adafocus import build as build_uni
from .test_uni_adafocus import T0, videos

X3D_3CROP = osp.join(REPO, 'configs', 'uniadafocus',
                     'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb_3crop.py')


def test_average_views_is_the_mean_softmax():
    logits = torch.randn(6, 5)
    merged = average_views(logits, 3)
    assert merged.shape == (2, 5)
    expected = logits.softmax(-1).view(2, 3, 5).mean(1)
    assert torch.allclose(merged.softmax(-1), expected, atol=1e-6)
    assert torch.equal(split_views(torch.arange(12).view(2, 6), 3), torch.arange(12).view(6, 2))
    with pytest.raises(ValueError, match='views'):
        split_views(torch.zeros(2, 7), 3)


def test_three_views_average_the_single_view_predictions():
    model = build_uni()
    model.eval()
    views = [videos(batch=2, seed=s) for s in range(3)]
    inputs = torch.cat(views, dim=1)  # ThreeCrop's layout: the frames of each crop in turn
    assert model.num_views(inputs) == 3 and model.num_views(views[0]) == 1
    out = model.predict(inputs, [ActionDataSample() for _ in range(2)])
    single = [model.predict(v, [ActionDataSample() for _ in range(2)]) for v in views]
    for i, sample in enumerate(out):
        mean_score = torch.stack([s[i].pred_score for s in single]).mean(0)
        assert torch.allclose(sample.pred_score, mean_score, atol=1e-5)
        per_exit = torch.stack([s[i].exit_logits.softmax(-1) for s in single]).mean(0)
        assert torch.allclose(sample.exit_logits.softmax(-1), per_exit, atol=1e-5)
        assert torch.allclose(sample.exit_macs, 3 * single[0][i].exit_macs)


def test_three_views_with_early_exit_decide_on_the_averaged_confidence():
    model = build_uni()
    model.eval()
    inputs = torch.cat([videos(batch=3, seed=s) for s in range(3)], dim=1)
    costs = [3.0 * c for c in model.exit_macs_for((T0, ) + tuple(inputs.shape[2:]))]
    full = model.predict(inputs, [ActionDataSample() for _ in range(3)])
    # exit at the glance for every video: the averaged glance exit is the prediction
    def policy(thresholds):
        return ExitPolicy(thresholds=thresholds, exit_costs=costs, confidence='max_softmax',
                          model='UniAdaFocus', fit_split='train', ratio=0.5,
                          expected_cost=costs[-1])

    model.set_exit_policy(policy([-float('inf')] * model.num_exits))
    out = model.predict(inputs, [ActionDataSample() for _ in range(3)])
    for a, b in zip(out, full):
        assert int(a.exit_index) == 0
        assert torch.allclose(a.pred_score, b.exit_logits[0].softmax(-1), atol=1e-5)
    # thresholds between the videos' averaged glance confidences: exactly the confident ones leave
    conf = torch.stack([s.exit_logits[0].softmax(-1).max() for s in full])
    cut = float(conf.sort().values[1:].mean()) if conf.unique().numel() > 1 else float(conf[0])
    model.set_exit_policy(policy([cut] + [float('inf')] * (model.num_exits - 2) + [-float('inf')]))
    out = model.predict(inputs, [ActionDataSample() for _ in range(3)])
    for c, a, b in zip(conf, out, full):
        if c >= cut:
            assert int(a.exit_index) == 0
        else:
            assert int(a.exit_index) == model.num_exits - 1
            assert torch.allclose(a.pred_score, b.pred_score, atol=1e-5)
    # the adaptor keeps each video's views together in the executor's state
    stepper = ViewAveragedSteps(model, 3)
    state = stepper.init_state(inputs)
    logits, state = stepper.step(0, inputs, state)
    assert logits.shape == (3, 5) and state['maps'].shape[:2] == (3, 3)


def test_three_crop_config_pipeline_into_x3d_predict():
    """The K400 3-crop test pipeline (ThreeCrop after the two-clip sampler) feeds a (small) X3D model:
    its prediction is the mean softmax over the three crops predicted one by one."""
    cfg = Config.fromfile(X3D_3CROP)
    init_default_scope('mmaction')
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t['type'] for t in pipeline][3:5] == ['Resize', 'ThreeCrop']
    # a small X3D with 4 glance + 12 candidates on 48 x 80 frames (short side 48 -> 3 crops of 48)
    num_glance, num_candidates, side = 4, 12, 48
    steps = [dict(pipeline[3], scale=(-1, side)), dict(pipeline[4], crop_size=side)] + pipeline[5:]
    transform = Compose(steps)
    frames = np.random.default_rng(0).integers(0, 255, (num_glance + num_candidates, 48, 80, 3),
                                               dtype=np.uint8)
    packed = transform(dict(imgs=list(frames), img_shape=(48, 80), original_shape=(48, 80),
                            num_clips=num_glance + num_candidates, clip_len=1, label=1,
                            modality='RGB'))
    assert packed['inputs'].shape == (3 * (num_glance + num_candidates), 3, side, side)
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    model_cfg = dict(cfg.model, backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                     local_backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                     num_classes=5, global_channels=128, local_channels=128, feature_size=2,
                     glance_size=side, num_glance=num_glance, num_candidates=num_candidates,
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
    single = [model.predict(crops[:, v], [ActionDataSample()])[0] for v in range(3)]
    # the left, right and middle crops of the frames, in ThreeCrop's order
    left = torch.from_numpy(frames[:, :, :side]).permute(0, 3, 1, 2).float()
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(1, 3, 1, 1)
    assert torch.allclose(crops[0, 0], (left - mean) / std, atol=1e-4)
    expected = torch.stack([s.pred_score for s in single]).mean(0)
    assert torch.allclose(out.pred_score, expected, atol=1e-5)
    assert torch.allclose(out.exit_macs, 3 * single[0].exit_macs)
