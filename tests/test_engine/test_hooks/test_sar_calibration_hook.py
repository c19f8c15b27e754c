# Copyright (c) mmdynamic contributors. All rights reserved.
"""SARDensityCalibrationHook: the test-time mask density fitted at the end of real training runs
(one process and two gloo processes), before the last checkpoint is written."""
import os.path as osp
import re
import types

import pytest
import torch.nn as nn

from mmdynamic.engine.hooks import SARDensityCalibrationHook

from ...conftest import REPO, run_tool

DEMO = osp.join(REPO, 'configs/sar/sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py')


def test_hook_checks_its_options_and_the_model():
    with pytest.raises(ValueError, match=r'target density must be in \[0, 1\], got 2'):
        SARDensityCalibrationHook(target=2)
    with pytest.raises(ValueError, match='max_batches must be a positive int'):
        SARDensityCalibrationHook(max_batches=0)
    runner = types.SimpleNamespace(model=nn.Linear(2, 2))
    with pytest.raises(TypeError, match='SARDensityCalibrationHook needs a SAR task model'):
        SARDensityCalibrationHook().before_train(runner)


def _config(tmp_path) -> str:
    path = tmp_path / 'calibrated.py'
    path.write_text(f"_base_ = ['{DEMO}']\n"
                    'custom_hooks = [\n'
                    "    dict(type='SARScheduleHook', tau_start=1.0, tau_end=0.1, "
                    'target_begin=0.1, target_end=0.3),\n'
                    "    dict(type='SARDensityCalibrationHook'),\n"
                    ']\n')
    return str(path)


def _options(demo_root):
    root = osp.join(demo_root, 'cls')
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']


def _densities(pattern: str, log: str):
    lines = re.findall(pattern + r' .*mask densities ([0-9., ]+)', log)
    assert lines, f'no {pattern} statistics in the log'
    return [float(v) for v in lines[-1].split(',')]


def _calibration(log: str):
    found = re.findall(r'SAR density calibration to 0.5: .* training data ([0-9.>, -]+)', log)
    assert len(found) == 1, 'the hook must calibrate once, after the last iteration'
    return [tuple(float(v) for v in pair.split('->')) for pair in found[0].split(', ')]


def _test_densities(config, ckpt, options, work_dir):
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', work_dir, '--cfg-options',
                     *options])
    return _densities('SAR test:', proc.stdout + proc.stderr)


@pytest.mark.slow
def test_calibration_runs_before_the_last_checkpoint(demo_root, tmp_path):
    """One epoch of the demo (the target ramps 1 -> 0.5 within it): the hook brings every mask's
    test-time density on the training images to the target, the final validation and the last
    checkpoint use the calibrated biases (tools/test.py on the checkpoint logs the same densities
    as the final validation: the same images)."""
    config, options = _config(tmp_path), _options(demo_root)
    work = tmp_path / 'work'
    proc = run_tool(['tools/train.py', config, '--work-dir', str(work), '--cfg-options', *options])
    log = proc.stdout + proc.stderr
    pairs = _calibration(log)
    assert len(pairs) == 10
    assert all(after == pytest.approx(0.5, abs=0.05) for _, after in pairs), pairs
    assert any(abs(before - after) > 0.02 for before, after in pairs), pairs  # it did something
    assert log.index('SAR density calibration') < log.index('Saving checkpoint at 1 epochs')
    val = _densities('SAR val:', log)
    assert abs(sum(val) / len(val) - 0.5) < 0.1, val  # other images than the calibration's
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    assert _test_densities(config, ckpt, options, str(tmp_path / 'test')) == val


@pytest.mark.slow
def test_calibration_with_two_processes(demo_root, tmp_path):
    """tools/dist_train.sh with 2 gloo processes: each rank calibrates on its half of the training
    set and the thresholds are fitted on the cells of both (same shifts on both ranks: see
    test_sar_calibration.py); the saved checkpoint tests near the target."""
    from ...test_tools.test_train_tools import _free_port
    config, options = _config(tmp_path), _options(demo_root)
    work = tmp_path / 'dist'
    proc = run_tool(['tools/dist_train.sh', config, '2', '--work-dir', str(work), '--cfg-options',
                     *options], env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'GPU number: 2' in log
    pairs = _calibration(log)  # logged by rank 0 only
    assert all(after == pytest.approx(0.5, abs=0.05) for _, after in pairs), pairs
    with open(work / 'last_checkpoint') as f:
        ckpt = f.read().strip()
    test = _test_densities(config, ckpt, options, str(tmp_path / 'test'))
    assert abs(sum(test) / len(test) - 0.5) < 0.1, test
