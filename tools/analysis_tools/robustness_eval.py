# Copyright (c) mmdynamic contributors. All rights reserved.
"""Robustness of an mmpretrain classifier (any, and every exit of step-wise models such as MGNet).

``pgd``: l_inf PGD, accuracy per number of steps and exit. ``--preset paper`` is the MGNet setting
(eps 4/255 and step 1/255 on the *normalised* tensor, no random start, no clamp, loss on the final exit);
``--preset strong`` the standard pixel-space one (eps 4/255 of the [0, 1] range, random start, clamped).

``corruptions``: the 15 ImageNet-C corruptions x 5 severities applied on the fly after the test
pipeline's resize/crop (``imagecorruptions``); accuracy per corruption averaged over severities, then
the mean over corruptions, per exit (MGNet Table 2). ``--paper-resize`` applies ResizeEdge(256) +
CenterCrop(224) again after the corruption, as the stored 224 px ImageNet-C images go through the val
pipeline in the paper.

Both write ``<work_dir>/robustness_<mode>.json`` and ``.md`` and print the table.

Examples:
    python tools/analysis_tools/robustness_eval.py pgd CONFIG CKPT --preset paper --steps 0 1 2 4 10
    python tools/analysis_tools/robustness_eval.py corruptions CONFIG CKPT --severities 1 3 5
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from fractions import Fraction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmdynamic  # noqa: E402,F401  (compatibility fixes first)


def number(text: str) -> float:
    """``'4/255'`` or ``'0.0157'`` -> float."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from exc


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='PGD and common-corruption robustness')
    sub = parser.add_subparsers(dest='mode', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('config', help='config file')
    common.add_argument('checkpoint', help='checkpoint file')
    common.add_argument('--work-dir', help='where the tables go (default: work_dirs/<config>)')
    common.add_argument('--cfg-options', nargs='+', action=DictAction_(), default=None,
                        help='override config settings, key=value')
    common.add_argument('--batch-size', type=int, help='test batch size (default: the config)')
    common.add_argument('--num-samples', type=int,
                        help='evaluate this many samples, evenly spaced over the test set '
                        '(default: all)')

    pgd = sub.add_parser('pgd', parents=[common], help='l_inf PGD')
    pgd.add_argument('--preset', choices=['paper', 'strong'], default='paper')
    pgd.add_argument('--eps', type=number, help="radius, e.g. '4/255' (default: the preset's)")
    pgd.add_argument('--step-size', type=number, help="step, e.g. '1/255'")
    pgd.add_argument('--steps', type=int, nargs='+', default=[0, 1, 2, 4, 10, 20],
                     help='step counts to report (0: clean)')
    pgd.add_argument('--space', choices=['normalized', 'pixel'])
    start = pgd.add_mutually_exclusive_group()
    start.add_argument('--random-start', dest='random_start', action='store_true', default=None)
    start.add_argument('--no-random-start', dest='random_start', action='store_false')
    pgd.add_argument('--attack-exit', type=int, default=-1,
                     help='exit whose loss is maximised (default -1: the final one)')
    pgd.add_argument('--unscaled-gradients', action='store_true',
                     help="attack with gradient-scaling layers (MGNet's s) set to 1 in backward")
    pgd.add_argument('--seed', type=int, default=0)

    cor = sub.add_parser('corruptions', parents=[common], help='ImageNet-C corruptions')
    cor.add_argument('--corruptions', nargs='+', default=['all'], help="names or 'all'")
    cor.add_argument('--severities', type=int, nargs='+', default=[1, 2, 3, 4, 5])
    cor.add_argument('--paper-resize', action='store_true',
                     help='ResizeEdge(256) + CenterCrop(224) again after the corruption')
    cor.add_argument('--no-clean', action='store_true', help='skip the clean row')
    cor.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def DictAction_():  # noqa: N802  (mmengine's DictAction, imported lazily)
    from mmengine.config import DictAction
    return DictAction


def build(args: argparse.Namespace):
    """The model with the checkpoint loaded, and a function building test loaders."""
    from mmengine.runner import Runner

    from mmdynamic.utils.run_config import build_model, load_tool_config
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_tool_config(args.config, args.cfg_options, default_scope='mmpretrain')
    model = build_model(cfg, args.checkpoint)

    def loader(pipeline=None):
        loader_cfg = cfg.test_dataloader.copy()
        loader_cfg['dataset'] = dict(loader_cfg['dataset'])
        if pipeline is not None:
            loader_cfg['dataset']['pipeline'] = pipeline
        if args.batch_size:
            loader_cfg['batch_size'] = args.batch_size
        if args.num_samples:
            loader_cfg['dataset'] = spread_subset(loader_cfg['dataset'], args.num_samples)
        return Runner.build_dataloader(loader_cfg, seed=0)

    work_dir = args.work_dir or osp.join('work_dirs',
                                         osp.splitext(osp.basename(args.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    return cfg, model, loader, work_dir


def spread_subset(dataset_cfg: dict, num: int):
    """The dataset reduced to ``num`` samples evenly spaced over it (first, ..., last): test sets are
    often sorted by class, so their first samples would be a few classes only."""
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(dataset_cfg)
    total = len(dataset)
    if num < total:
        dataset.get_subset_([round(i * (total - 1) / max(num - 1, 1)) for i in range(num)])
    return dataset


def markdown(header, rows) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def run_pgd(args, model, loader, work_dir) -> dict:
    from mmdynamic.evaluation.robustness import PGD_PRESETS, PGDConfig, evaluate_pgd
    settings = dict(PGD_PRESETS[args.preset])
    for key in ('eps', 'step_size', 'space', 'random_start'):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    cfg = PGDConfig(steps=args.steps, attack_exit=args.attack_exit, seed=args.seed,
                    unscaled_gradients=args.unscaled_gradients, **settings)
    result = evaluate_pgd(model, loader(), cfg, max_samples=args.num_samples)
    num_exits = len(next(iter(result.accuracy.values())))
    header = ['PGD steps'] + [f'exit {k + 1}' for k in range(num_exits)]
    rows = [[s] + [f'{a:.2f}' for a in acc] for s, acc in sorted(result.accuracy.items())]
    title = (f'PGD l_inf ({args.preset}): eps {cfg.eps:.5g}, step {cfg.step_size:.5g}, space '
             f'{cfg.space}, random start {cfg.random_start}, loss on exit {cfg.attack_exit}'
             f'{", unscaled gradients" if cfg.unscaled_gradients else ""}; '
             f'top-1 (%) on {result.num_samples} samples')
    return dict(title=title, table=markdown(header, rows),
                json=dict(mode='pgd', preset=args.preset, eps=cfg.eps, step_size=cfg.step_size,
                          space=cfg.space, random_start=cfg.random_start,
                          attack_exit=cfg.attack_exit, num_samples=result.num_samples,
                          unscaled_gradients=cfg.unscaled_gradients,
                          accuracy={str(k): v for k, v in result.accuracy.items()}))


def evaluate_clean(model, data_loader, max_samples=None):
    import torch

    from mmdynamic.evaluation.robustness import ExitAccuracy, classifier_exit_logits
    meter, seen = ExitAccuracy(), 0
    with torch.no_grad():
        for batch in data_loader:
            data = model.data_preprocessor(batch, False)
            labels = torch.cat([ds.gt_label for ds in data['data_samples']])
            meter.update(classifier_exit_logits(model, data['inputs']), labels)
            seen += labels.numel()
            if max_samples is not None and seen >= max_samples:
                break
    return meter.result(), seen


def run_corruptions(args, cfg, model, loader, work_dir) -> dict:
    from mmdynamic.evaluation.robustness import (CORRUPTIONS, SHORT_NAMES, corruption_pipeline,
                                                 summarize_corruptions)
    names = list(CORRUPTIONS) if args.corruptions == ['all'] else args.corruptions
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ValueError(f'unknown corruptions {unknown}; choose from {CORRUPTIONS}')
    bad = [s for s in args.severities if s not in range(1, 6)]
    if bad:
        raise ValueError(f'severities must be in 1..5, got {bad}')
    test_pipeline = cfg.test_dataloader['dataset']['pipeline']
    after = [dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
             dict(type='CenterCrop', crop_size=224)] if args.paper_resize else []
    accuracy, seen = {}, 0
    for name in names:
        accuracy[name] = {}
        for severity in args.severities:
            pipeline = corruption_pipeline(test_pipeline, name, severity, seed=args.seed,
                                           after=after)
            accuracy[name][severity], seen = evaluate_clean(model, loader(pipeline),
                                                            args.num_samples)
            print(f'{name} severity {severity}: ' +
                  ' '.join(f'{a:.2f}' for a in accuracy[name][severity]), flush=True)
    table = summarize_corruptions(accuracy)
    clean = None if args.no_clean else evaluate_clean(model, loader(), args.num_samples)[0]
    num_exits = len(table['mean'])
    header = ['exit', 'clean', 'Avg'] + [SHORT_NAMES[n] for n in names]
    rows = []
    for k in range(num_exits):
        rows.append([k + 1, '-' if clean is None else f'{clean[k]:.2f}', f'{table["mean"][k]:.2f}'] +
                    [f'{table[n][k]:.0f}' for n in names])
    title = (f'Common corruptions ({len(names)} corruptions x severities {args.severities}, '
             f'on the fly{", paper resize" if args.paper_resize else ""}): top-1 (%) per exit, '
             f'{seen} samples; per corruption the mean over severities, Avg the mean over '
             'corruptions')
    return dict(title=title, table=markdown(header, rows),
                json=dict(mode='corruptions', severities=args.severities, num_samples=seen,
                          paper_resize=args.paper_resize, clean=clean, accuracy={
                              n: {str(s): a for s, a in by.items()} for n, by in accuracy.items()},
                          summary=table))


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', torch.get_num_threads())))
    start = time.time()
    cfg, model, loader, work_dir = build(args)
    if args.mode == 'pgd':
        out = run_pgd(args, model, loader, work_dir)
    else:
        out = run_corruptions(args, cfg, model, loader, work_dir)
    out['json'].update(config=args.config, checkpoint=args.checkpoint,
                       seconds=round(time.time() - start, 1))
    stem = osp.join(work_dir, f'robustness_{args.mode}')
    with open(stem + '.json', 'w') as f:
        json.dump(out['json'], f, indent=2)
    text = f'{out["title"]}\n\n{out["table"]}\n'
    with open(stem + '.md', 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {stem}.json, {stem}.md')


if __name__ == '__main__':
    main()
