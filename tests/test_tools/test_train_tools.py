# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/train.py, tools/test.py and tools/dist_*.sh end to end on the toy classifier."""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from ..conftest import REPO, run_tool
from ..test_downstream.test_downstream import config_with_data_root

CONFIG = 'toy_mmpretrain.py'


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _weights(path: str):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def _train_args(config, work_dir, max_iters, interval):
    return ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
            f'default_hooks.checkpoint.interval={interval}', 'default_hooks.logger.interval=10']


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(demo_root, tmp_path):
    config = config_with_data_root(CONFIG, osp.join(demo_root, 'cls'), str(tmp_path))
    max_iters, interval = 120, 10
    full_dir, cut_dir = str(tmp_path / 'full'), str(tmp_path / 'cut')
    run_tool(_train_args(config, full_dir, max_iters, interval))

    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable] + _train_args(config, cut_dir, max_iters, interval),
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not glob.glob(osp.join(cut_dir, 'iter_20.pth')) and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before it could be interrupted'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not osp.isfile(osp.join(cut_dir, f'iter_{max_iters}.pth')), 'killed too late'
    killed_at = max(int(osp.basename(p)[5:-4]) for p in glob.glob(osp.join(cut_dir, 'iter_*.pth')))

    proc = run_tool(_train_args(config, cut_dir, max_iters, interval) + ['--resume'])
    assert f'resumed epoch: 0, iter: {killed_at}' in proc.stdout + proc.stderr
    final_full = _weights(osp.join(full_dir, f'iter_{max_iters}.pth'))
    final_cut = _weights(osp.join(cut_dir, f'iter_{max_iters}.pth'))
    for key, value in final_full.items():
        assert torch.equal(value, final_cut[key]), key


_KILL_DURING_SAVE = """
import os, runpy, signal, sys
real_fsync = os.fsync


def fsync(fd):  # the checkpoint's bytes are written, not yet renamed: cut the file and die
    if 'iter_40.pth.tmp' in os.readlink(f'/proc/self/fd/{fd}'):
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)


os.fsync = fsync
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.slow
@pytest.mark.skipif(not osp.isdir('/proc/self/fd'), reason='needs /proc to find the file being saved')
def test_kill_during_checkpoint_save_keeps_a_resumable_run(demo_root, tmp_path):
    """A run killed while writing a checkpoint leaves no truncated file under a checkpoint name;
    --resume continues from the previous checkpoint and ends bitwise equal to an uninterrupted run.
    A torn ``last_checkpoint`` pointer (naming a truncated file) is detected as well."""
    from mmdynamic.utils.run_config import find_resumable_checkpoint, is_complete_checkpoint
    config = config_with_data_root(CONFIG, osp.join(demo_root, 'cls'), str(tmp_path))
    max_iters, interval = 60, 10
    full_dir, cut_dir = str(tmp_path / 'full'), str(tmp_path / 'cut')
    run_tool(_train_args(config, full_dir, max_iters, interval))
    script = tmp_path / 'kill_during_save.py'
    script.write_text(_KILL_DURING_SAVE)
    proc = run_tool([str(script)] + _train_args(config, cut_dir, max_iters, interval), check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not osp.exists(osp.join(cut_dir, 'iter_40.pth'))
    assert glob.glob(osp.join(cut_dir, '.iter_40.pth.tmp-*')), 'the kill did not hit the save'
    assert find_resumable_checkpoint(cut_dir) == osp.join(cut_dir, 'iter_30.pth')

    # a pointer naming a truncated file (as a non-atomic writer would leave): the newest complete
    # checkpoint is taken instead
    with open(osp.join(cut_dir, 'iter_30.pth'), 'rb') as f:
        data = f.read()
    broken = osp.join(cut_dir, 'broken.pth')
    with open(broken, 'wb') as f:
        f.write(data[:len(data) // 2])
    assert not is_complete_checkpoint(broken)
    with open(osp.join(cut_dir, 'last_checkpoint'), 'w') as f:
        f.write(broken)
    assert find_resumable_checkpoint(cut_dir) == osp.join(cut_dir, 'iter_30.pth')
    os.remove(broken)

    proc = run_tool(_train_args(config, cut_dir, max_iters, interval) + ['--resume'])
    assert 'resumed epoch: 0, iter: 30' in proc.stdout + proc.stderr
    final_full = _weights(osp.join(full_dir, f'iter_{max_iters}.pth'))
    final_cut = _weights(osp.join(cut_dir, f'iter_{max_iters}.pth'))
    for key, value in final_full.items():
        assert torch.equal(value, final_cut[key]), key


@pytest.mark.slow
def test_dist_train_and_test_two_cpu_processes(demo_root, tmp_path):
    config = config_with_data_root(CONFIG, osp.join(demo_root, 'cls'), str(tmp_path))
    work_dir = str(tmp_path / 'dist')
    proc = run_tool(['tools/dist_train.sh', config, '2', '--work-dir', work_dir, '--cfg-options',
                     'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                     'default_hooks.checkpoint.interval=4'],
                    env=dict(PORT=_free_port()))
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's wording for the world size
    assert "backend='gloo'" in log
    assert 'accuracy/top1' in log
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)
    # the random states of both ranks, gathered before rank 0 writes the checkpoint
    assert len(torch.load(ckpt, map_location='cpu', weights_only=False)['rng_states']) == 2
    run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir', str(tmp_path / 'eval')],
             env=dict(PORT=_free_port()))
    with open(tmp_path / 'eval' / 'metrics.json') as f:
        assert 'accuracy/top1' in json.load(f)


def test_tools_report_bad_input(tmp_path, demo_root):
    proc = run_tool(['tools/train.py', str(tmp_path / 'missing.py')], check=False)
    assert proc.returncode != 0 and 'config file not found' in proc.stderr
    config = config_with_data_root(CONFIG, osp.join(demo_root, 'cls'), str(tmp_path))
    proc = run_tool(['tools/test.py', config, str(tmp_path / 'nope.pth')], check=False)
    assert proc.returncode != 0 and 'checkpoint not found' in proc.stderr
    proc = run_tool(['tools/train.py', config, '--amp'], check=False)
    assert proc.returncode != 0 and '--amp needs a CUDA GPU' in proc.stderr
    # the tools add the label check and the checkpoint check
    proc = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                     'model.head.num_classes=5'], check=False)
    assert proc.returncode != 0
    assert 'has class label 5, outside [0, 5) for a model with 5 classes' in proc.stderr
    ckpt = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=dict(fc=torch.zeros(2))), ckpt)
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 't')], check=False)
    assert proc.returncode != 0 and 'does not fit the model ImageClassifier' in proc.stderr
    assert '1 of its weights are not in the model (fc)' in proc.stderr


def _demo_stamps(root):
    """The generation arguments of each demo set under ``root``."""
    stamps = {}
    for task in ('cls', 'video', 'det', 'seg'):
        with open(osp.join(root, task, '.complete'), encoding='utf-8') as f:
            stamps[task] = f.read()
    return stamps


@pytest.mark.slow
def test_demo_command_end_to_end(demo_root, tmp_path):
    """The README's demo job (one epoch here): trains and evaluates, printing where things are. It uses
    the detection set that is there and leaves the other demo sets alone."""
    stamps = _demo_stamps(demo_root)
    proc = run_tool(['tools/misc/demo.py', '--data-root', demo_root, '--work-dir',
                     str(tmp_path / 'demo'), '--cfg-options', 'train_cfg.max_epochs=1',
                     'train_cfg.val_interval=1'], timeout=900)
    out = proc.stdout
    assert 'mmdynamic demo finished' in out and 'coco/bbox_mAP' in out
    assert osp.isfile(tmp_path / 'demo' / 'test' / 'metrics.json')
    assert 'SAR test:' in proc.stdout + proc.stderr  # realised GMACs and mask densities logged
    assert _demo_stamps(demo_root) == stamps
