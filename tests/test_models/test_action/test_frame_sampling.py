# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch

from mmdynamic.models.action import (actions_to_boxes, glance_frame_indices, interpolate_actions,
                                     quantile_frame_indices, quantile_levels, random_boxes)


def test_glance_indices_train_and_test():
    test = glance_frame_indices(2, 48, 16, training=False)
    assert test.tolist()[0] == list(range(1, 48, 3))  # index 1 (= the middle) of each group of 3
    gen = torch.Generator().manual_seed(0)
    train = glance_frame_indices(64, 48, 16, training=True, generator=gen)
    groups = train // 3
    assert (groups == torch.arange(16)).all()  # one frame per group
    assert set((train % 3).unique().tolist()) == {0, 1, 2}  # random member
    with pytest.raises(ValueError, match='multiple'):
        glance_frame_indices(1, 10, 4, training=False)


def test_glance_test_frames_official_index_one_or_middle():
    """Item 4 of issue 16: the official MN2 + R50 code takes arange(T_0)[1::T_0 // T_G] at test,
    the member of index 1 of each group, not its middle (they differ for groups of 4 or more)."""
    for t0, tg in ((48, 16), (64, 16), (48, 8), (96, 16), (16, 16), (40, 8)):
        official = torch.arange(t0)[1::t0 // tg] if t0 > tg else torch.arange(t0)
        index = glance_frame_indices(3, t0, tg, training=False)
        assert index.shape == (3, tg) and (index == official).all(), (t0, tg)
        middle = glance_frame_indices(1, t0, tg, training=False, test_offset='middle')[0]
        assert middle.tolist() == [g * (t0 // tg) + t0 // tg // 2 for g in range(tg)]
    assert glance_frame_indices(1, 64, 16, False, test_offset=3)[0, :2].tolist() == [3, 7]
    with pytest.raises(ValueError, match='test_offset'):
        glance_frame_indices(1, 48, 16, False, test_offset=-1)


def test_random_draws_use_the_generator_only():
    """Item 5 of issue 16: with a generator, the glance members, quantile levels and random boxes
    come from it (same seed, same draws) and torch's global generator is left alone."""
    def draws(seed):
        gen = torch.Generator().manual_seed(seed)
        return (glance_frame_indices(4, 48, 16, True, generator=gen),
                quantile_levels(4, 8, True, generator=gen),
                random_boxes((4, 3), (64, 64), 24, generator=gen))

    state = torch.get_rng_state()
    first, again, other = draws(0), draws(0), draws(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, other))


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


@pytest.mark.parametrize('num_glance, num_candidates', [(8, 36), (16, 96)])
def test_tsm_x3d_test_glance_frames_are_the_official_ones(num_glance, num_candidates):
    """Item 4 of issue 16 for the TSM / X3D settings: their glance clip comes from the data pipeline,
    sampled independently of the candidates; at test frame i of each clip is the official
    floor((i + 0.5) N / T) (+ the 1-based start index), for any video length N."""
    from mmdynamic.datasets.transforms import SampleGlanceAndFocusFrames
    sampler = SampleGlanceAndFocusFrames(num_glance, num_candidates, test_mode=True)
    for frames in (num_candidates, 97, 150, 301):
        inds = sampler.transform(dict(total_frames=frames, start_index=1))['frame_inds']
        for part, count in ((inds[:num_glance], num_glance), (inds[num_glance:], num_candidates)):
            official = [int((i + 0.5) * frames / count) + 1 for i in range(count)]
            assert part.tolist() == official, (frames, count)
