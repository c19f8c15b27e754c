# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume of an epoch-based run with random parts (SAR's Gumbel masks): killed right after a
mid-epoch checkpoint and resumed with --resume, it ends bitwise equal to the uninterrupted run
(:func:`resume_matches`, used by the family tests too)."""
import os.path as osp
import random
from typing import Sequence

import numpy as np
import pytest
import torch

from .tool_runs import ToolRun, killed_run

def _same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f'{where}: {a.keys()} vs {b.keys()}'
        for key in a:
            _same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} vs {b!r}'


def assert_same_state(a: str, b: str) -> None:
    """Checkpoints ``a`` and ``b`` hold the same training state, bitwise: weights, optimizer state
    (e.g. Adam's moments and step counts, per parameter group), schedulers, the random generator
    states of every process, the exit policies a BudgetEvalHook fitted, the epoch and iteration."""
    ca = torch.load(a, map_location='cpu', weights_only=False)
    cb = torch.load(b, map_location='cpu', weights_only=False)
    for key in ('state_dict', 'optimizer', 'param_schedulers', 'rng_states'):
        assert (key in ca) == (key in cb), key
        if key in ca:
            _same(ca[key], cb[key], key)
    assert 'rng_states' in ca, 'no random states in the checkpoint'
    for key in ('epoch', 'iter', 'exit_policies'):
        _same(ca['meta'].get(key), cb['meta'].get(key), f'meta.{key}')


def resume_matches(tmp_path, config: str, options: Sequence[str], kill_at: str,
                   resumed_at: str, compare: Sequence[str],
                   train_args: Sequence[str] = ()) -> str:
    """``tools/train.py config`` uninterrupted, and killed right after checkpoint ``kill_at`` then
    resumed with ``--resume`` (each a new process): the checkpoints ``compare`` hold the same state.
    Returns the resumed run's output."""
    full, cut = str(tmp_path / 'full'), str(tmp_path / 'cut')
    train = ['tools/train.py', config, *train_args]
    killed = killed_run(train + ['--work-dir', cut, '--cfg-options', *options],
                        tmp_path / 'killed.log', kill_at)
    ToolRun(train + ['--work-dir', full, '--cfg-options', *options], tmp_path / 'full.log').wait()
    killed.wait()
    assert not osp.exists(osp.join(cut, compare[0])), 'killed too late'
    log = ToolRun(train + ['--work-dir', cut, '--resume', '--cfg-options', *options],
                  tmp_path / 'resume.log').wait()
    assert resumed_at in log, log[-3000:]
    for name in compare:
        assert_same_state(osp.join(full, name), osp.join(cut, name))
    return log


def test_rng_state_round_trip():
    from mmdynamic.engine.runner import get_rng_states, set_rng_states
    states = get_rng_states()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_exact_resume_loop_config():
    from mmdynamic.engine.runner import exact_resume_loop
    assert exact_resume_loop(dict(by_epoch=True, max_epochs=3, val_interval=1)) == dict(
        type='mmdynamic.ExactResumeEpochBasedTrainLoop', max_epochs=3, val_interval=1)
    loop = exact_resume_loop(dict(by_epoch=False, max_iters=9))
    assert loop['type'].endswith('IterBasedTrainLoop')
    own = dict(type='MyLoop', max_epochs=1)
    assert exact_resume_loop(own) is own
    # MMEngine's standard loops named explicitly are replaced as well
    assert exact_resume_loop(dict(type='EpochBasedTrainLoop', max_epochs=2)) == dict(
        type='mmdynamic.ExactResumeEpochBasedTrainLoop', max_epochs=2)
    assert exact_resume_loop(dict(type='mmengine.IterBasedTrainLoop', max_iters=2))['type'] == (
        'mmdynamic.ExactResumeIterBasedTrainLoop')


@pytest.mark.slow
def test_sar_demo_resumes_mid_epoch_bitwise(demo_root, tmp_path):
    config = 'configs/sar/sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py'
    root = osp.join(demo_root, 'cls')
    # 40 images, batch 8: 5 iterations per epoch; checkpoints every 2 iterations; 3 epochs
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
        'train_dataloader.batch_size=8', 'train_cfg.max_epochs=3', 'train_cfg.val_interval=1',
        'param_scheduler.1.end=3', 'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=-1',
        'randomness.deterministic=True']
    # iteration 6 is the first of epoch 2: the resumed run must skip one batch of that epoch and
    # continue with the Gumbel noise and shuffling of the uninterrupted run
    log = resume_matches(tmp_path, config, options, 'iter_6.pth', 'resumed epoch: 1, iter: 6',
                         ['iter_8.pth', 'iter_14.pth', 'iter_15.pth'])
    assert 'skipping its first 1 batches' in log
