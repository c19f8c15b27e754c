# Copyright (c) mmdynamic contributors. All rights reserved.
"""Every demo config of every family through the real Runner on a GPU (:mod:`.demo_runs`): a few
training iterations in fp32 and with ``--amp``, a run killed mid-epoch and resumed, evaluation (fp16
with ``--amp``), for step-wise models the budget evaluation and real early exit.

The ``cuda`` variants run all configs' phases together (module fixture, bounded parallelism) and
skip without a GPU. The ``cpu`` variant runs the same body on one step-wise demo config with the
GPUs hidden (no AMP phase: MMEngine's AmpOptimWrapper needs CUDA), so that the test's own logic is
checked where no GPU is lent. It takes 2-3 minutes on 2 CPU cores, so CI leaves it out: set
``MMDYNAMIC_CPU_VARIANTS=1`` to run it.
"""
import math
import os

import pytest

from .demo_runs import DEMO_CONFIGS, run_demo_configs

CPU_CONFIG = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'
# processes at a time on the GPU machine: a run spends most of its time importing (one core), the
# demo models are small (a few hundred MiB of GPU memory each)
CUDA_PARALLEL = max(1, min(16, os.cpu_count() or 2))


@pytest.fixture(scope='module')
def cuda_runs(demo_root, tmp_path_factory):
    deadline = os.environ.get('MMDYNAMIC_CUDA_DEADLINE')  # set by tools/misc/gpu_check.sh
    return run_demo_configs(DEMO_CONFIGS, 'cuda', str(tmp_path_factory.mktemp('cuda_demo')),
                            demo_root, CUDA_PARALLEL, float(deadline) if deadline else None)


def _check(run) -> None:
    assert not run.failures, '\n\n'.join(run.failures)
    killed, resumed = run.logs['killed'], run.logs['resume']
    if run.device == 'cuda':
        # MMEngine logs the peak GPU memory of each training iteration when the model runs there
        assert 'memory: ' in killed and 'memory: 0 ' not in killed, killed[-3000:]
    assert 'iter: 3' in resumed and 'resumed' in resumed.lower(), resumed[-3000:]
    if run.device == 'cuda':
        amp = run.logs['amp']
        assert 'AmpOptimWrapper' in amp, amp[-3000:]
        ckpt = run.amp_checkpoint
        assert 'loss_scaler' in ckpt['optimizer'], sorted(ckpt['optimizer'])
        assert all(math.isfinite(float(v.float().abs().sum()))
                   for v in ckpt['state_dict'].values() if v.is_floating_point())
    if run.budget is None:  # not a step-wise model: training and testing were all
        return
    costs = run.budget['exit_flops']
    assert len(costs) == run.budget['num_exits'] >= 2 and costs == sorted(costs)
    fit = run.budget_fit
    assert fit is not None and len(fit['budgets']) == 1 and fit['fit_split'] == 'val'
    realised = run.early_exit
    assert realised is not None, run.logs.get('exit', '')[-3000:]
    assert costs[0] - 1e-6 <= realised['realised_gmacs'] <= costs[-1] + 1e-6, (realised, costs)
    assert abs(sum(realised['exit_fractions']) - 1) < 1e-6


@pytest.mark.cuda
@pytest.mark.parametrize('config', DEMO_CONFIGS)
def test_demo_config_on_cuda(config, cuda_runs):
    _check(cuda_runs[config])


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get('MMDYNAMIC_CPU_VARIANTS'),
                    reason='the CPU variant of the CUDA runs (2-3 min): MMDYNAMIC_CPU_VARIANTS=1')
def test_demo_config_on_cpu_same_checks(demo_root, tmp_path):
    """The body of the CUDA test on the CPU, for one step-wise demo config (GPUs hidden)."""
    runs = run_demo_configs([CPU_CONFIG], 'cpu', str(tmp_path), demo_root, limit=2)
    _check(runs[CPU_CONFIG])
