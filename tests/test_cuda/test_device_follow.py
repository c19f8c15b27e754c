# Copyright (c) mmdynamic contributors. All rights reserved.
"""Shared machinery on a GPU: the budget solver's functions on device tensors give the CPU's results,
confidences of half-precision logits are scored in float32, and the benchmark timer measures the
queued CUDA work (CUDA events, synchronised), not the kernel launches. The ``cpu`` variants run in
CI."""
import math
import time

import pytest
import torch

from ..conftest import DEVICES
from mmdynamic.evaluation.functional.budget import (BudgetSolver, assign_exits,
                                                    evaluate_thresholds, fit_thresholds,
                                                    geometric_exit_priors,
                                                    mean_average_precision_from_logits)
from mmdynamic.models.utils.confidence import CONFIDENCE_FUNCTIONS


def _logits(device, num_exits=3, num=40, classes=5):
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(num_exits, num, classes, generator=gen) * 3).to(device), torch.randint(
        0, classes, (num, ), generator=gen).to(device)


@pytest.mark.parametrize('device', DEVICES)
def test_budget_functions_follow_the_device(device):
    logits, labels = _logits(device)
    cpu_logits, cpu_labels = logits.cpu(), labels.cpu()
    scores = logits.softmax(-1).amax(-1).double()
    priors = geometric_exit_priors(3, 0.7)
    thresholds = fit_thresholds(scores, priors)
    assert thresholds.device == scores.device
    reference = fit_thresholds(scores.cpu(), priors)
    assert torch.equal(thresholds.cpu(), reference)
    exits = assign_exits(scores, thresholds)
    assert exits.device == scores.device
    assert torch.equal(exits.cpu(), assign_exits(scores.cpu(), reference))
    metric, cost, fractions = evaluate_thresholds(logits, labels, scores, thresholds, [1, 2, 3])
    ref_metric, ref_cost, _ = evaluate_thresholds(cpu_logits, cpu_labels, scores.cpu(), reference,
                                                  [1, 2, 3])
    assert metric == pytest.approx(ref_metric) and cost == pytest.approx(ref_cost)
    assert mean_average_precision_from_logits(logits[-1], labels) == pytest.approx(
        mean_average_precision_from_logits(cpu_logits[-1], cpu_labels))
    policy = BudgetSolver(logits, [1.0, 2.0, 3.0]).policy_for_budget(2.0)
    assert len(policy.thresholds) == 3 and math.isinf(policy.thresholds[-1])


@pytest.mark.parametrize('device', DEVICES)
def test_confidence_of_half_logits_is_float32(device):
    logits = _logits(device)[0][0]
    for name, fn in CONFIDENCE_FUNCTIONS.items():
        half = fn(logits.half())
        assert half.dtype == torch.float32, name
        assert fn(logits.double()).dtype == torch.float64, name
        torch.testing.assert_close(half, fn(logits.half().float()), msg=name)


@pytest.mark.cuda
def test_benchmark_timer_measures_the_gpu_work():
    from mmdynamic.utils.benchmark import device_note, time_round_robin
    assert device_note('cuda').startswith('GPU: ')
    torch.cuda.synchronize()
    cycles = int(2e7)
    start = time.perf_counter()
    torch.cuda._sleep(cycles)
    launch = time.perf_counter() - start  # the call returns before the GPU is done
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    assert wall > 2 * launch, (wall, launch)
    busy, idle = time_round_robin([lambda: torch.cuda._sleep(cycles), lambda: None], runs=5,
                                  warmup=1, device='cuda')
    # the events bracket the GPU's sleep: within a factor of the synchronised wall time
    assert 0.5 * wall < busy < 2.0 * wall, (busy, wall)
    assert idle < 0.1 * busy


def test_cuda_rng_states_restore_per_visible_gpu(monkeypatch):
    """A checkpoint written with 2 GPUs visible resumes in a process that sees 1: the first state
    is restored, the other ignored (torch.cuda.set_rng_state_all would fail on the missing GPU)."""
    from mmdynamic.engine.runner import get_rng_states, set_rng_states
    restored = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'set_rng_state',
                        lambda state, device='cuda': restored.append((state, device)))
    states = dict(get_rng_states(), cuda=['state0', 'state1'])
    set_rng_states(states)
    assert restored == [('state0', 0)]


def _video_family(name):
    import importlib
    module = importlib.import_module(f'tests.test_models.test_action.test_{name}')
    return module.build(), module.videos(4), module.samples([0, 1, 2, 3])


VIDEO_FAMILIES = ['uni_adafocus', 'uni_adafocus_tsm', 'adafocus_v2', 'adafocus_v2_tsm']


def loss_on(device, name, no_dropout=True):
    """The training loss of a tiny video model on ``device``, every random draw from a seeded CPU
    generator (drawn on the CPU, then moved: the same draws on every device)."""
    import torch.nn as nn
    model, inputs, samples = _video_family(name)
    if no_dropout:  # dropout draws from the device's own global generator
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    model = model.to(device).train()
    losses = model.loss(inputs.to(device), samples,
                        generator=torch.Generator().manual_seed(0))
    return {k: v for k, v in losses.items() if k.startswith('loss')}


@pytest.mark.cuda
@pytest.mark.parametrize('name', VIDEO_FAMILIES)
def test_video_losses_on_cuda_equal_the_cpu_ones(name, no_tf32):
    """Same weights, inputs and draws: every loss term of the CUDA run equals the CPU one (1e-4
    relative; fp32 with TF32 off, BN in training mode on both)."""
    cpu = loss_on('cpu', name)
    cuda = loss_on('cuda', name)
    assert cpu.keys() == cuda.keys()
    for key in cpu:
        assert cuda[key].device.type == 'cuda', key
        torch.testing.assert_close(cuda[key].cpu(), cpu[key], rtol=1e-4, atol=1e-5, msg=key)
