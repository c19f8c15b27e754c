# Copyright (c) mmdynamic contributors. All rights reserved.
"""Config handling shared by ``tools/train.py`` and ``tools/test.py`` for all four frameworks."""
import argparse
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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    setup_cpu_distributed(cfg)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to ``AmpOptimWrapper`` (dynamic loss scale)."""
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA GPU: MMEngine\'s AmpOptimWrapper does not run on CPU.')
    wrapper = cfg.get('optim_wrapper')
    if wrapper is not None and 'type' in wrapper:
        kind = wrapper['type']
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


def build_runner(cfg: Config):
    """Build the runner named by ``runner_type`` or MMEngine's default one."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def resolve_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (``'auto'``: latest checkpoint of the work dir) or ``--resume PATH``."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume
