# Copyright (c) mmdynamic contributors. All rights reserved.
import io
import os
import subprocess
import sys

import pytest
import torch

import mmdynamic  # noqa: F401
from mmdynamic.utils import compat


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


def test_mmaction_models_import_needs_the_shim():
    """Without mmdynamic the wheel's mmaction.models is broken; after importing it, it works."""
    broken = _run_python('import mmaction.models')
    assert broken.returncode != 0 and 'mmaction.models.localizers.drn' in broken.stderr, \
        'mmaction2 imports without the shim: the workaround may no longer be needed'
    fixed = _run_python('import mmdynamic, mmaction.models; '
                        'from mmaction.registry import MODELS; '
                        'assert MODELS.get("Recognizer2D") is not None; '
                        'from mmaction.models.localizers.drn.drn import DRN; '
                        'import sys\n'
                        'try:\n    DRN()\nexcept ImportError as e:\n    print("DRN:", e)')
    assert fixed.returncode == 0, fixed.stderr
    assert 'DRN: DRN is not available' in fixed.stdout


def test_shim_is_idempotent():
    assert compat.ensure_mmaction_importable()
    assert compat.ensure_mmaction_importable()


def _mmengine_like_checkpoint() -> bytes:
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/acc', np.float64(0.25))
    hub.update_info('best_score', np.float32(0.9))
    ckpt = dict(meta=dict(epoch=1, iter=3, seed=np.int64(7)), state_dict={'w': torch.ones(2)},
                message_hub=hub.state_dict(), scores=np.arange(4.0))
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


class _NotAllowed:
    pass


def test_weights_only_allows_mmengine_types_only():
    data = _mmengine_like_checkpoint()
    loaded = torch.load(io.BytesIO(data), weights_only=True)
    assert loaded['meta']['iter'] == 3
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5
    buf = io.BytesIO()
    torch.save({'evil': _NotAllowed()}, buf)
    with pytest.raises(Exception, match='Unsupported global|weights_only'):
        torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


def test_setup_cpu_distributed_noop_and_checks(monkeypatch):
    from mmengine.config import Config
    cfg = Config(dict(launcher='none'))
    assert compat.setup_cpu_distributed(cfg) is False
    cfg = Config(dict(launcher='slurm'))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='without a GPU is not supported'):
        compat.setup_cpu_distributed(cfg)
    cfg = Config(dict(launcher='pytorch'))
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match='needs the environment variable RANK'):
        compat.setup_cpu_distributed(cfg)


def test_setup_cpu_distributed_single_process_group(monkeypatch, tmp_path):
    """A world of one: the config is completed for gloo and DDP without device ids."""
    import torch.distributed as dist
    from mmengine.config import Config
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    env = dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(29000 + os.getpid() % 1000))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        assert compat.setup_cpu_distributed(cfg)
        assert dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.model_wrapper_cfg.broadcast_buffers is False
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_local_backend_writes_are_atomic(tmp_path):
    """MMEngine's local file backend (checkpoints, last_checkpoint-like text files) writes through
    a temporary file: a failure while writing leaves the previous file untouched and no leftovers."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    import mmdynamic  # noqa: F401  (applies the patches)
    from mmdynamic.utils import compat
    backend = LocalBackend()
    target = tmp_path / 'sub' / 'epoch_1.pth'
    backend.put(b'old bytes', target)
    assert target.read_bytes() == b'old bytes'

    real_fsync = compat.os.fsync

    def failing_fsync(fd):
        raise OSError('disk full')

    compat.os.fsync = failing_fsync
    try:
        with pytest.raises(OSError, match='disk full'):
            backend.put(b'new bytes that never land', target)
    finally:
        compat.os.fsync = real_fsync
    assert target.read_bytes() == b'old bytes'
    assert sorted(p.name for p in target.parent.iterdir()) == ['epoch_1.pth']
    backend.put_text('text', tmp_path / 'note.txt')
    assert (tmp_path / 'note.txt').read_text() == 'text'
    assert compat.make_local_writes_atomic() is False  # idempotent


def test_log_processor_keeps_anytime_metrics_unaveraged():
    """MMEngine averages log keys matching 'time'; the tools' pattern leaves 'anytime/...' alone."""
    import re

    from mmengine.config import Config

    from mmdynamic.utils.run_config import MEAN_PATTERN, keep_exit_metrics_unaveraged
    cfg = Config(dict(log_processor=dict(window_size=10)))
    keep_exit_metrics_unaveraged(cfg)
    pattern = cfg.log_processor['mean_pattern']
    assert pattern == MEAN_PATTERN and cfg.log_processor['window_size'] == 10
    for key in ('loss', 'loss_cls', 'time', 'data_time', 'grad_norm'):
        assert re.search(pattern, key), key
    assert not re.search(pattern, 'anytime/top1_exit3')
    own = Config(dict(log_processor=dict(mean_pattern='x')))
    keep_exit_metrics_unaveraged(own)
    assert own.log_processor['mean_pattern'] == 'x'
