# Copyright (c) mmdynamic contributors. All rights reserved.
import types

import pytest
import torch
import torch.nn as nn

from mmdynamic.engine.hooks import ActionStdScheduleHook
from mmdynamic.models.cls.gfnet.policy import GFPatchPolicy


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.policy = GFPatchPolicy(in_channels=8, feature_size=2, action_std=0.25)


def _runner(model, it, max_iters):
    hub = types.SimpleNamespace(scalars={}, update_scalar=lambda k, v: hub.scalars.__setitem__(k, v))
    return types.SimpleNamespace(model=model, iter=it, max_iters=max_iters, message_hub=hub)


def test_std_moves_linearly_from_the_first_to_the_last_iteration():
    model = _Model()
    hook = ActionStdScheduleHook(std_start=0.25, std_end=0.1)
    hook.before_train(_runner(model, 0, 101))
    for it, expected in ((0, 0.25), (50, 0.175), (100, 0.1)):
        runner = _runner(model, it, 101)
        hook.before_train_iter(runner, 0)
        assert model.policy.action_std == pytest.approx(expected)
        assert runner.message_hub.scalars['train/action_std'] == pytest.approx(expected)
    # a resumed run recomputes the std from the iteration alone
    hook.before_train_iter(_runner(model, 0, 101), 0)
    assert model.policy.action_std == pytest.approx(0.25)
    # the sampled actions follow the scheduled std
    torch.manual_seed(0)
    hook.before_train_iter(_runner(model, 100, 101), 0)
    actions, _ = model.policy.sample(torch.full((20000, 2), 0.5))
    assert actions.std().item() == pytest.approx(0.1, rel=0.03)


def test_bad_values_and_models_without_a_policy_are_refused():
    for start, end in ((0.0, 0.1), (0.25, -0.1)):
        with pytest.raises(ValueError, match='action stds must be positive'):
            ActionStdScheduleHook(std_start=start, std_end=end)
    with pytest.raises(TypeError, match='Gaussian patch policy'):
        ActionStdScheduleHook(0.25, 0.1).before_train(_runner(nn.Linear(2, 2), 0, 10))
