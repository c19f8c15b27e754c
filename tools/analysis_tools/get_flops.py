# Copyright (c) mmdynamic contributors. All rights reserved.
"""Print the parameters and MACs of a config's model (per exit for step-wise models).

MACs are counted from the model's own modules at the real input size (a batch of the config's test
dataloader, or ``--shape``), one per multiply-add (MMEngine's fvcore-compatible counter).

Example:
    python tools/analysis_tools/get_flops.py configs/demo/faster-rcnn_r18_fpn_1xb4-8e_demo-det.py
    python tools/analysis_tools/get_flops.py CONFIG --shape 224 224
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import mmdynamic.models  # noqa: E402,F401
from mmdynamic.utils.flops import (count_macs, count_model_macs_on_batch,  # noqa: E402
                                   count_params, format_macs)
from mmdynamic.utils.run_config import build_model, load_tool_config  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Parameters and MACs of a model')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='input H W (or C H W) instead of a batch of the test dataloader')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_tool_config(args.config, args.cfg_options)
    model = build_model(cfg)
    print(f'config: {args.config}')
    print(f'params: {count_params(model) / 1e6:.3f} M')
    if args.shape:
        shape = tuple(args.shape) if len(args.shape) == 3 else (3, ) + tuple(args.shape)
        if len(shape) != 3:
            raise ValueError(f'--shape takes H W or C H W, got {args.shape}')
        inputs = torch.rand(1, *shape)
        macs = count_macs(model, (inputs, ), fn=lambda x: model(x, mode='tensor'))
    else:
        from mmengine.runner import Runner
        loader_cfg = cfg.test_dataloader.copy()
        loader_cfg['batch_size'] = 1
        loader_cfg['num_workers'] = 0
        loader_cfg['persistent_workers'] = False
        batch = next(iter(Runner.build_dataloader(loader_cfg)))
        macs, shape = count_model_macs_on_batch(model, batch)
    exit_macs = getattr(model, 'exit_macs', None)
    # step-wise models: cumulative MACs of every exit; static models have one exit
    costs = exit_macs(shape) if callable(exit_macs) else [macs]
    print('exit  cumulative MACs')
    for i, value in enumerate(costs):
        print(f'{i + 1:>4}  {format_macs(value)}')
    print(f'input shape: {shape}')
    print(f'MACs per sample (whole model): {format_macs(macs)}')
    backbone = getattr(model, 'backbone', None)
    if getattr(backbone, 'last_flops', None) is not None:
        print('dynamic backbone: realised MACs of this input, from its masks: '
              f'{format_macs(float(backbone.last_flops.double().mean()))}')


if __name__ == '__main__':
    main()
