# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmdynamic.utils.stream_benchmark: the throughput mode shared by the step-wise benchmarks and its
per-step times (issues #20, #21), on a toy step-wise model; the same body on the CPU (device passed
explicitly) and, where torch sees one, on a GPU. Bookkeeping only: no timing is checked."""
import math

import pytest
import torch
import torch.nn as nn

from mmdynamic.utils.stream_benchmark import (EXECUTOR_PART, INIT_PART, STATIC_REST_PART,
                                              STEP_TIMES_HEADER, TOTAL_PART, StepTimes,
                                              StreamSetup, fit_points, measure_step_times,
                                              step_time_rows, time_stream, timed_submodules)

from ..conftest import DEVICES

NUM_IMAGES, BATCH = 10, 4  # batches of 4, 4 and 2
STEP_NAMES = ['glance', 'focus 1', 'focus 2']
EXIT_COSTS = [1e6, 2e6, 3e6]


def _setup(where: str, **kwargs) -> StreamSetup:
    """The toy stream on ``where``; ``kwargs`` override the :class:`StreamSetup` options."""
    from mmdynamic.testing.toy_stepwise import DynToyStepwiseClassifier
    torch.manual_seed(0)
    model = DynToyStepwiseClassifier(num_classes=5, num_steps=3, patch_size=16).eval().to(where)
    static = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(8, 5)).eval().to(where)
    images = torch.randn(NUM_IMAGES, 3, 32, 32).to(where)
    options = dict(model=model, batches=list(images.split(BATCH)), static_fn=static,
                   static_macs=4e6, exit_costs=EXIT_COSTS, batch_size=BATCH, device=where,
                   step_names=STEP_NAMES, static_parts={'conv': '0'})
    options.update(kwargs)
    return StreamSetup(**options)


def _rows(table):
    return {row['part']: row for row in table['rows']}


@pytest.mark.parametrize('device', DEVICES)
def test_step_times_account_for_every_sample_of_the_stream(device):
    setup = _setup(device)
    points = fit_points(setup, [1.4e6, 2.2e6])
    result = time_stream(setup, points, runs=1, warmup=0)
    tables = measure_step_times(setup, points)
    assert [t['mode'] for t in tables] == ['static'] + ['per-batch', 'step-major'] * 2
    static = _rows(tables[0])
    assert list(static) == ['conv', STATIC_REST_PART, TOTAL_PART]
    assert (static['conv']['calls'], static['conv']['samples']) == (3, NUM_IMAGES)
    left_early = 0
    for i, point in enumerate(points):
        per_batch, step_major = result['rows'][2 * i:2 * i + 2]
        counts = step_major['exit_counts']
        assert counts == per_batch['exit_counts'] and sum(counts) == NUM_IMAGES
        left_early += sum(counts[:-1])
        for table in tables[1 + 2 * i:3 + 2 * i]:
            assert table['budget_gmacs'] == pytest.approx(point['budget'] / 1e9)
            rows = _rows(table)
            assert list(rows)[0] == INIT_PART and list(rows)[-2:] == [EXECUTOR_PART, TOTAL_PART]
            assert rows[INIT_PART]['samples'] == NUM_IMAGES and rows[INIT_PART]['calls'] == 3
            for k, name in enumerate(STEP_NAMES):
                # step k runs every sample that did not leave at an earlier exit, once
                reached = NUM_IMAGES - sum(counts[:k])
                row = rows.get(name, dict(samples=0, calls=0))
                assert row['samples'] == reached, (table['mode'], name)
                if table['mode'] == 'step-major':  # full batches, one remainder at the end
                    assert row['calls'] == math.ceil(reached / BATCH), name
                else:  # one call per input batch that still has samples at step k
                    assert math.ceil(reached / BATCH) <= row['calls'] <= 3
                    assert k or row['calls'] == 3
            parts = sum(r['seconds'] for r in table['rows'][:-1])
            assert parts == pytest.approx(rows[TOTAL_PART]['seconds'])
            assert all(r['seconds'] >= 0 for r in table['rows'])
    assert left_early > 0  # the fitted thresholds exit early, so later steps see fewer samples
    lines = step_time_rows(tables, 'Toy', 'static toy', NUM_IMAGES)
    assert len(lines) == sum(len(t['rows']) for t in tables)
    columns = STEP_TIMES_HEADER.splitlines()[0].count('|') - 1
    assert all(line.count('|') - 1 == columns for line in lines)
    assert sum('| step-major | focus 1 |' in line for line in lines) == sum(
        'focus 1' in _rows(t) for t in tables if t['mode'] == 'step-major')


def test_timed_submodules_put_the_modules_back():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    original = model[0]
    clock = StepTimes('cpu')
    with pytest.raises(RuntimeError, match='boom'):
        with timed_submodules(model, {'linear': '0'}, clock):
            assert model[0] is not original
            model(torch.zeros(3, 4))
            raise RuntimeError('boom')
    assert model[0] is original
    assert clock.parts['linear'][:2] == [1, 3]  # one call on 3 samples


def test_stream_setup_names_the_problem():
    with pytest.raises(ValueError, match='2 step names for 3 exits'):
        _setup('cpu', step_names=['a', 'b'])
    with pytest.raises(ValueError, match='same 3 batches'):
        _setup('cpu', static_batches=[torch.zeros(1, 3, 32, 32)])
    with pytest.raises(ValueError, match='the stream is on meta but the setup names cpu'):
        _setup('cpu', batches=[torch.zeros(2, 3, 32, 32, device='meta')])
    with pytest.raises(ValueError, match='static_parts need a static_module'):
        _setup('cpu', static_fn=lambda x: x)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='no CUDA GPU'):
            _setup('cpu', device='cuda')
