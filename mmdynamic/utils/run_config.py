# Copyright (c) mmdynamic contributors. All rights reserved.
"""Config handling shared by ``tools/train.py`` and ``tools/test.py`` for all four frameworks."""
import argparse
import copy
import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from .compat import setup_cpu_distributed
from .frameworks import FRAMEWORKS, require_framework

MMDYNAMIC_IMPORT = 'mmdynamic.models'


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags that both tools take, spelled as in mmdet and mmpretrain."""
    parser.add_argument('--work-dir', help='the folder for logs, checkpoints and results')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. "train_cfg.max_epochs=3 model.backbone.depth=18"')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher (tools/dist_*.sh pass "pytorch")')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU only)')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank; torchrun sets env.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def check_framework(cfg: Config) -> None:
    """Fail early, naming the package, when the config's framework is not installed."""
    scope = cfg.get('default_scope')
    if scope in FRAMEWORKS:
        require_framework(scope, f'This config (default_scope={scope!r})')


def load_tool_config(path: str, cfg_options: Optional[dict] = None,
                     default_scope: str = 'mmengine') -> Config:
    """Read a config for an analysis tool: the file must exist, its framework must be installed,
    ``cfg_options`` are merged, the modules of its ``custom_imports`` are imported (as the runner
    does, so that a tool builds the same model as ``tools/train.py``) and the config's default
    scope (or ``default_scope``) is initialised.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): ``--cfg-options`` to merge.
        default_scope (str): Scope when the config names none.

    Returns:
        Config: The config.
    """
    from mmengine.registry import init_default_scope
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    check_framework(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    import mmdynamic.models  # noqa: F401  (plain type names of mmdynamic in every scope)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', default_scope))
    return cfg


def load_config(args: argparse.Namespace) -> Config:
    """Read the config and apply the common flags (work dir, options, launcher, AMP, imports)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    check_framework(cfg)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    imports = cfg.get('custom_imports', None) or dict(imports=[], allow_failed_imports=False)
    names = imports['imports'] if isinstance(imports['imports'], list) else [imports['imports']]
    if MMDYNAMIC_IMPORT not in names:
        imports['imports'] = names + [MMDYNAMIC_IMPORT]
        cfg.custom_imports = imports
    import mmdynamic.models  # noqa: F401  (plain type names of mmdynamic in every scope)
    cfg.launcher = args.launcher
    keep_exit_metrics_unaveraged(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    setup_cpu_distributed(cfg)
    return cfg


# MMEngine's LogProcessor averages, over its window, every logged key matching its ``mean_pattern``,
# whose default ``.*(loss|time|data_time|grad_norm).*`` also matches the ``anytime/...`` metrics:
# validation logs would show running means of earlier validations. The same pattern without them:
MEAN_PATTERN = r'.*(loss|(?<!any)time|data_time|grad_norm).*'


def keep_exit_metrics_unaveraged(cfg: Config) -> None:
    """Set ``log_processor.mean_pattern`` to :data:`MEAN_PATTERN` unless the config sets one."""
    processor = dict(cfg.get('log_processor', None) or {})
    if 'mean_pattern' not in processor:
        processor['mean_pattern'] = MEAN_PATTERN
        cfg.log_processor = processor


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to ``AmpOptimWrapper`` (dynamic loss scale)."""
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA GPU: MMEngine\'s AmpOptimWrapper does not run on CPU.')
    wrapper = cfg.get('optim_wrapper')
    if wrapper is not None:
        # MMEngine builds an OptimWrapper when the config names no type
        kind = wrapper.get('type', 'OptimWrapper')
        if kind == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.', logger='current', level=logging.WARNING)
            return
        if kind != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper", got {kind!r}')
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    # test-time AMP
    cfg.setdefault('test_cfg', {})
    if cfg.test_cfg is not None:
        cfg.test_cfg['fp16'] = True


def add_custom_hook(cfg: Config, hook: dict) -> None:
    """Append ``hook`` to ``cfg.custom_hooks`` unless a hook of its type is already there."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    name = hook['type'].split('.')[-1]
    if not any(str(h.get('type', '')).split('.')[-1] == name for h in hooks):
        hooks.append(hook)
    cfg.custom_hooks = hooks


def shutdown_distributed() -> None:
    """End a distributed run of the tools: wait for every rank, flush, and leave without the
    interpreter's teardown.

    At interpreter exit, gloo's C++ threads can be destroyed while still joinable, and a process that
    finished its work aborts (``terminate called without an active exception``, exit code -6); torchrun
    then reports the whole job as failed. After the barrier every rank's work is done and written, so
    each process flushes its streams and log handlers and exits at once (``os._exit(0)``). Without a
    process group this does nothing.
    """
    import logging
    import sys

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(0)


def build_runner(cfg: Config):
    """Build the runner named by ``runner_type`` or MMEngine's default one."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_model(cfg: Config, checkpoint: Optional[str] = None):
    """Build ``cfg.model`` for analysis tools the way the runner does, in eval mode.

    Like MMEngine's ``Runner``, a top-level ``data_preprocessor`` (mmpretrain configs keep it there)
    becomes the model's when the model names none: without it the inputs would not be normalised.
    SyncBN is reverted to BN (one process), and ``checkpoint``, if given, is loaded.

    Args:
        cfg (Config): A whole config, its default scope already initialised.
        checkpoint (str, optional): Checkpoint to load (its ``state_dict``).

    Returns:
        nn.Module: The model, in eval mode.
    """
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import MODELS
    from mmengine.runner import load_checkpoint

    from .stage_inputs import STAGE_INPUTS_KEY, resolve_stage_inputs
    if STAGE_INPUTS_KEY in cfg:
        # the ${name} checkpoints of multi-stage demos, as StageInputsRunner resolves them
        cfg = copy.deepcopy(cfg)
        resolve_stage_inputs(cfg)
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model.eval()


def write_tool_report(result: dict, text: str, name: str, config_path: str,
                      work_dir: Optional[str] = None) -> str:
    """Print an analysis tool's markdown report and keep it with its numbers in the work dir.

    Args:
        result (dict): JSON-serialisable numbers, written to ``<work_dir>/<name>.json``.
        text (str): The markdown report, printed and written to ``<work_dir>/<name>.md``.
        name (str): File stem, e.g. ``'policy_eval'``.
        config_path (str): The tool's config; the default work dir is ``work_dirs/<config stem>``.
        work_dir (str, optional): Where the files go.

    Returns:
        str: The work dir.
    """
    import json
    print(text)
    work_dir = work_dir or osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, f'{name}.json'), 'w') as f:
        json.dump(result, f, indent=1)
    with open(osp.join(work_dir, f'{name}.md'), 'w') as f:
        f.write(text + '\n')
    return work_dir


def is_complete_checkpoint(path: str) -> bool:
    """True when ``path`` is a whole checkpoint written by ``torch.save`` (a zip archive whose
    central directory is intact and which holds the pickled object), without unpickling it."""
    import zipfile
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith('data.pkl') for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the newest complete ``*.pth`` of the work dir
    (None if there is none).

    MMEngine's pointer file ``last_checkpoint`` is written after the checkpoint itself: a run killed
    in between leaves it naming the previous checkpoint although a newer complete one exists, and a
    run killed while writing it leaves it empty or torn. Checkpoints themselves are written
    atomically (see :func:`mmdynamic.utils.compat.make_local_writes_atomic`), so the newest complete
    file is the latest state; checkpoints written without that protection are checked for
    truncation.
    """
    import glob
    named = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer, encoding='utf-8') as f:
            named = f.read().strip() or None
    candidates = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    for path in candidates:
        if is_complete_checkpoint(path):
            if named and osp.abspath(named) != osp.abspath(path):
                print_log(f'{pointer} names {named!r}; resuming from the newer complete '
                          f'checkpoint {path}', logger='current', level=logging.WARNING)
            return path
    return None


def resolve_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (``'auto'``: latest complete checkpoint of the work dir, see
    :func:`find_resumable_checkpoint`) or ``--resume PATH``."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            cfg.resume = False
            print_log(f'--resume: no complete checkpoint in {cfg.work_dir}; starting from scratch',
                      logger='current', level=logging.WARNING)
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        if not is_complete_checkpoint(resume):
            raise ValueError(f'--resume checkpoint {resume} is truncated or not a torch checkpoint')
        cfg.resume = True
        cfg.load_from = resume
