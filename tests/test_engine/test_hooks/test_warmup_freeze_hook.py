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


def _runner(model, it, max_iters=10, optimizer=None):
    return types.SimpleNamespace(model=model, iter=it, max_iters=max_iters,
                                 optim_wrapper=types.SimpleNamespace(optimizer=optimizer),
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


def test_held_after_stops_the_matching_parameters_from_until_on():
    """held_after: from `until` on, the matching parameters (the generator's weight, not its bias)
    stop: zero gradients and their SGD momentum cleared at the switch, so a step leaves them as
    they are; before it they learn, and the others learn after it."""
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hook = WarmupFreezeHook(trainable=['masks.'], until=0.3, held_after=[r'masks\.\d+\.weight'])
    hook.before_train(_runner(model, 0, optimizer=opt))

    def step(it):
        model.zero_grad()
        hook.before_train_iter(_runner(model, it, optimizer=opt), 0)
        model(torch.ones(2, 3)).backward()
        grads = {name: p.grad.abs().sum().item() for name, p in model.named_parameters()}
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        opt.step()
        moved = {name: not torch.equal(p, before[name]) for name, p in model.named_parameters()}
        return grads, moved

    for it in (0, 1, 2):  # the warm-up: the generator learns, momentum builds up
        grads, moved = step(it)
        assert grads['masks.0.weight'] > 0 and moved['masks.0.weight']
        assert grads['body.weight'] == 0
    assert opt.state[model.masks[0].weight]['momentum_buffer'].abs().sum() > 0
    for it in (3, 5, 9):
        grads, moved = step(it)
        assert grads['masks.0.weight'] == 0 and not moved['masks.0.weight']
        assert opt.state[model.masks[0].weight]['momentum_buffer'].abs().sum() == 0
        assert grads['masks.0.bias'] > 0 and moved['masks.0.bias']
        assert grads['body.weight'] > 0 and moved['body.weight']


def test_held_after_bad_options():
    with pytest.raises(ValueError, match='held_after must be a sequence of regular expressions'):
        WarmupFreezeHook(held_after=r'\.masks\.')
    with pytest.raises(ValueError, match="held_after: '\\(' is not a regular expression"):
        WarmupFreezeHook(held_after=['('])
    with pytest.raises(ValueError, match=r"no trainable parameter name matches held_after \['gen'\]"):
        WarmupFreezeHook(trainable=['masks.'], held_after=['gen']).before_train(
            _runner(_Net(), 0))
