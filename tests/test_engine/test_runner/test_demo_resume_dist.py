# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume and 2-process runs for the demo configs of GFNet (stages I and III), MGNet,
Uni-AdaFocus-TSM and AdaFocusV2 (GFNet stage II and Uni-AdaFocus: test_family_reliability.py).

Resume: each config trains once uninterrupted through ``tools/train.py`` while a second run of it is
SIGKILLed right after a mid-epoch checkpoint; ``--resume`` continues it in a new process. The last
checkpoint of both holds the same state, bitwise: weights, optimizer state (Adam/AdamW moments
and steps), scheduler states, the random generator states (random patches of GFNet stage I,
policy samples of stage III, frame sampling and patches of Uni-AdaFocus-TSM / AdaFocusV2; MGNet
trains without random draws) and, for MGNet, the exit thresholds fitted during validation
(``BudgetEvalHook(during_val=True)``), which the resumed run only has from the checkpoint.

Two processes (GFNet stages I/III, TSM, AdaFocusV2): ``tools/dist_train.sh`` trains with 2 gloo
processes (the checkpoint holds the random states of both ranks); ``tools/dist_test.sh`` evaluates
the uninterrupted run's last checkpoint and gives what ``tools/test.py`` gives in one process
(tolerance 1e-6, bitwise in practice): every sample's outputs in the dataset's order, the metrics
(accuracy, anytime accuracy of every exit, for the videos anytime and budgeted mAP) and the exit
thresholds fitted for a budget on the gathered outputs of all 20 validation images (GFNet). A
2-process training run is not bitwise equal to a 1-process run: BN statistics are per rank (half
the batch) and the ranks draw their own random patches; the tests check that it trains and saves.

The demo configs are changed by ongoing work (pre-trained ``init_cfg``, data roots, geometry); the
tests read them, drop pre-trained weights (``init_cfg`` of type Pretrained, ``load_from``) and set
the data and the small schedule they need explicitly.
"""
import json
import os.path as osp
from typing import Dict, List

import pytest

from mmdynamic.testing.configs import drop_pretrained, inner_dataset

from ...conftest import REPO
from ...test_tools.test_train_tools import _free_port
from .test_exact_resume import assert_same_state
from .tool_runs import Background, ToolRun, killed_run

GFNET = 'configs/gfnet/gfnet-*_stage{}_*_demo-cls.py'
MGNET = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'
TSM = 'configs/uniadafocus/uniadafocus-tsm_mn2-r18-tiny_1xb8-30e_demo-video.py'
ADAFOCUSV2 = 'configs/uniadafocus/adafocusv2_mn2-r18-tiny_1xb8-30e_demo-video.py'
# 1 vs 2 test processes, both in batches of 5 samples: metrics, fitted thresholds and per-sample
# outputs. With other batch sizes the outputs can differ in the last bits (CPU kernels), which can
# reorder the near-tied scores of an untrained exit (all its outputs nearly the same) and change
# mAP or the fitted thresholds although the gathering is right.
TOLERANCE = 1e-6


def find_config(pattern: str) -> str:
    """The first config (by name) matching ``pattern``: the demo configs are renamed and new
    geometries added by ongoing work; demo variants that differ only in sizes share the model code
    and the training state tested here."""
    import glob
    found = sorted(glob.glob(osp.join(REPO, pattern)))
    assert found, f'no config matches {pattern}'
    return found[0]


def demo_config(config: str, out_dir: str, demo_root: str, task: str, test_metrics=(),
                **changes) -> str:
    """A copy of ``config`` without pre-trained weights, reading the tests' demo data (``task``:
    'cls' or 'video'), with top-level ``changes`` and more metrics in the test evaluator."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.merge_from_dict(changes)
    if test_metrics:
        metrics = cfg.test_evaluator
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        cfg.test_evaluator = metrics + list(test_metrics)
    drop_pretrained(cfg.model)
    cfg.load_from = None
    root = osp.join(demo_root, task)
    for split in ('train', 'val', 'test'):
        dataset = inner_dataset(cfg[f'{split}_dataloader'])
        name = 'train' if split == 'train' else 'val'
        if task == 'cls':
            dataset.update(data_root=root, data_prefix=name, ann_file='')
        else:
            dataset.update(ann_file=f'{root}/{name}_list.txt', data_prefix=dict(video=root))
    path = osp.join(out_dir, osp.basename(config))
    cfg.dump(path)
    return path


# 2 batches of training samples: 2 iterations per epoch, 2 epochs, a checkpoint after every
# iteration. Iteration 3 is the first of epoch 2: the run killed after iter_3.pth leaves the
# second to --resume.
def _schedule(batch: int, epochs: int = 2) -> List[str]:
    return [f'train_dataloader.dataset.indices={2 * batch}', f'train_dataloader.batch_size={batch}',
            f'train_cfg.max_epochs={epochs}', 'default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=-1',
            'default_hooks.checkpoint.save_best=None', 'default_hooks.logger.interval=1',
            'val_dataloader.dataset.indices=10', 'test_dataloader.dataset.indices=10']


def _dist_train_schedule(batch: int) -> List[str]:
    # 1 iteration of `batch` samples per rank, then a validation of 10 samples (5 per rank)
    return _schedule(batch, epochs=1) + ['train_cfg.val_interval=1']


def _check_resumed(log: str, full: str, cut: str) -> None:
    assert 'resumed epoch: 1, iter: 3' in log and 'skipping its first 1 batches' in log, log[-3000:]
    assert_same_state(osp.join(full, 'iter_4.pth'), osp.join(cut, 'iter_4.pth'))


def _check_dist_train(log: str, work: str, metric: str) -> None:
    import torch
    assert 'GPU number: 2' in log and "backend='gloo'" in log and metric in log, log[-3000:]
    ckpt = torch.load(osp.join(work, 'iter_1.pth'), map_location='cpu', weights_only=False)
    assert len(ckpt['rng_states']) == 2  # the random states of both ranks


def _read_results(out: str) -> Dict:
    import pickle
    with open(osp.join(out, 'metrics.json')) as f:
        results = dict(metrics=json.load(f))
    with open(osp.join(out, 'preds.pkl'), 'rb') as f:
        results['predictions'] = pickle.load(f)
    if osp.isfile(osp.join(out, 'budget.json')):
        with open(osp.join(out, 'budget.json')) as f:
            results['budget'] = json.load(f)
    return results


def resume_and_two_processes(tmp_path, config: str, batch: int = 8, train_args=(),
                             train_options=(), metric: str = None, test_args=(),
                             test_options=()) -> Dict[str, Dict]:
    """The resume check and, with ``metric``, the 2-process checks of one config, in two phases of
    about two busy cores each:

    1. the uninterrupted run | the run killed after iter_3.pth | ``dist_train.sh``;
    2. the resumed run | ``dist_test.sh`` of the uninterrupted run's last checkpoint | ``test.py``
       of it.

    The single-process runs are fresh processes forked from a server that did the imports once
    (:class:`~.tool_runs.ToolRun`); the 2-process runs start through the shell scripts.

    Returns the metrics (and budget reports) of the single- and two-process tests.
    """
    full, cut, dist = (str(tmp_path / name) for name in ('full', 'cut', 'dist_train'))
    train = ['tools/train.py', config, *train_args]
    options = ['--cfg-options', *_schedule(batch), *train_options]
    killed = killed_run(train + ['--work-dir', cut, *options], tmp_path / 'killed.log',
                        'iter_3.pth')
    if metric:
        dist_train = Background(['tools/dist_train.sh', config, '2', '--work-dir', dist,
                                 '--cfg-options', *_dist_train_schedule(batch // 2)],
                                tmp_path / 'dist_train.log',
                                env=dict(PORT=_free_port()))
    ToolRun(train + ['--work-dir', full, *options], tmp_path / 'full.log').wait()
    killed.wait()
    assert not osp.exists(osp.join(cut, 'iter_4.pth'))

    resumed = ToolRun(train + ['--work-dir', cut, '--resume', *options], tmp_path / 'resume.log')
    final = osp.join(full, 'iter_4.pth')
    results = {}
    if metric:
        # 10 samples in batches of 5: one process runs 2, two processes one each
        test = [*test_args, '--cfg-options', 'test_dataloader.dataset.indices=10',
                'test_dataloader.batch_size=5', *test_options]
        dist_test = Background(['tools/dist_test.sh', config, final, '2', '--work-dir',
                                str(tmp_path / 'test_dist'), '--out',
                                str(tmp_path / 'test_dist' / 'preds.pkl'), *test],
                               tmp_path / 'dist_test.log', env=dict(PORT=_free_port()))
        single = str(tmp_path / 'test_single')
        ToolRun(['tools/test.py', config, final, '--work-dir', single, '--out',
                 osp.join(single, 'preds.pkl'), *test], tmp_path / 'test_single.log').wait()
    _check_resumed(resumed.wait(), full, cut)
    if metric:
        _check_dist_train(dist_train.wait(), dist, metric)
        dist_test.wait()
        results = {mode: _read_results(str(tmp_path / f'test_{mode}'))
                   for mode in ('single', 'dist')}
    return results


def _assert_close(a, b, where: str = '', tolerance: float = TOLERANCE) -> None:
    import numpy as np
    import torch
    if isinstance(a, (torch.Tensor, np.ndarray)):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        assert a.shape == b.shape, where
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=0, atol=tolerance), f'{where}: {a} vs {b}'
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_close(a[key], b[key], f'{where}.{key}', tolerance)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f'{where}[{i}]', tolerance)
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= tolerance, f'{where}: {a} vs {b}'
    else:
        assert a == b, f'{where}: {a!r} vs {b!r}'


def _mid_budget(config: str, input_shape=(3, 128, 128)) -> str:
    """A budget (GMACs) halfway between the cheapest and the dearest exit of the config's model."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmdynamic.models  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    costs = MODELS.build(cfg.model).exit_macs(input_shape)
    return f'{(costs[0] + costs[-1]) / 2e9:.6g}'


def _check_test_agreement(results: Dict[str, Dict], metric: str, exits: int) -> None:
    """1 and 2 test processes: the same metrics, anytime accuracies of every exit and, where a
    budget was asked for, the same thresholds fitted on the outputs of all 20 validation images."""
    single, dist = results['single'], results['dist']
    assert metric in single['metrics']
    _assert_close(single['metrics'], dist['metrics'], 'metrics')
    # every sample's outputs, in the dataset's order (file names included)
    assert len(single['predictions']) == 10
    _assert_close(single['predictions'], dist['predictions'], 'predictions')
    # the BudgetEvalHook's report of the step-wise models (tools/test.py adds it)
    report = single['budget']
    assert report['num_exits'] == exits and len(report['anytime']) == exits
    keys = ['num_exits', 'exit_flops', 'anytime']
    if 'curve' in report:  # thresholds fitted for a budget
        assert dist['budget']['fit_split'] == 'val'
        assert dist['budget']['fit_num_samples'] == 20  # 10 + 10 from the two ranks
        keys += ['fit_num_samples', 'curve', 'budgets', 'thresholds']
    for key in keys:
        _assert_close(report[key], dist['budget'][key], f'budget.{key}')


@pytest.mark.slow
@pytest.mark.parametrize('stage', [1, 3])
def test_gfnet_stage_resumes_bitwise_and_runs_on_two_processes(stage, demo_root, tmp_path):
    """Stage I (uniformly random patches, warm-up + cosine schedules) and stage III (patches sampled
    from the policy, cosine schedule), both with Adam; evaluated at the policy's mean action so that
    1 and 2 test processes see the same patches."""
    config = demo_config(find_config(GFNET.format(stage)), str(tmp_path), demo_root, 'cls')
    results = resume_and_two_processes(
        tmp_path, config, train_args=['--no-validate'], metric='accuracy/top1',
        test_args=['--budget', _mid_budget(config), '--fit-on', 'val'],
        test_options=['model.test_locations=mean'])
    _check_test_agreement(results, 'accuracy/top1', exits=3)


@pytest.mark.slow
def test_mgnet_resumes_bitwise_with_fitted_thresholds(demo_root, tmp_path):
    """MGNet (warm-up + cosine schedules, AdamW, shuffled data) validating after epoch 1 with a
    BudgetEvalHook that fits exit thresholds: the killed run's thresholds come back from the
    checkpoint (the resumed run does not validate before its next checkpoints)."""
    budget = float(_mid_budget(osp.join(REPO, MGNET)))
    hook = dict(type='BudgetEvalHook', during_val=True, budgets=[budget], fit_on='val', plot=False)
    config = demo_config(MGNET, str(tmp_path), demo_root, 'cls', custom_hooks=[hook])
    resume_and_two_processes(tmp_path, config, train_options=['train_cfg.val_interval=1'])
    import torch
    meta = torch.load(str(tmp_path / 'full' / 'iter_4.pth'), map_location='cpu',
                      weights_only=False)['meta']
    assert len(meta['exit_policies']) == 1 and len(meta['exit_policies'][0]['thresholds']) == 4


@pytest.mark.slow
@pytest.mark.parametrize('name', ['tsm', 'adafocusv2'])
def test_video_demo_resumes_bitwise_and_runs_on_two_processes(name, demo_root, tmp_path):
    """Uni-AdaFocus-TSM (random glance/focus frame sampling and crops, random patches of the
    diversity branch, gradient clipping) and AdaFocusV2 (random patches of its second branch)."""
    # mAP of every exit, and of early exits with thresholds fitted on the test outputs themselves
    # (the largest budget of the curve): both gathered over the ranks
    maps = [dict(type='AnytimeMAP'), dict(type='BudgetedMAP')]
    config = demo_config({'tsm': TSM, 'adafocusv2': ADAFOCUSV2}[name], str(tmp_path), demo_root,
                         'video', test_metrics=maps)
    results = resume_and_two_processes(tmp_path, config, batch=4, train_args=['--no-validate'],
                                       metric='acc/top1')
    _check_test_agreement(results, 'acc/top1', exits=2 if name == 'tsm' else 16)
    assert {'anytime/mAP_exit1', 'budget/mAP_max_budget'} <= results['single']['metrics'].keys()
