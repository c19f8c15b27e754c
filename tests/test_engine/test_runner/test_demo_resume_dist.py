# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume and 2-process runs for the demo configs of GFNet (stages I and III), MGNet,
Uni-AdaFocus-TSM and AdaFocusV2 (GFNet stage II and Uni-AdaFocus: test_family_reliability.py).

Resume: each config trains once uninterrupted (in this process, through ``tools/train.py``) while a
second run of it (a subprocess) is SIGKILLed right after a mid-epoch checkpoint; ``--resume`` then
continues it. The checkpoints written after the resume point hold the same state as the
uninterrupted run's, bitwise: weights, optimizer state, schedulers, the random generator states
(random patches of GFNet stage I, policy samples of stage III, MGNet's random glimpses in training,
frame sampling and patches of Uni-AdaFocus-TSM / AdaFocusV2) and, for MGNet, the exit thresholds
fitted during validation (``BudgetEvalHook(during_val=True)``), which the resumed run only has from
the checkpoint.

Two processes: ``tools/dist_train.sh`` trains each config with 2 gloo processes (the checkpoint holds
the random states of both ranks) and ``tools/dist_test.sh`` evaluates the uninterrupted run's final
checkpoint. Its metrics equal those of ``tools/test.py`` in one process (stated tolerance 1e-6;
outputs of both ranks are gathered, every validation sample counted once) and so do the exit
thresholds fitted for a budget (``--budget --fit-on val``: fitted on the gathered outputs of all 20
images, not on one rank's 10). A 2-process training run cannot be bitwise equal to a 1-process run:
BN statistics are per rank (4 instead of 8 samples) and each rank draws its own random patches.

The demo configs are changed by other work (pre-trained ``init_cfg``, data roots); the tests read
them, drop pre-trained weights (``init_cfg`` of type Pretrained, ``load_from``) and set the data
roots and the small schedule they need explicitly.
"""
import json
import os.path as osp
from typing import Dict, List

import pytest

from ...conftest import REPO, run_tool
from ...test_tools.test_train_tools import _free_port
from .test_exact_resume import KilledRun, assert_same_state, run_in_process

GFNET = 'configs/gfnet/gfnet-*_stage{}_*_demo-cls.py'  # renamed by ongoing work
MGNET = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'
TSM = 'configs/uniadafocus/uniadafocus-tsm_mn2-r18-tiny_1xb8-30e_demo-video.py'
ADAFOCUSV2 = 'configs/uniadafocus/adafocusv2_mn2-r18-tiny_1xb8-30e_demo-video.py'
TOLERANCE = 1e-6  # metrics of 1 and 2 test processes (accuracies of 20 samples are multiples of 5)


def _find(pattern: str) -> str:
    import glob
    found = sorted(glob.glob(osp.join(REPO, pattern)))
    assert len(found) == 1, f'{pattern}: {found}'
    return found[0]


def _drop_pretrained(node) -> None:
    """Remove ``init_cfg=dict(type='Pretrained', ...)`` everywhere in a model config."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _drop_pretrained(value)


def _dataset(loader: dict) -> dict:
    dataset = loader['dataset']
    while 'dataset' in dataset:  # dataset wrappers
        dataset = dataset['dataset']
    return dataset


def demo_config(config: str, out_dir: str, demo_root: str, task: str, **changes) -> str:
    """A copy of ``config`` without pre-trained weights, reading the tests' demo data (``task``:
    'cls' or 'video'), with top-level ``changes``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.merge_from_dict(changes)
    _drop_pretrained(cfg.model)
    cfg.load_from = None
    root = osp.join(demo_root, task)
    for split in ('train', 'val', 'test'):
        dataset = _dataset(cfg[f'{split}_dataloader'])
        name = 'train' if split == 'train' else 'val'
        if task == 'cls':
            dataset.update(data_root=root, data_prefix=name, ann_file='')
        else:
            dataset.update(ann_file=f'{root}/{name}_list.txt', data_prefix=dict(video=root))
    path = osp.join(out_dir, osp.basename(config))
    cfg.dump(path)
    return path


# 24 training samples, batch 8: 3 iterations per epoch, 2 epochs; a checkpoint every 2 iterations:
# iteration 4 is the first of epoch 2, the kill leaves 2 of its batches to the resumed run
def _schedule(epochs: int = 2, batch: int = 8, subset: int = 24) -> List[str]:
    return [f'train_dataloader.dataset.indices={subset}', f'train_dataloader.batch_size={batch}',
            f'train_cfg.max_epochs={epochs}', 'default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=-1',
            'default_hooks.checkpoint.save_best=None', 'default_hooks.logger.interval=1']


def _resume_matches(tmp_path, config: str, options: List[str], extra=()) -> str:
    """Uninterrupted run vs run killed after iter_4.pth and resumed: iter_6.pth (the last) holds the
    same state. Returns the uninterrupted run's final checkpoint."""
    full, cut = str(tmp_path / 'full'), str(tmp_path / 'cut')
    train = ['tools/train.py', config, *extra]
    killed = KilledRun(tmp_path, 'iter_4.pth', train + ['--work-dir', cut, '--cfg-options',
                                                        *options])
    run_in_process(train + ['--work-dir', full, '--cfg-options', *options])
    killed.wait()
    assert not osp.exists(osp.join(cut, 'iter_6.pth'))
    proc = run_tool(train + ['--work-dir', cut, '--resume', '--cfg-options', *options])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 4' in log and 'skipping its first 1 batches' in log, log[-3000:]
    assert_same_state(osp.join(full, 'iter_6.pth'), osp.join(cut, 'iter_6.pth'))
    return osp.join(full, 'iter_6.pth')


def _dist_train(tmp_path, config: str, options: List[str], metric: str) -> None:
    """2 gloo processes, 24 samples at 4 per rank: 3 iterations and a validation."""
    import torch
    work = str(tmp_path / 'dist_train')
    proc = run_tool(['tools/dist_train.sh', config, '2', '--work-dir', work, '--cfg-options',
                     *options], env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'GPU number: 2' in log and "backend='gloo'" in log and metric in log
    ckpt = torch.load(osp.join(work, 'iter_3.pth'), map_location='cpu', weights_only=False)
    assert len(ckpt['rng_states']) == 2  # both ranks' random states


def _test_metrics(tmp_path, config: str, ckpt: str, args=(), options=()) -> Dict[str, Dict]:
    """tools/test.py in one process and tools/dist_test.sh in two on the same checkpoint: the metrics
    (and budget reports, if any) of each."""
    results = {}
    for mode in ('single', 'dist'):
        out = str(tmp_path / f'test_{mode}')
        tail = [*args, '--work-dir', out] + (['--cfg-options', *options] if options else [])
        if mode == 'single':
            run_in_process(['tools/test.py', config, ckpt, *tail])
        else:
            run_tool(['tools/dist_test.sh', config, ckpt, '2', *tail], env=dict(PORT=_free_port()))
        with open(osp.join(out, 'metrics.json')) as f:
            results[mode] = dict(metrics=json.load(f))
        if osp.isfile(osp.join(out, 'budget.json')):
            with open(osp.join(out, 'budget.json')) as f:
                results[mode]['budget'] = json.load(f)
    return results


def _assert_close(a, b, where: str = '') -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_close(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f'{where}[{i}]')
    elif isinstance(a, float) or isinstance(b, float):
        assert (a is None and b is None) or abs(a - b) <= TOLERANCE, f'{where}: {a} vs {b}'
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
    single, dist = results['single'], results['dist']
    assert metric in single['metrics']
    assert len([k for k in single['metrics'] if k.startswith('anytime/')]) >= exits
    _assert_close(single['metrics'], dist['metrics'], 'metrics')
    if 'curve' in single.get('budget', {}):  # thresholds fitted for a budget
        budget = dist['budget']
        assert budget['fit_split'] == 'val' and budget['fit_num_samples'] == 20  # both ranks
        for key in ('exit_flops', 'anytime', 'curve', 'fit_num_samples'):
            _assert_close(single['budget'][key], budget[key], f'budget.{key}')


@pytest.mark.slow
@pytest.mark.parametrize('stage', [1, 3])
def test_gfnet_stage_resumes_bitwise_and_runs_on_two_processes(stage, demo_root, tmp_path):
    """Stage I (uniformly random patches, warm-up + cosine schedules) and stage III (patches sampled
    from the policy, cosine schedule), both with Adam; evaluated at the policy's mean action so that
    1 and 2 test processes see the same patches."""
    config = demo_config(_find(GFNET.format(stage)), str(tmp_path), demo_root, 'cls')
    final = _resume_matches(tmp_path, config, _schedule(), extra=['--no-validate'])
    _dist_train(tmp_path, config, _schedule(epochs=1, batch=4) + ['train_cfg.val_interval=1'],
                'accuracy/top1')
    results = _test_metrics(tmp_path, config, final,
                            ['--budget', _mid_budget(config), '--fit-on', 'val'],
                            ['model.test_locations=mean'])
    _check_test_agreement(results, 'accuracy/top1', exits=3)


@pytest.mark.slow
def test_mgnet_resumes_bitwise_with_fitted_thresholds(demo_root, tmp_path):
    """MGNet (random glimpse scales in training, warm-up + cosine schedules, AdamW) validating after
    epoch 1 with a BudgetEvalHook that fits exit thresholds: the killed run's thresholds come back
    from the checkpoint (the resumed run does not validate before its next checkpoints)."""
    budget = float(_mid_budget(osp.join(REPO, MGNET)))
    hook = dict(type='BudgetEvalHook', during_val=True, budgets=[budget], fit_on='val', plot=False)
    config = demo_config(MGNET, str(tmp_path), demo_root, 'cls', custom_hooks=[hook])
    options = _schedule() + ['train_cfg.val_interval=1', 'val_dataloader.dataset.indices=10']
    final = _resume_matches(tmp_path, config, options)
    import torch
    meta = torch.load(final, map_location='cpu', weights_only=False)['meta']
    assert len(meta['exit_policies']) == 1 and len(meta['exit_policies'][0]['thresholds']) == 4


@pytest.mark.slow
@pytest.mark.parametrize('name', ['tsm', 'adafocusv2'])
def test_video_demo_resumes_bitwise_and_runs_on_two_processes(name, demo_root, tmp_path):
    """Uni-AdaFocus-TSM (random glance/focus frame sampling and crops, random patches of the
    diversity branch, gradient clipping) and AdaFocusV2 (random patches of its second branch)."""
    config = demo_config({'tsm': TSM, 'adafocusv2': ADAFOCUSV2}[name], str(tmp_path), demo_root,
                         'video')
    final = _resume_matches(tmp_path, config, _schedule(), extra=['--no-validate'])
    _dist_train(tmp_path, config, _schedule(epochs=1, batch=4) + ['train_cfg.val_interval=1'],
                'acc/top1')
    results = _test_metrics(tmp_path, config, final)
    _check_test_agreement(results, 'acc/top1', exits=2 if name == 'tsm' else 1)
