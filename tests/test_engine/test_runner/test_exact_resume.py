# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume of an epoch-based run with random parts (SAR's Gumbel masks): killed right after a
mid-epoch checkpoint and resumed with --resume, it ends bitwise equal to the uninterrupted run."""
import os
import os.path as osp
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from ...conftest import REPO, run_tool

KILL_AFTER_SAVE = """
import os, runpy, signal, sys
real_replace = os.replace
target = os.environ['KILL_AFTER_SAVING']


def replace(src, dst, *args, **kwargs):  # the checkpoint is complete: die at once
    real_replace(src, dst, *args, **kwargs)
    if os.path.basename(dst) == target:
        os.kill(os.getpid(), signal.SIGKILL)


os.replace = replace
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def kill_after_saving(tmp_path, name: str, args, env=None):
    """Run ``python args`` and SIGKILL it right after checkpoint ``name`` is written."""
    script = tmp_path / 'kill_after_save.py'
    script.write_text(KILL_AFTER_SAVE)
    proc = run_tool([str(script)] + list(args), check=False,
                    env=dict(env or {}, KILL_AFTER_SAVING=name))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    return proc


class Background:
    """``python args`` (``bash`` for .sh) started in the background as ``run_tool`` would run it,
    its output in ``log``; :meth:`wait` checks its exit code and returns the output."""

    def __init__(self, args, log, env=None) -> None:
        self.log = log
        full_env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHON=sys.executable,
                        OMP_NUM_THREADS='1')
        full_env['PATH'] = osp.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
        full_env.update(env or {})
        cmd = (['bash'] if str(args[0]).endswith('.sh') else [sys.executable]) + list(args)
        with open(log, 'w') as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait(self, returncode: int = 0, timeout: int = 600) -> str:
        code = self.proc.wait(timeout)
        with open(self.log) as f:
            out = f.read()
        assert code == returncode, f'exit code {code}, expected {returncode}:\n{out[-6000:]}'
        return out


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
    assert exact_resume_loop(dict(by_epoch=False, max_iters=9))['type'].endswith('IterBasedTrainLoop')
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
    full, cut = str(tmp_path / 'full'), str(tmp_path / 'cut')
    run_tool(['tools/train.py', config, '--work-dir', full, '--cfg-options', *options])
    # iteration 6 is the first of epoch 2: the resumed run must skip one batch of that epoch and
    # continue with the Gumbel noise and shuffling of the uninterrupted run
    kill_after_saving(tmp_path, 'iter_6.pth',
                      ['tools/train.py', config, '--work-dir', cut, '--cfg-options', *options])
    assert not osp.exists(osp.join(cut, 'iter_8.pth'))
    proc = run_tool(['tools/train.py', config, '--work-dir', cut, '--resume', '--cfg-options',
                     *options])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 6' in log and 'skipping its first 1 batches' in log
    for name in ('iter_8.pth', 'iter_14.pth', 'iter_15.pth'):
        assert_same_state(osp.join(full, name), osp.join(cut, name))
