# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/misc/gpu_check.sh where no GPU is usable: it says why and exits 0 with nothing done."""
import os
import shutil
import subprocess
import sys

from ..conftest import REPO

SCRIPT = os.path.join(REPO, 'tools', 'misc', 'gpu_check.sh')


def _run(env, report):
    return subprocess.run([shutil.which('bash'), SCRIPT, str(report)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_nvidia_smi_nothing_is_done(tmp_path):
    bin_dir = tmp_path / 'bin'  # the commands the script needs before its GPU check, nothing else
    bin_dir.mkdir()
    for tool in ('dirname', 'date'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    report = tmp_path / 'out' / 'gpu_check.md'
    proc = _run(dict(PATH=str(bin_dir), HOME=str(tmp_path)), report)
    assert proc.returncode == 0, proc.stderr
    assert 'gpu_check: no GPU here (nvidia-smi not found); nothing done.' in proc.stdout
    assert not (tmp_path / 'out').exists()


def test_gpu_listed_but_not_seen_by_torch_nothing_is_done(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    fake = bin_dir / 'nvidia-smi'
    fake.write_text('#!/bin/sh\necho "NVIDIA Fake GPU, 81559 MiB, 555.55"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
               MMDYN_PYTHON=sys.executable, CUDA_VISIBLE_DEVICES='')
    env.pop('OUT', None)
    report = tmp_path / 'out' / 'gpu_check.md'
    proc = _run(env, report)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'sees no CUDA GPU); nothing done.' in proc.stdout
    assert not report.exists()
