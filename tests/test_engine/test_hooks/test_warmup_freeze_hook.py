# Copyright (c) mmdynamic contributors. All rights reserved.
import types

import pytest
import torch
import torch.nn as nn

from mmdynamic.engine.hooks import WarmupFreezeHook


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 3)
        self.masks = nn.ModuleList([nn.Linear(3, 1)])

    def forward(self, x):
        return self.masks[0](self.body(x)).sum()


def _runner(model, it, max_iters=10):
    return types.SimpleNamespace(model=model, iter=it, max_iters=max_iters,
                                 logger=types.SimpleNamespace(info=lambda msg: None))


def _grads(model, hook, it):
    model.zero_grad()
    hook.before_train_iter(_runner(model, it), 0)
    model(torch.ones(2, 3)).backward()
    return model.body.weight.grad.abs().sum().item(), model.masks[0].weight.grad.abs().sum().item()


def test_only_the_named_parameters_learn_until_the_fraction():
    torch.manual_seed(0)
    model = _Net()
    hook = WarmupFreezeHook(trainable=['masks.'], until=0.3)
    hook.before_train(_runner(model, 0))
    for it, held in ((0, True), (2, True), (3, False), (9, False), (0, True)):  # resumable
        body, masks = _grads(model, hook, it)
        assert masks > 0
        assert (body == 0) == held, (it, body)
    # an SGD step at a held iteration leaves the held weights as they are (no weight decay here)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = model.body.weight.detach().clone()
    _grads(model, hook, 1)
    opt.step()
    assert torch.equal(model.body.weight, before)


def test_bad_options_and_no_match():
    with pytest.raises(ValueError, match='non-empty sequence'):
        WarmupFreezeHook(trainable='.masks.')
    with pytest.raises(ValueError, match=r'until must be a fraction of training in \[0, 1\]'):
        WarmupFreezeHook(until=1.5)
    with pytest.raises(ValueError, match="no trainable parameter name contains any of \\('gen',\\)"):
        WarmupFreezeHook(trainable=['gen']).before_train(_runner(_Net(), 0))
