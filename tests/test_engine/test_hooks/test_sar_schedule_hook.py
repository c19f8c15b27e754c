# Copyright (c) mmdynamic contributors. All rights reserved.
import types

import pytest
import torch
import torch.nn as nn

from mmdynamic.engine.hooks import SARScheduleHook, exponential_temperature, stepped_target


def test_exponential_temperature():
    assert exponential_temperature(0.0) == pytest.approx(1.0)
    assert exponential_temperature(0.5) == pytest.approx(0.1)
    assert exponential_temperature(1.0) == pytest.approx(0.01)
    assert exponential_temperature(2.0) == pytest.approx(0.01)  # stays at the end value


def test_stepped_target_three_steps_to_mid_training():
    t = 0.4
    values = [stepped_target(p, t) for p in (0.0, 0.29, 0.3, 0.39, 0.4, 0.49, 0.5, 0.9)]
    assert values == pytest.approx([1, 1, 0.8, 0.8, 0.6, 0.6, 0.4, 0.4])
    with pytest.raises(ValueError, match='begin <= end'):
        stepped_target(0.1, 0.5, begin=0.6, end=0.5)


class _Backbone(nn.Module):
    tau = 1.0
    last_masks = []


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()
        self.sparsity_cfg = dict(target=0.3)
        self.current_target = 0.3


def _runner(model, it, max_iters, epoch=0, max_epochs=10, loop=None):
    hub = types.SimpleNamespace(scalars={}, update_scalar=lambda k, v: hub.scalars.__setitem__(k, v))
    return types.SimpleNamespace(model=model, iter=it, max_iters=max_iters, epoch=epoch,
                                 max_epochs=max_epochs, train_loop=loop or object(),
                                 message_hub=hub)


def test_hook_sets_values_from_the_iteration_only():
    model = _Model()
    hook = SARScheduleHook(target_begin=0.3, target_end=0.5)
    hook.before_train_iter(_runner(model, 50, 100), 0)
    assert model.backbone.tau == pytest.approx(0.1)
    assert model.current_target == pytest.approx(0.3)
    hook.before_train_iter(_runner(model, 0, 100), 0)  # a resumed run recomputes, no history
    assert model.backbone.tau == pytest.approx(1.0) and model.current_target == 1.0
    hook.before_train_iter(_runner(model, 35, 100), 0)
    assert model.current_target == pytest.approx(0.3 + 0.7 * 2 / 3)


def test_hook_by_epoch_for_epoch_loops():
    from mmengine.runner import EpochBasedTrainLoop
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    model = _Model()
    hook = SARScheduleHook()
    # iteration 45 % through training but still in epoch 2 of 10: the target follows the epoch
    hook.before_train_iter(_runner(model, 45, 100, epoch=2, max_epochs=10, loop=loop), 0)
    assert model.current_target == 1.0
    assert model.backbone.tau == pytest.approx(exponential_temperature(0.45))


def test_hook_refuses_non_sar_models():
    with pytest.raises(TypeError, match='needs a SAR task model'):
        SARScheduleHook().before_train(_runner(nn.Linear(1, 1), 0, 10))


def test_stepped_target_other_step_counts_and_linear_ramp():
    t = 0.4
    # the default is the paper's three steps, the last at ``end``
    assert [stepped_target(p, t, 0.3, 0.5, steps=3) for p in (0.3, 0.4, 0.5)] == pytest.approx(
        [stepped_target(p, t, 0.3, 0.5) for p in (0.3, 0.4, 0.5)])
    # n steps of (1 - t) / n, evenly spaced from begin to end
    assert [stepped_target(p, t, 0.2, 0.6, steps=5) for p in (0.19, 0.21, 0.31, 0.41, 0.51, 0.61)
            ] == pytest.approx([1.0, 0.88, 0.76, 0.64, 0.52, 0.4])
    assert [stepped_target(p, t, 0.2, 0.6, steps=1) for p in (0.19, 0.2, 0.9)] == pytest.approx(
        [1.0, t, t])
    # the linear ramp never jumps: 1 at begin, t at end, linear in between
    ramp = [stepped_target(p, t, 0.2, 0.6, steps=None) for p in (0.1, 0.2, 0.3, 0.5, 0.6, 0.9)]
    assert ramp == pytest.approx([1.0, 1.0, 0.85, 0.55, t, t])
    dense = [stepped_target(i / 1000, t, 0.2, 0.6, steps=None) for i in range(1001)]
    assert max(a - b for a, b in zip(dense, dense[1:])) < 0.002
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match='steps must be'):
            stepped_target(0.3, t, steps=bad)


def test_hook_linear_target_by_iterations():
    model = _Model()  # final target 0.3
    hook = SARScheduleHook(target_begin=0.1, target_end=0.6, by_epoch=False, target_steps=None)
    hook.before_train_iter(_runner(model, 35, 100), 0)
    assert model.current_target == pytest.approx(1 - 0.7 * 0.5)
    hook.before_train_iter(_runner(model, 60, 100), 0)
    assert model.current_target == pytest.approx(0.3)
    with pytest.raises(ValueError, match='steps must be'):
        SARScheduleHook(target_steps=0)


def test_short_epoch_schedules_follow_the_iterations():
    """6 epochs with steps at 10 / 20 / 30 %: by epochs two steps would land on epoch 2 (the demo's
    aliasing, issue #19), so the default follows the iterations; 200 epochs resolve the steps."""
    from mmengine.runner import EpochBasedTrainLoop

    from mmdynamic.engine.hooks.sar_schedule_hook import epochs_resolve_steps
    assert not epochs_resolve_steps(6, 0.1, 0.3, 3)
    assert epochs_resolve_steps(200, 0.3, 0.5, 3) and epochs_resolve_steps(10, 0.3, 0.5, 3)
    assert not epochs_resolve_steps(200, 0.3, 0.5, None)  # a ramp: by iterations
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    model = _Model()  # final target 0.3
    hook = SARScheduleHook(target_begin=0.1, target_end=0.3)
    # iteration 25 % through (epoch 1 of 6): the second step (at 20 %), not the third
    hook.before_train_iter(_runner(model, 25, 100, epoch=1, max_epochs=6, loop=loop), 0)
    assert model.current_target == pytest.approx(0.3 + 0.7 / 3)
    # forced by epochs: epoch 1 / 6 = 0.167 -> the first step only, epoch 2 jumps to the target
    forced = SARScheduleHook(target_begin=0.1, target_end=0.3, by_epoch=True)
    forced.before_train_iter(_runner(model, 25, 100, epoch=2, max_epochs=6, loop=loop), 0)
    assert model.current_target == pytest.approx(0.3)


def test_hook_gumbel_noise_schedule():
    """The Gumbel noise factor: 1 throughout by default (the paper), else linear per iteration."""
    model = _Model()
    SARScheduleHook().before_train_iter(_runner(model, 50, 100), 0)
    assert model.backbone.gumbel_noise == 1.0
    hook = SARScheduleHook(noise_start=1.0, noise_end=0.0)
    runner = _runner(model, 25, 100)
    hook.before_train_iter(runner, 0)
    assert model.backbone.gumbel_noise == pytest.approx(0.75)
    assert runner.message_hub.scalars['train/gumbel_noise'] == pytest.approx(0.75)
    hook.before_train_iter(_runner(model, 100, 100), 0)
    assert model.backbone.gumbel_noise == 0.0
    with pytest.raises(ValueError, match='noise'):
        SARScheduleHook(noise_end=-0.1)
