# Copyright (c) mmdynamic contributors. All rights reserved.
"""The SAR demo configs of all four tasks train and evaluate through tools/train.py and tools/test.py,
with the framework's real metric (top-1, COCO mAP, mIoU) and the realised GMACs / densities logged."""
import json
import os.path as osp

import pytest

from ...conftest import run_tool

DEMOS = {
    'cls': ('configs/sar/sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py', 'accuracy/top1'),
    'faster-rcnn': ('configs/sar/sar-r50-g2s2a2b1-w16_faster-rcnn_fpn_1xb4-8e_demo-det.py',
                    'coco/bbox_mAP'),
    'retinanet': ('configs/sar/sar-r50-g2s2a2b1-w16_retinanet_fpn_1xb4-8e_demo-det.py',
                  'coco/bbox_mAP'),
    'deeplabv3': ('configs/sar/sar-r50-g2s4a1-w16_deeplabv3_1xb4-600i_demo-seg.py', 'mIoU'),
    'pspnet': ('configs/sar/sar-r50-g2s4a1-w16_pspnet_1xb4-600i_demo-seg.py', 'mIoU'),
}


def data_options(name: str, demo_root: str):
    if name == 'cls':
        root = osp.join(demo_root, 'cls')
        return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    if name in ('faster-rcnn', 'retinanet'):
        root = osp.join(demo_root, 'det') + '/'
        ann = root + 'annotations/instances_val.json'
        return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'model.test_cfg.score_thr=0.0'
            if name == 'retinanet' else 'model.test_cfg.rcnn.score_thr=0.0']
    root = osp.join(demo_root, 'seg')
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
        'param_scheduler.0.end=4']


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DEMOS))
def test_sar_demo_trains_and_tests(name, demo_root, tmp_path):
    config, metric = DEMOS[name]
    options = data_options(name, demo_root)
    work = tmp_path / 'work'
    proc = run_tool(['tools/train.py', config, '--work-dir', str(work), '--cfg-options', *options,
                     'default_hooks.logger.interval=1'])
    log = proc.stdout + proc.stderr
    assert 'loss_sparsity' in log and 'tau:' in log and 'SAR val:' in log
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'test'),
                     '--cfg-options', *options])
    assert 'SAR test:' in proc.stdout + proc.stderr
    with open(tmp_path / 'test' / 'metrics.json') as f:
        metrics = json.load(f)
    assert metric in metrics, metrics


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DEMOS))
def test_sar_demo_two_processes(name, demo_root, tmp_path):
    """tools/dist_train.sh and tools/dist_test.sh with 2 CPU processes (gloo): the SAR statistics and
    the metric are reduced over both ranks (every validation image is counted once)."""
    from ...test_tools.test_train_tools import _free_port
    config, metric = DEMOS[name]
    options = data_options(name, demo_root)
    work = tmp_path / 'dist'
    proc = run_tool(['tools/dist_train.sh', config, '2', '--work-dir', str(work), '--cfg-options',
                     *options], env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'GPU number: 2' in log and "backend='gloo'" in log
    assert 'SAR val:' in log and 'over 20 samples' in log  # 10 + 10 images from the two ranks
    assert metric in log
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    proc = run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir', str(tmp_path / 'test'),
                     '--cfg-options', *options], env=dict(PORT=_free_port()))
    assert 'SAR test:' in proc.stdout + proc.stderr and 'over 20 samples' in proc.stdout + proc.stderr
    with open(tmp_path / 'test' / 'metrics.json') as f:
        assert metric in json.load(f)


@pytest.mark.slow
def test_short_cls_training_reaches_the_target_density(tmp_path):
    """12 epochs on the demo classification set (400 images): the realised density of the masks in
    validation ends within 0.05 of the target 0.5."""
    import re

    from mmdynamic.datasets import make_demo_data
    root = make_demo_data(str(tmp_path / 'data'), tasks=('cls', ), num_train=400, num_val=100)['cls']
    config, _ = DEMOS['cls']
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    proc = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', *options], timeout=1200)
    lines = re.findall(r'SAR val: .*mask densities ([0-9., ]+)', proc.stdout + proc.stderr)
    assert lines, 'no SAR validation statistics logged'
    densities = [float(v) for v in lines[-1].split(',')]
    assert len(densities) == 10
    assert abs(sum(densities) / len(densities) - 0.5) <= 0.05, densities


SELECTIVITY_DEMO = 'configs/sar/sar-r50-g2s2a2b1-w16_crops-init-sgd_1xb32-6e_demo-cls.py'


def selectivity_demo_options(demo_root: str, *extra: str) -> list:
    """The selectivity demo on the small demo set, from scratch (no stand-in), for 2 epochs."""
    root = osp.join(demo_root, 'cls')
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
        'load_from=None', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', *extra]


@pytest.mark.slow
def test_selectivity_demo_recipe_runs(demo_root, tmp_path):
    """The selectivity demo (SGD, stage- and group-shared masks, bias-only sparsity gradient, the
    network held during the target ramp and the generators' weights after it, the density fitted
    after training) through tools/train.py, from scratch on the small demo set: only the 3 stage
    generators (5 tensors each) learn while the network is held, then all but their weights, and
    the calibration runs once, after the last iteration, fitting every stage's mask to the target
    on the training images."""
    import re
    proc = run_tool(['tools/train.py', SELECTIVITY_DEMO, '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', *selectivity_demo_options(demo_root)])
    log = proc.stdout + proc.stderr
    assert 'WarmupFreezeHook: 15 of' in log
    # then the generators' weights stop: conv, BN weight and bias, 1x1 weight of 3 generators
    assert 'WarmupFreezeHook: 12 parameters held after 30% of training' in log
    found = re.findall(r'SAR density calibration to 0.5: .* training data ([0-9.>, -]+)', log)
    assert len(found) == 1
    afters = [float(pair.split('->')[1]) for pair in found[0].split(', ')]
    assert len(afters) == 3 and all(abs(a - 0.5) <= 0.05 for a in afters), afters


@pytest.mark.slow
def test_selectivity_demo_recipe_two_processes(demo_root, tmp_path):
    """The same recipe with tools/dist_train.sh and 2 gloo processes, the network held for the
    whole run and no weight decay: under DDP the held parameters do not move from epoch 1 to
    epoch 2 (the freeze hook's zeroed gradients are what DDP reduces), the mask generators do, and
    the calibration runs once."""
    import re

    import torch
    from mmengine.runner import CheckpointLoader

    from ...test_tools.test_train_tools import _free_port
    options = selectivity_demo_options(demo_root, 'default_hooks.checkpoint.interval=1',
                                       'custom_hooks.1.until=1.0',
                                       'optim_wrapper.optimizer.weight_decay=0')
    work = tmp_path / 'dist'
    proc = run_tool(['tools/dist_train.sh', SELECTIVITY_DEMO, '2', '--work-dir', str(work),
                     '--cfg-options', *options], env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'GPU number: 2' in log and 'WarmupFreezeHook: 15 of' in log
    assert len(re.findall(r'SAR density calibration to 0.5', log)) == 1
    first, last = (CheckpointLoader.load_checkpoint(str(work / f'epoch_{e}.pth'),
                                                    map_location='cpu')['state_dict']
                   for e in (1, 2))
    weights = [k for k, v in first.items() if k.endswith('.weight') and v.is_floating_point()]
    held = [k for k in weights if '.masks.' not in k]
    masks = [k for k in weights if '.masks.' in k]
    assert len(held) > 100 and len(masks) == 9  # conv, BN and 1x1 weights of 3 generators
    assert all(torch.equal(first[k], last[k]) for k in held)
    assert any(not torch.equal(first[k], last[k]) for k in masks)
