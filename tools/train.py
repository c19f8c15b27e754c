# Copyright (c) mmdynamic contributors. All rights reserved.
"""Train a model of any of the four frameworks (the config's ``default_scope`` picks it).

Example:
    python tools/train.py configs/demo/resnet18_1xb32-4e_demo-cls.py --work-dir work_dirs/demo
    bash tools/dist_train.sh CONFIG 2          # two processes (gloo on CPU, NCCL on GPUs)
"""
import argparse
import logging
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmdynamic  # noqa: E402,F401  (compatibility fixes first)
from mmdynamic.engine.runner import exact_resume_loop  # noqa: E402
from mmdynamic.utils.run_config import (add_common_args, add_custom_hook,  # noqa: E402
                                        build_runner, load_config, resolve_resume,
                                        shutdown_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (mmdynamic)')
    parser.add_argument('config', help='train config file path')
    add_common_args(parser)
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the latest checkpoint of the work dir, or from the given checkpoint')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--no-exact-resume', action='store_true',
                        help="keep MMEngine's own train loop (no random states in checkpoints, "
                        'an interrupted epoch restarts from its beginning)')
    parser.add_argument('--allow-nonfinite', action='store_true',
                        help='do not stop at a NaN / infinite loss (NonFiniteLossHook)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    resolve_resume(cfg, args.resume)
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` '
                               'in the config')
        scale['enable'] = True
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if not args.allow_nonfinite:
        add_custom_hook(cfg, dict(type='mmdynamic.NonFiniteLossHook'))
    add_custom_hook(cfg, dict(type='mmdynamic.LabelRangeHook'))
    if not args.no_exact_resume:
        cfg.train_cfg = exact_resume_loop(cfg.get('train_cfg'))
        add_custom_hook(cfg, dict(type='mmdynamic.RNGStateHook'))
    runner = build_runner(cfg)
    runner.train()
    runner.logger.log(logging.INFO, f'Training finished; work dir: {osp.abspath(cfg.work_dir)}')
    shutdown_distributed()


if __name__ == '__main__':
    main()
