# Copyright (c) mmdynamic contributors. All rights reserved.
"""Fixes for known breakages of the pinned OpenMMLab stack on current torch.

Each fix is small, idempotent, never edits installed files and has its own test
(``tests/test_utils/test_compat.py``). :func:`apply_runtime_patches` runs all process-wide fixes; it is
called when :mod:`mmdynamic` is imported, so ``custom_imports=dict(imports=['mmdynamic.models'])`` in a
config is enough to get them in any framework's own tools.

1. :func:`ensure_mmaction_importable`: the mmaction2 1.2.0 wheel lacks
   ``mmaction/models/localizers/drn/`` although ``mmaction.models.localizers`` imports it, so
   ``import mmaction.models`` fails. A placeholder module takes its place in ``sys.modules``; every other
   part of mmaction2 then imports, and only DRN itself is unavailable (it raises when built).
2. :func:`allow_mmengine_checkpoint_types`: torch >= 2.6 loads with ``weights_only=True``, which MMEngine
   0.10.7 does not expect, so ``resume=True`` fails on the message-hub buffers and numpy values that
   MMEngine itself stores. Exactly those types are allowed; any other pickled object is still refused.
3. :func:`setup_cpu_distributed`: MMEngine 0.10.7 always calls ``torch.cuda.set_device`` when it starts a
   distributed run, and gives DDP ``device_ids=[LOCAL_RANK]``. Without a GPU the process group is started
   here with the ``gloo`` backend and DDP gets ``device_ids=None``. With GPUs nothing changes.
4. :func:`make_local_writes_atomic`: MMEngine writes checkpoints (and every other file of its local
   file backend) in place, so a run killed while saving leaves a truncated file under the final name,
   which ``--resume`` then fails to load. Writes go to a temporary file in the same folder, are
   flushed to disk and renamed over the target (``os.replace``, atomic on POSIX and Windows): a reader
   sees the old file or the complete new one, never a part.
"""
import importlib.util
import os
import os.path as osp
import sys
import types
import warnings
from typing import List, Optional

import torch

_PATCHED = False


# ----------------------------------------------------------------------------------------------
# 1. mmaction2 1.2.0: missing DRN subpackage
# ----------------------------------------------------------------------------------------------
_DRN_PACKAGE = 'mmaction.models.localizers.drn'


class _MissingDRN:
    """Stands in for ``mmaction.models.localizers.drn.drn.DRN``, which the wheel does not ship."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError('DRN is not available: the mmaction2 1.2.0 distribution does not ship '
                          'mmaction/models/localizers/drn/ (mmaction2 issue #2714). Install mmaction2 '
                          'from a source checkout to use DRN.')


def _mmaction_lacks_drn() -> bool:
    """Whether the installed mmaction2 imports a DRN package that is not on disk.

    Looks at files only: importing ``mmaction.models`` to find out would fail on the very problem.
    """
    from .frameworks import is_framework_available
    if not is_framework_available('mmaction'):
        return False
    spec = importlib.util.find_spec('mmaction')
    if not spec.submodule_search_locations:
        return False
    for root in spec.submodule_search_locations:
        localizers = osp.join(root, 'models', 'localizers')
        init = osp.join(localizers, '__init__.py')
        if not osp.isfile(init):
            continue
        with open(init, encoding='utf-8') as f:
            imports_drn = 'drn' in f.read()
        return imports_drn and not osp.isfile(osp.join(localizers, 'drn', 'drn.py'))
    return False


def ensure_mmaction_importable() -> bool:
    """Make ``import mmaction.models`` work with the mmaction2 1.2.0 wheel.

    Returns:
        bool: True if the placeholder modules were (or already are) installed, False if mmaction2 is
        not installed or does not need them.
    """
    installed = sys.modules.get(_DRN_PACKAGE + '.drn')
    if installed is not None:
        return getattr(installed, 'DRN', None) is _MissingDRN
    if not _mmaction_lacks_drn():
        return False
    package = types.ModuleType(_DRN_PACKAGE)
    package.__path__ = []  # a namespace-less package: nothing else can be imported from it
    package.__doc__ = 'Placeholder installed by mmdynamic.utils.compat (missing from the wheel).'
    module = types.ModuleType(_DRN_PACKAGE + '.drn')
    module.DRN = _MissingDRN
    package.drn = module
    package.DRN = _MissingDRN
    sys.modules[_DRN_PACKAGE] = package
    sys.modules[_DRN_PACKAGE + '.drn'] = module
    return True


# ----------------------------------------------------------------------------------------------
# 2. torch >= 2.6 weights_only loading of MMEngine checkpoints
# ----------------------------------------------------------------------------------------------
def mmengine_checkpoint_types() -> List[type]:
    """The non-tensor types that MMEngine 0.10.7 writes into its checkpoints.

    The message hub stores :class:`HistoryBuffer` objects (whose state is numpy arrays and the buffer's
    statistics methods) and numpy scalars (e.g. a metric value); numpy needs its array reconstructor,
    ``dtype`` and the dtype classes. The list was taken from
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints written by MMEngine runners.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    # ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``, so
    # ``getattr`` must be allowed too. The weights-only unpickler still refuses to *call* anything
    # that is not allowed, so this only lets a checkpoint name attributes of allowed objects.
    allowed: List = [HistoryBuffer, getattr, _reconstruct, scalar, np.ndarray, np.dtype]
    dtype_classes = getattr(np, 'dtypes', None)
    if dtype_classes is not None:
        allowed += [
            getattr(dtype_classes, name) for name in dir(dtype_classes)
            if name.endswith('DType') and isinstance(getattr(dtype_classes, name), type)
        ]
    return allowed


def allow_mmengine_checkpoint_types() -> bool:
    """Let ``torch.load(weights_only=True)`` read checkpoints written by MMEngine.

    Returns:
        bool: True if torch has a safe-globals list (torch >= 2.4) and it was extended.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return False
    add_safe_globals(mmengine_checkpoint_types())
    return True


# ----------------------------------------------------------------------------------------------
# 3. Distributed runs without a GPU
# ----------------------------------------------------------------------------------------------
def setup_cpu_distributed(cfg, launcher: Optional[str] = None) -> bool:
    """Prepare a config and the process group for a distributed run on CPU (gloo).

    Call it before building the :class:`~mmengine.runner.Runner`. It does nothing when the run is not
    distributed or when CUDA is available (NCCL, MMEngine's own set-up, unchanged).

    Args:
        cfg (Config): The run's config; ``model_wrapper_cfg`` and ``env_cfg.dist_cfg`` are completed.
        launcher (str, optional): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``. Defaults to
            ``cfg.launcher``.

    Returns:
        bool: True if the run was set up for gloo on CPU.
    """
    launcher = launcher or cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher={launcher!r} without a GPU is not supported; use '
                           "tools/dist_train.sh (torchrun, launcher='pytorch') for CPU runs.")
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'launcher=pytorch needs the environment variable {var}; start the '
                               'run with torchrun (tools/dist_train.sh).')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    if wrapper.get('type', 'MMDistributedDataParallel') in ('MMDistributedDataParallel',
                                                             'mmengine.MMDistributedDataParallel'):
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    return True


# ----------------------------------------------------------------------------------------------
# 4. Atomic checkpoint (and other local file) writes
# ----------------------------------------------------------------------------------------------
def atomic_write(data, filepath: str, mode: str = 'wb', encoding: Optional[str] = None) -> None:
    """Write ``data`` to ``filepath`` atomically: a temporary file beside it, fsync, rename.

    Args:
        data (bytes | str): The content.
        filepath (str): The target; its folder is created if missing.
        mode (str): 'wb' or 'w'.
        encoding (str, optional): Text encoding for mode 'w'.
    """
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(filepath)}.tmp-{os.getpid()}')
    try:
        with open(tmp, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def make_local_writes_atomic() -> bool:
    """Route MMEngine's ``LocalBackend.put`` / ``put_text`` through :func:`atomic_write`."""
    from mmengine.fileio.backends.local_backend import LocalBackend
    if getattr(LocalBackend.put, '_mmdynamic_atomic', False):
        return False

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, filepath, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, 'w', encoding=encoding)

    put.__doc__ = LocalBackend.put.__doc__
    put_text.__doc__ = LocalBackend.put_text.__doc__
    put._mmdynamic_atomic = put_text._mmdynamic_atomic = True
    LocalBackend.put, LocalBackend.put_text = put, put_text
    return True


# ----------------------------------------------------------------------------------------------
def apply_runtime_patches() -> None:
    """Apply the process-wide fixes (1, 2 and 4). Cheap and idempotent."""
    global _PATCHED
    if _PATCHED:
        return
    ensure_mmaction_importable()
    allow_mmengine_checkpoint_types()
    make_local_writes_atomic()
    warnings.filterwarnings('ignore', category=FutureWarning, module=r'mmengine\..*')
    _PATCHED = True
