# Copyright (c) mmdynamic contributors. All rights reserved.
"""Fitting the test-time density of SAR masks: the weighted threshold and the bias shift, in one
process and over two gloo processes."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdynamic.models.backbones.sar_resnet import SARResNet
from mmdynamic.models.layers.sar_layers import MaskGenerator, cell_areas
from mmdynamic.models.utils.sar_calibration import (calibrate_mask_density, fit_refine_threshold,
                                                    mask_generators)

from ...test_tools.test_train_tools import _free_port


def small_backbone(mask_sharing: str = 'block', share_group_masks: bool = False) -> SARResNet:
    """A 1/4-width SAR-R50 (cells of 4 / 4 / 7 px) whose mask generators have spread logits, as
    after training (1x1 weights N(0, 3)); seeded, so every call builds the same weights."""
    torch.manual_seed(0)
    backbone = SARResNet(depth=50, stem_channels=16, base_channels=16, groups=2, mask_grid=None,
                         mask_cell_size=(4, 4, 7), out_indices=(3, ), mask_sharing=mask_sharing,
                         share_group_masks=share_group_masks)
    backbone.init_weights()
    for m in backbone.modules():
        if isinstance(m, MaskGenerator):
            torch.nn.init.normal_(m.fc.weight, 0, 3.0)
    return backbone


def _reference_fraction(gaps, weights, target):
    """Independent reference: sort the gaps, refine the top ones until the target is reached."""
    order = torch.argsort(gaps.double(), descending=True)
    cumulative = torch.cumsum(weights.double()[order], 0) / weights.double().sum()
    if target <= 0:
        return 0.0
    return float(cumulative[torch.nonzero(cumulative >= target - 1e-12)[0, 0]])


@pytest.mark.parametrize('target', [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_threshold_refines_the_smallest_fraction_reaching_the_target(target):
    torch.manual_seed(0)
    gaps = torch.cat([torch.randn(500) * 30, torch.randn(300) * 0.1 - 5])
    weights = torch.rand(800) + 0.1
    thr = fit_refine_threshold(gaps, weights, target)
    fraction = float(weights[gaps > thr].sum() / weights.sum())
    assert fraction == pytest.approx(_reference_fraction(gaps, weights, target), abs=1e-6)
    # halfway between neighbouring gaps: no cell sits on the threshold
    assert (gaps - thr).abs().min() > 0


def test_threshold_with_ties_and_bad_input():
    gaps = torch.zeros(10)  # one value: refine all or nothing
    assert fit_refine_threshold(gaps, torch.ones(10), 0.5) < 0
    assert fit_refine_threshold(gaps, torch.ones(10), 0.0) >= 0
    with pytest.raises(ValueError, match=r'target density must be in \[0, 1\], got 1.5'):
        fit_refine_threshold(gaps, torch.ones(10), 1.5)
    with pytest.raises(ValueError, match='alike'):
        fit_refine_threshold(gaps, torch.ones(9), 0.5)
    with pytest.raises(ValueError, match='no calibration cells'):
        fit_refine_threshold(torch.zeros(0), torch.zeros(0), 0.5)


def _gaps_and_weights(backbone, batches):
    """Eval-mode refine - skip gaps (G, N) and cell weights (N, ) of every mask over the batches,
    each cell weighted by its cropped area over its map's area."""
    gaps, weights = None, None
    with torch.no_grad():
        for x in batches:
            backbone(x)
            g = [(lg[:, :, 1] - lg[:, :, 0]).transpose(0, 1).flatten(1)
                 for lg in backbone.last_mask_logits]
            w = [(cell_areas(lg.shape[-2:], size, cell) / (size[0] * size[1])).flatten().repeat(
                lg.shape[0]) for lg, size, cell in zip(backbone.last_mask_logits,
                                                       backbone.last_mask_sizes,
                                                       backbone.last_mask_cells)]
            gaps = g if gaps is None else [torch.cat([a, b], 1) for a, b in zip(gaps, g)]
            weights = w if weights is None else [torch.cat([a, b]) for a, b in zip(weights, w)]
    return gaps, weights


@pytest.mark.parametrize('per_group,sharing,shared_groups',
                         [(False, 'block', False), (True, 'stage', False), (True, 'stage', True)])
def test_calibration_fits_the_argmax_density_and_keeps_the_cell_order(per_group, sharing,
                                                                      shared_groups):
    """Also with one mask for both groups (share_group_masks): both groups' refine biases move
    by the one shift, so the shared mask, the mean of the groups' logits, moves by it."""
    backbone = small_backbone(sharing, shared_groups).train()
    batches = [torch.randn(4, 3, 150, 182) for _ in range(3)]
    with torch.no_grad():
        for x in batches:
            backbone(x)  # running statistics
    backbone.eval()
    with torch.no_grad():
        backbone(batches[0])
    gaps_before = [(g[:, :, 1] - g[:, :, 0]) for g in backbone.last_mask_logits]
    weights_before = [m.fc.weight.clone() for m in mask_generators(backbone)]
    backbone.train()
    report = calibrate_mask_density(backbone, batches, 0.3, per_group=per_group)
    assert backbone.training  # mode restored
    assert len(report) == len(mask_generators(backbone)) == (10 if sharing == 'block' else 3)
    backbone.eval()
    gaps, weights = _gaps_and_weights(backbone, batches)  # after calibration: refine iff gap > 0
    for gap, weight, r in zip(gaps, weights, report):
        sets = [gap[[g]] for g in range(2)] if per_group else [gap]
        fractions = []
        for values in sets:
            w = weight.repeat(values.shape[0])
            values = values.flatten()
            refined = values > 0
            fraction = float(w[refined].sum() / w.sum())
            # the smallest fraction that reaches the target: without the least-preferred refined
            # cells (and their ties) it would fall below 0.3; most masks land within a cell of it
            assert fraction >= 0.3 - 1e-6
            assert float(w[values > values[refined].min()].sum() / w.sum()) < 0.3
            fractions.append(fraction)
        assert r['after'] == pytest.approx(sum(fractions) / len(fractions), abs=1e-5)
    assert sorted(abs(r['after'] - 0.3) for r in report)[len(report) // 2] < 0.01  # median
    with torch.no_grad():
        backbone(batches[0])
    first_stage = len(backbone.stages[0].masks)
    for i, (before, logits, weight, m, r) in enumerate(zip(
            gaps_before, backbone.last_mask_logits, weights_before, mask_generators(backbone),
            report)):
        assert torch.equal(m.fc.weight, weight)  # where to refine is kept
        if i < first_stage:  # same input as before: every gap moved by the mask's shift
            shift = torch.tensor(r['shift'] if per_group else [r['shift']] * 2).view(1, 2, 1, 1)
            after = logits[:, :, 1] - logits[:, :, 0]
            torch.testing.assert_close(after, before + shift.float(), rtol=0, atol=1e-3)
        if shared_groups:
            assert torch.equal(logits[:, 0], logits[:, 1])


def test_calibration_refuses_other_backbones():
    with pytest.raises(TypeError, match='expected a SAR backbone'):
        calibrate_mask_density(torch.nn.Conv2d(3, 3, 1), [torch.randn(1, 3, 8, 8)], 0.5)


def _worker(rank: int, port: int, state: dict, batches: list, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        backbone = small_backbone()
        backbone.load_state_dict(state)
        report = calibrate_mask_density(backbone, batches[rank::2], 0.4, per_group=True)
        torch.save(dict(report=report, state=backbone.state_dict()), f'{out}.{rank}')
    finally:
        dist.destroy_process_group()


def test_two_ranks_fit_the_thresholds_of_all_their_cells(tmp_path):
    """Two ranks with different images apply the same shifts, those of one process with all the
    images; calibrating on one rank's images alone would give other shifts."""
    backbone = small_backbone()
    backbone.eval()
    batches = [torch.randn(2, 3, 96, 112) * (1 + 2 * (i % 2)) for i in range(4)]
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    expected = calibrate_mask_density(backbone, batches, 0.4, per_group=True)
    out = str(tmp_path / 'cal')
    mp.start_processes(_worker, args=(_free_port(), state, batches, out), nprocs=2,
                       start_method='spawn')
    results = [torch.load(f'{out}.{r}') for r in range(2)]
    for result in results:
        for got, want in zip(result['report'], expected):
            assert got['shift'] == pytest.approx(want['shift'], abs=1e-4)
            assert got['after'] == pytest.approx(want['after'], abs=1e-6)
    for key, value in results[0]['state'].items():
        assert torch.equal(value, results[1]['state'][key]), key
    alone = small_backbone()
    alone.load_state_dict(state)
    one_rank = calibrate_mask_density(alone, batches[0::2], 0.4, per_group=True)
    assert any(abs(a - b) > 1e-3 for r, e in zip(one_rank, expected)
               for a, b in zip(r['shift'], e['shift']))
