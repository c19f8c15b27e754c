# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch

from mmdynamic.models.action import (actions_to_boxes, glance_frame_indices, interpolate_actions,
                                     quantile_frame_indices, quantile_levels, random_boxes)


def test_glance_indices_train_and_test():
    test = glance_frame_indices(2, 48, 16, training=False)
    assert test.tolist()[0] == list(range(1, 48, 3))  # the middle member of each group of 3
    gen = torch.Generator().manual_seed(0)
    train = glance_frame_indices(64, 48, 16, training=True, generator=gen)
    groups = train // 3
    assert (groups == torch.arange(16)).all()  # one frame per group
    assert set((train % 3).unique().tolist()) == {0, 1, 2}  # random member
    with pytest.raises(ValueError, match='multiple'):
        glance_frame_indices(1, 10, 4, training=False)


def test_quantile_levels():
    test = quantile_levels(2, 4, training=False)
    assert torch.allclose(test, torch.tensor([[0.125, 0.375, 0.625, 0.875]] * 2))
    train = quantile_levels(1000, 4, training=True, generator=torch.Generator().manual_seed(0))
    stratum = (train * 4).floor()
    assert (stratum == torch.arange(4.)).all()  # one level per stratum
    assert train.std(dim=0).min() > 0.05  # and random inside it


def test_quantile_uniform_weights_spread_evenly():
    weights = torch.full((1, 16), 1 / 16)
    index = quantile_frame_indices(weights, 16, 48, training=False)
    # centred levels on a uniform CDF: (i + 0.5) / 16 * 48 = 3i + 1.5 -> 3i + 1
    assert index.tolist()[0] == list(range(1, 48, 3))


def test_quantile_concentrates_on_heavy_frames():
    weights = torch.full((1, 16), 0.01)
    weights[0, 5] = 1.0
    index = quantile_frame_indices(weights, 4, 48, training=False)[0]
    # most of the mass lies in glance segment 5 = candidates 15..17
    assert ((index >= 14) & (index <= 18)).sum() >= 3


def test_quantile_strictly_increasing_and_clamped():
    gen = torch.Generator().manual_seed(0)
    for peak in (0, 7, 15):  # peaked weights at the start, middle and end
        weights = torch.full((8, 16), 1e-6)
        weights[:, peak] = 1.0
        for training in (True, False):
            index = quantile_frame_indices(weights, 16, 48, training=training, generator=gen)
            assert (index[:, 1:] > index[:, :-1]).all()
            assert index.min() >= 0 and index.max() <= 47
            assert (index <= 48 - 16 + torch.arange(16)).all()
    # T_L = T_0: every frame exactly once
    index = quantile_frame_indices(torch.rand(3, 4), 12, 12, training=True, generator=gen)
    assert (index == torch.arange(12)).all()


def test_quantile_training_levels_are_random_within_strata():
    weights = torch.rand(1, 16).expand(200, -1)
    gen = torch.Generator().manual_seed(1)
    train = quantile_frame_indices(weights, 4, 48, training=True, generator=gen)
    test = quantile_frame_indices(weights, 4, 48, training=False)
    assert (test == test[0]).all()  # deterministic at test
    assert len({tuple(r) for r in train.tolist()}) > 10
    with pytest.raises(ValueError, match='num_select'):
        quantile_frame_indices(weights, 49, 48)


def test_interpolate_actions_in_time():
    actions = torch.tensor([[[0.0], [1.0]]])  # 2 glance frames -> 6 candidates
    out = interpolate_actions(actions, 6)[0, :, 0]
    # glance frame j sits at the centre of its group (candidates 1 and 4)
    assert torch.allclose(out, torch.tensor([0, 0, 1 / 3, 2 / 3, 1, 1]), atol=1e-6)


def test_actions_to_boxes_range_and_inside():
    actions = torch.rand(1000, 4)
    actions[:4] = torch.tensor([[0., 0., 0., 0.], [1., 1., 1., 1.], [0., 1., 0.5, 0.], [1, 0, 0, 1.]])
    boxes = actions_to_boxes(actions, (224, 224), 96)
    cy, cx, h, w = boxes.unbind(-1)
    assert h.min() >= 96 - 1e-4 and h.max() <= 224 + 1e-4
    assert (cy - h / 2 >= -1e-4).all() and (cy + h / 2 <= 224 + 1e-4).all()
    assert (cx - w / 2 >= -1e-4).all() and (cx + w / 2 <= 224 + 1e-4).all()
    assert torch.allclose(boxes[0], torch.tensor([48., 48., 96., 96.]))
    assert torch.allclose(boxes[1], torch.tensor([112., 112., 224., 224.]))
    with pytest.raises(ValueError, match='min_size'):
        actions_to_boxes(actions, (64, 64), 96)


def test_random_boxes_fixed_side_inside():
    boxes = random_boxes((50, 3), (112, 100), 40, generator=torch.Generator().manual_seed(0))
    assert boxes.shape == (50, 3, 4)
    assert (boxes[..., 2:] == 40).all()
    assert (boxes[..., 0] >= 20).all() and (boxes[..., 0] <= 92).all()
    assert (boxes[..., 1] >= 20).all() and (boxes[..., 1] <= 80).all()
    with pytest.raises(ValueError, match='do not fit'):
        random_boxes((1, ), (32, 32), 40)
