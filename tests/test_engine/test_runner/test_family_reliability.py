# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume and 2-process runs for the demo configs of the dynamic families.

- GFNet stage II (PPO: random actions, the policy's Adam state; the returns are normalised per
  batch, no running statistics) and Uni-AdaFocus (random glance frames, random patches of the
  diversity branch), killed right after a mid-epoch checkpoint and resumed: the same training state
  as the uninterrupted run, bitwise (weights, optimizer, schedulers, random states).
- GFNet stage II, MGNet and Uni-AdaFocus with ``tools/dist_train.sh`` / ``tools/dist_test.sh`` and
  2 gloo processes, checkpoints included (the random states of both ranks are gathered before rank 0
  writes), and the budget evaluation's thresholds fitted on the outputs of both ranks.
"""
import json
import os.path as osp

import pytest

from ...conftest import run_tool
from ...test_tools.test_train_tools import _free_port
from ...test_tools.test_uniadafocus_tools import _config_on
from .test_demo_resume_dist import GFNET, demo_config, find_config
from .test_exact_resume import resume_matches

MGNET = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'


def _cls_data(demo_root):
    root = osp.join(demo_root, 'cls')
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]


def _gfnet_stage2(demo_root, tmp_path) -> str:
    # the demo data; no stand-in pre-training, no stage-I checkpoint
    return demo_config(find_config(GFNET.format(2)), str(tmp_path), demo_root, 'cls')


def _gfnet_options(epochs=2):
    # 40 images, batch 8: 5 iterations per epoch
    return ['train_dataloader.batch_size=8', f'train_cfg.max_epochs={epochs}',
            'train_cfg.val_interval=1', 'param_scheduler=[]',
            'default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.max_keep_ckpts=-1']


@pytest.mark.slow
def test_gfnet_ppo_stage_resumes_bitwise(demo_root, tmp_path):
    # iteration 6 is the first of epoch 2
    resume_matches(tmp_path, _gfnet_stage2(demo_root, tmp_path), _gfnet_options(), 'iter_6.pth',
                   'resumed epoch: 1, iter: 6', ['iter_8.pth', 'iter_10.pth'])


@pytest.mark.slow
def test_uniadafocus_resumes_bitwise(demo_root, tmp_path):
    config = _config_on(demo_root, str(tmp_path))
    # 40 videos, batch 8: 5 iterations per epoch
    options = ['train_cfg.max_epochs=2', 'default_hooks.checkpoint.by_epoch=False',
               'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=-1',
               'train_dataloader.batch_size=8']
    resume_matches(tmp_path, config, options, 'iter_6.pth', 'resumed epoch: 1, iter: 6',
                   ['iter_8.pth', 'iter_10.pth'])


def _dist(tmp_path, config, options, metric, test_args=()):
    work = str(tmp_path / 'dist')
    proc = run_tool(['tools/dist_train.sh', config, '2', '--work-dir', work, '--cfg-options',
                     *options], env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'GPU number: 2' in log and "backend='gloo'" in log and metric in log
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    out = str(tmp_path / 'test')
    run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir', out, *test_args,
              '--cfg-options', *options], env=dict(PORT=_free_port()))
    with open(osp.join(out, 'metrics.json')) as f:
        assert metric in json.load(f)
    return out


@pytest.mark.slow
def test_gfnet_ppo_stage_two_processes(demo_root, tmp_path):
    # several PPO epochs per rollout run in GFNet.train_step, which DDP bypasses: the official one
    _dist(tmp_path, _gfnet_stage2(demo_root, tmp_path), _gfnet_options(epochs=1) + ['model.ppo.epochs=1'],
          'accuracy/top1')


@pytest.mark.slow
def test_mgnet_two_processes_with_budget(demo_root, tmp_path):
    options = _cls_data(demo_root) + [
        'model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1']
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmdynamic.models  # noqa: F401
    cfg = Config.fromfile(MGNET)
    cfg.merge_from_dict({k: int(v) for k, v in (o.split('=', 1) for o in options[3:5])})
    init_default_scope('mmpretrain')
    costs = MODELS.build(cfg.model).exit_macs((3, 128, 128))
    budget = f'{(costs[0] + costs[1]) / 2e9:.6g}'
    out = _dist(tmp_path, MGNET, options, 'accuracy/top1', ['--budget', budget, '--fit-on', 'val'])
    with open(osp.join(out, 'budget.json')) as f:
        report = json.load(f)
    # thresholds fitted on all 20 validation images, gathered from both ranks
    assert report['fit_split'] == 'val' and report['fit_num_samples'] == 20


@pytest.mark.slow
def test_uniadafocus_two_processes(demo_root, tmp_path):
    config = _config_on(demo_root, str(tmp_path))
    _dist(tmp_path, config, ['train_dataloader.batch_size=4'], 'acc/top1')
