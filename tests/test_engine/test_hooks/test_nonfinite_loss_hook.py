# Copyright (c) mmdynamic contributors. All rights reserved.
"""NonFiniteLossHook in a real MMEngine runner: training stops at the first NaN loss with the
iteration and the loss terms, and the checkpoints already written stay (no checkpoint of the broken
weights is added)."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdynamic.engine  # noqa: F401


class _NaNAfter(BaseModel):
    """Linear regression whose loss becomes NaN once the input carries the value ``nan_from``."""

    def __init__(self, nan_from: int) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1)
        self.nan_from = nan_from

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = inputs.float().view(-1, 1)
        loss = (self.fc(x) - 2 * x).pow(2).mean()
        poison = torch.where(x >= self.nan_from, torch.nan, 0.0).sum()
        return dict(loss_fit=loss + poison, loss_aux=loss.detach() * 0)


def _runner(tmp_path, nan_from: int) -> Runner:
    # one sample per iteration, in order: iteration i sees the value i - 1
    data = [dict(inputs=torch.tensor([float(i)])) for i in range(40)]
    return Runner(
        model=_NaNAfter(nan_from), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=1, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=40),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-4)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=10, by_epoch=False)),
        custom_hooks=[dict(type='NonFiniteLossHook')], default_scope='mmengine')


def test_training_stops_at_the_first_nan_and_keeps_checkpoints(tmp_path):
    runner = _runner(tmp_path, nan_from=24)
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    message = str(info.value)
    assert 'non-finite loss at iteration 25' in message
    assert 'loss_fit=nan' in message and 'loss_aux=0' in message
    assert osp.join(str(tmp_path), 'iter_20.pth') in message
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(str(tmp_path), 'iter_*.pth')))
    assert names == ['iter_10.pth', 'iter_20.pth']
    state = torch.load(osp.join(str(tmp_path), 'iter_20.pth'), weights_only=False)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())


def test_finite_losses_pass(tmp_path):
    runner = _runner(tmp_path, nan_from=10**6)
    runner.train()
    assert osp.isfile(osp.join(str(tmp_path), 'iter_40.pth'))
