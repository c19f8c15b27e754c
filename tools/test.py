# Copyright (c) mmdynamic contributors. All rights reserved.
"""Evaluate a checkpoint with the config's test set and metrics (any of the four frameworks).

Example:
    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/eval --out results.pkl
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmdynamic  # noqa: E402,F401  (compatibility fixes first)
from mmdynamic.utils.run_config import (add_common_args, build_runner,  # noqa: E402
                                        load_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint (mmdynamic)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_args(parser)
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--metrics-out', help='write the metrics to this JSON file '
                        '(default: <work_dir>/metrics.json)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        evaluator = cfg.test_evaluator
        metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
        cfg.test_evaluator = metrics + [dict(type='DumpResults', out_file_path=args.out)]
    runner = build_runner(cfg)
    metrics = runner.test()
    from mmengine.dist import is_main_process
    if is_main_process():
        out = args.metrics_out or osp.join(cfg.work_dir, 'metrics.json')
        with open(out, 'w', encoding='utf-8') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v for k, v in metrics.items()},
                      f, indent=1)
        print(f'metrics written to {osp.abspath(out)}')


if __name__ == '__main__':
    main()
