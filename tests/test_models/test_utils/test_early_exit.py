# Copyright (c) mmdynamic contributors. All rights reserved.
from collections import namedtuple

import pytest
import torch
import torch.nn as nn

from mmdynamic.models.utils import (EarlyExitExecutor, StepwiseMixin, crop_patches,
                                    gather_batch, glance)


class ToyStepwise(StepwiseMixin, nn.Module):
    """Glance + recurrent focus steps with every kind of state: a GRU hidden (B, H), a growing
    feature buffer (B, t, F) and patch coordinates (B, 2)."""
    num_exits = 4

    def __init__(self, classes=6, patch=8):
        super().__init__()
        self.patch = patch
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.gru = nn.GRUCell(8, 16)
        self.policy = nn.Linear(16, 2)
        self.heads = nn.ModuleList(nn.Linear(16 + 8, classes) for _ in range(self.num_exits))

    def init_state(self, inputs):
        b = inputs.shape[0]
        return dict(hidden=inputs.new_zeros(b, 16), buffer=inputs.new_zeros(b, 0, 8),
                    location=None)

    def step(self, index, inputs, state):
        if index == 0:
            patch = glance(inputs, self.patch, mode='bilinear')
            location = inputs.new_zeros(inputs.shape[0], 2)
        else:
            location = torch.sigmoid(self.policy(state['hidden']))
            patch = crop_patches(inputs, location, self.patch)
        feat = self.encoder(patch)
        hidden = self.gru(feat, state['hidden'])
        buffer = torch.cat([state['buffer'], feat[:, None]], dim=1)
        logits = self.heads[index](torch.cat([hidden, buffer.mean(1)], dim=1))
        return logits, dict(hidden=hidden, buffer=buffer, location=location)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_executor_equals_run_all_then_pick(seed):
    torch.manual_seed(seed)
    model = ToyStepwise().eval()
    x = torch.rand(16, 3, 24, 24)
    with torch.no_grad():
        all_logits = model.forward_exits(x)  # (K, B, C)
    conf = all_logits.softmax(-1).amax(-1)
    # random thresholds around the median confidence of each exit
    thresholds = [float(c.quantile(torch.rand(1).item())) for c in conf]
    result = EarlyExitExecutor(thresholds, 'max_softmax').run(model, x)
    expected_exit = torch.full((16, ), 3)
    for b in range(16):
        for k in range(3):
            if conf[k, b] >= thresholds[k]:
                expected_exit[b] = k
                break
    assert torch.equal(result.exits, expected_exit)
    picked = all_logits[expected_exit, torch.arange(16)]
    assert torch.allclose(result.logits, picked, atol=1e-5)
    # survivors only: the batch shrinks with the exits
    assert result.batch_sizes[0] == 16
    assert result.batch_sizes == sorted(result.batch_sizes, reverse=True)
    for k in range(1, len(result.batch_sizes)):
        assert result.batch_sizes[k] == int((expected_exit >= k).sum())


def test_executor_extremes():
    torch.manual_seed(0)
    model = ToyStepwise().eval()
    x = torch.rand(5, 3, 24, 24)
    res = EarlyExitExecutor([-float('inf')] * 4).run(model, x)
    assert (res.exits == 0).all() and res.batch_sizes == [5]
    res = EarlyExitExecutor([float('inf')] * 4).run(model, x)
    assert (res.exits == 3).all() and res.batch_sizes == [5, 5, 5, 5]
    with pytest.raises(ValueError, match='3 thresholds for a model with 4 exits'):
        EarlyExitExecutor([0.5] * 3).run(model, x)


def test_gather_batch_nested():
    Pair = namedtuple('Pair', 'a b')
    tree = dict(x=torch.arange(4), y=[torch.arange(8).reshape(4, 2), None],
                z=Pair(torch.arange(4) * 2, 3), s=torch.tensor(7.0))
    out = gather_batch(tree, torch.tensor([3, 1]))
    assert out['x'].tolist() == [3, 1] and out['y'][0].tolist() == [[6, 7], [2, 3]]
    assert out['y'][1] is None and isinstance(out['z'], Pair) and out['z'].a.tolist() == [6, 2]
    assert out['s'] == 7.0
    with pytest.raises(TypeError, match='cannot gather a state of type'):
        gather_batch(dict(bad=object()), torch.tensor([0]))


def test_exit_macs_counted_from_modules():
    model = ToyStepwise()
    costs = model.exit_macs((3, 24, 24))
    assert len(costs) == 4 and all(b > a for a, b in zip(costs, costs[1:]))
    conv = 3 * 8 * 9 * 8 * 8  # encoder conv on one 8 x 8 patch
    gru = 3 * (8 * 16 + 16 * 16)  # GRUCell: input and hidden projections of 3 gates
    policy = 16 * 2
    # every focus step adds at least the encoder conv, the GRU and the policy
    assert costs[1] - costs[0] >= conv + gru + policy


class StateOnlyToy(StepwiseMixin, nn.Module):
    """Every step: logits = head(x pooled); a state update ``update`` that feeds no logits (only
    the state, which no later logits read either) and a discarded auxiliary head ``aux``. Exit costs
    must count both: they run (issue #16, item 16)."""
    num_exits = 3

    def __init__(self, channels=3, hidden=5, classes=4):
        super().__init__()
        self.head = nn.Linear(channels, classes)
        self.update = nn.Linear(channels + hidden, hidden)
        self.aux = nn.Linear(channels, 7)

    def init_state(self, inputs):
        return dict(h=inputs.new_zeros(inputs.shape[0], self.update.out_features))

    def step(self, index, inputs, state):
        pooled = inputs.mean(dim=(2, 3))
        self.aux(pooled)  # runs, result unused
        hidden = self.update(torch.cat([pooled, state['h']], dim=1))
        return self.head(pooled), dict(h=hidden)


def test_exit_macs_count_state_updates_that_feed_no_logits():
    model = StateOnlyToy()
    costs = model.exit_macs((3, 4, 4))
    pool = 3 * 4 * 4  # the counter prices the mean as one op per element
    head, update, aux = 3 * 4, (3 + 5) * 5, 3 * 7
    per_step = head + update + aux
    mean = costs[0] - per_step
    assert mean in (0, pool)  # however the counter prices the mean: the same every step
    assert costs == [k * (per_step + mean) for k in (1, 2, 3)]
    # what a trace of the logits alone keeps: the head only
    from mmdynamic.utils.flops import count_macs
    logits_only = count_macs(model, (torch.zeros(1, 3, 4, 4), ), fn=model.forward_exits,
                             count_all_modules=False)
    assert logits_only == 3 * (head + mean)


def test_exit_macs_of_the_dynamic_toy_count_every_module_that_runs():
    """The registered toy classifier (``mmdynamic.testing``): exit k = glance encoder, k focus
    encoders and policies, k + 1 GRU updates and one head per step (every head runs)."""
    from mmdynamic.testing.toy_stepwise import DynToyStepwiseClassifier
    from mmdynamic.utils.flops import count_macs
    model = DynToyStepwiseClassifier(num_classes=3, num_steps=3, patch_size=16, channels=4,
                                     hidden=6).eval()
    costs = model.exit_macs((3, 32, 32))
    x = torch.zeros(1, 3, 16, 16)
    encoder = count_macs(model.local_encoder, (x, ))
    gru = count_macs(model.gru, (torch.zeros(1, 4), torch.zeros(1, 6)))
    step = encoder + gru + model.policy.in_features * 2 + 6 * 3
    assert costs[2] - costs[1] == costs[1] - costs[0] == step
