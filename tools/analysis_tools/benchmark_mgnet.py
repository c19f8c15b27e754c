# Copyright (c) mmdynamic contributors. All rights reserved.
"""Latency of MGNet vs its FF-Net baseline, per backbone, batch size and number of glimpses.

For each backbone: the FF-Net (one glimpse at the input size) and MGNet stopped after k = 1..T glimpses
(early exit at k, the K/V-cache-free code path of the paper). Columns: median latency, speed-up over
FF-Net, MACs (paper convention, per sample), MACs ratio MGNet/FF-Net, and speed-up x MACs ratio (1.0
when latency follows MACs; below 1 when the glimpse loop costs more than its MACs).

Measure with fixed threads, on a quiet machine if possible: the models of one backbone and batch size
are timed interleaved (run i of each before run i + 1 of any), so that load changes on a shared machine
hit FF-Net and MGNet alike; the title line gives the load average. The paper gives Xeon E5-2650 CPU
latencies without batch size or thread count (Table 1: ResNet-50 240.1 ms FF-Net vs 167.6 ms MGNet).

Throughput mode (``--stream N``, issue #20): budgeted early exit of MGNet on a stream of N images in
batches of each ``--batch-sizes`` value, timed as a whole against FF-Net on the same stream: MGNet with
the per-batch executor and with the step-major executor
(:class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`), thresholds fitted on the stream's
confidences for ``--relative-budgets`` x FF-Net's MACs (:mod:`mmdynamic.utils.stream_benchmark`).
``--step-times`` adds the time of every glimpse of each executor and of FF-Net's backbone.

Device (``--device``, default ``cpu``; ``cuda`` or ``cuda:N``): the models and images run there, timed
with CUDA events on a GPU (:func:`~mmdynamic.utils.benchmark.time_interleaved`); the report names the
device.

Example:
    python tools/analysis_tools/benchmark_mgnet.py --backbones r18 r50 --batch-sizes 1 32 --threads 1
    python tools/analysis_tools/benchmark_mgnet.py --backbones r50 --batch-sizes 32 --stream 512 \
        --runs 2 --warmup 0 --threads 1 --step-times
    python tools/analysis_tools/benchmark_mgnet.py --device cuda --backbones r50 \
        --batch-sizes 64 128
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmdynamic  # noqa: E402,F401
from mmdynamic.utils.benchmark import (DeviceLike, add_inference_args,  # noqa: E402
                                       allocator_note, check_inference_args, device_from_args,
                                       emit_report, reexec_with_tuned_malloc, setting_note,
                                       time_round_robin)
from mmdynamic.utils.stream_benchmark import (STEP_TIMES_HEADER, STREAM_HEADER,  # noqa: E402
                                              StreamSetup, add_stream_args, fit_points,
                                              load_average, measure_step_times, step_time_rows,
                                              stream_rows, time_stream)

BACKBONES: Dict[str, dict] = {
    'r18': dict(name='ResNet-18', dim=512, grad_scale=0.02,
                cfg=dict(type='ResNet', depth=18, out_indices=(3, ), style='pytorch')),
    'r34': dict(name='ResNet-34', dim=512, grad_scale=0.02,
                cfg=dict(type='ResNet', depth=34, out_indices=(3, ), style='pytorch')),
    'r50': dict(name='ResNet-50', dim=2048, grad_scale=0.01,
                cfg=dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch')),
    'rx50': dict(name='ResNeXt-50', dim=2048, grad_scale=0.01,
                 cfg=dict(type='ResNeXt', depth=50, groups=32, width_per_group=4,
                          out_indices=(3, ))),
    'wrn50': dict(name='WRN-50-2', dim=2048, grad_scale=0.01,
                  cfg=dict(type='ResNet', depth=50, stem_channels=64, base_channels=128,
                           expansion=2, out_indices=(3, ))),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Latency of MGNet vs FF-Net')
    parser.add_argument('--backbones', nargs='+', default=['r18', 'r50', 'rx50', 'wrn50'],
                        choices=sorted(BACKBONES))
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--glimpse-size', type=int, default=96)
    parser.add_argument('--num-glimpses', type=int, default=4)
    parser.add_argument('--num-classes', type=int, default=100)
    parser.add_argument('--width', type=int, help='stem/base channels of the backbone (tests: a '
                        'narrow network); default: the standard width')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--runs', type=int, default=10, help='timed runs (median reported)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--stream', type=int, default=0, metavar='N',
                        help='throughput mode: budgeted early exit on a stream of N images '
                        '(per-batch against step-major; 0: the latency table)')
    parser.add_argument('--relative-budgets', type=float, nargs='+', default=[0.3, 0.5],
                        help="throughput mode: operating points as fractions of FF-Net's MACs")
    add_stream_args(parser)
    add_inference_args(parser, layout=False, device=True)
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    args = parser.parse_args(argv)
    check_inference_args(parser, args)
    if args.stream < 0 or (args.stream and args.stream < max(args.batch_sizes)):
        parser.error(f'--stream must be 0 or at least the largest batch size, got {args.stream}')
    if args.step_times and not args.stream:
        parser.error('--step-times times the steps of the throughput mode: give --stream N')
    return args


def stream_main(args: argparse.Namespace) -> List[dict]:
    """Throughput mode: FF-Net, MGNet per-batch and step-major early exit on one stream."""
    import torch

    from mmdynamic.models.cls.mgnet import count_mgnet_macs
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = device_from_args(args)
    shape = (3, args.input_size, args.input_size)
    images = torch.randn(args.stream, *shape).to(device)
    names = [f'glimpse {k}' for k in range(1, args.num_glimpses + 1)]
    lines, results = [], []
    for key in args.backbones:
        name = BACKBONES[key]['name']
        ff, mg = (build(key, args, mgnet=m, device=device) for m in (False, True))
        ff_macs = count_mgnet_macs(ff, shape)[0]
        exit_costs = [float(c) for c in count_mgnet_macs(mg, shape)]
        budgets = [r * ff_macs for r in args.relative_budgets]
        for batch in args.batch_sizes:
            setup = StreamSetup(model=mg, batches=list(images.split(batch)),
                                static_fn=ff.forward_exits, static_macs=ff_macs,
                                exit_costs=exit_costs, batch_size=batch,
                                max_queued=args.max_queued, device=device, step_names=names,
                                static_parts={f'{name} backbone': 'backbone'})
            points = fit_points(setup, budgets)
            result = time_stream(setup, points, args.runs, args.warmup)
            lines += ['', f'{name}, batch {batch}: MGNet exits (cumulative GMACs) '
                      + ', '.join(f'{c / 1e9:.4g}' for c in exit_costs), '', STREAM_HEADER,
                      f'| FF-Net {name} | static | {ff_macs / 1e9:.4g} | - | '
                      f"{result['static_per_s']:.1f} | 1.00 | 1.00 | 1.00 | {batch} |"]
            lines += stream_rows(result['rows'], 'MGNet')
            if args.step_times:
                result['step_times'] = measure_step_times(setup, points)
                lines += ['', f'{name}, batch {batch}: where the time goes (one more pass per '
                          'executor, every glimpse timed)', '', STEP_TIMES_HEADER]
                lines += step_time_rows(result['step_times'], 'MGNet', f'FF-Net {name}',
                                        args.stream)
            results.append(dict(backbone=name, batch=batch, **result))
    title = (f'MGNet ({args.num_glimpses} x {args.glimpse_size} px) vs FF-Net '
             f'({args.input_size} px), {setting_note(args)}, stream of {args.stream} images, '
             f'median of {args.runs} round-robin runs of the whole stream, thresholds fitted on '
             f"the stream for {', '.join(f'{r:g}' for r in args.relative_budgets)} x FF-Net's "
             'MACs; '
             f'load average at the end {load_average()}; {allocator_note()}')
    emit_report('\n'.join([title] + lines), args.out)
    return results


def build(key: str, args: argparse.Namespace, mgnet: bool, device: DeviceLike = None):
    import mmdynamic.models  # noqa: F401
    from mmdynamic.registry import MODELS
    spec = BACKBONES[key]
    backbone = dict(spec['cfg'])
    if args.width:
        base = args.width * (2 if key == 'wrn50' else 1)
        backbone.update(stem_channels=args.width, base_channels=base)
    cfg = dict(type='MGNet', backbone=backbone, num_classes=args.num_classes)
    if mgnet:
        cfg.update(num_glimpses=args.num_glimpses, glimpse_size=args.glimpse_size,
                   grad_scale=spec['grad_scale'])
    else:
        cfg.update(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
    model = MODELS.build(cfg)
    model.eval()
    return model.to('cpu' if device is None else device)


def latency_ms(fns: Sequence, inputs, runs: int, warmup: int,
               device: DeviceLike = None) -> List[float]:
    """Median latency (ms) of each of ``fns`` on ``inputs`` (on ``device``), timed interleaved (run
    i of every function before run i + 1 of any): a change of machine load during the measurement
    hits all of them alike, so their ratios stay comparable on a shared machine."""
    import torch
    with torch.no_grad():
        seconds = time_round_robin([lambda fn=fn: fn(inputs) for fn in fns], runs, warmup,
                                   device=device)
    return [s * 1000 for s in seconds]


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.stream:
        return stream_main(args)
    import torch

    from mmdynamic.models.cls.mgnet import count_mgnet_macs
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = device_from_args(args)
    shape = (3, args.input_size, args.input_size)
    rows = []
    for key in args.backbones:
        ff, mg = (build(key, args, mgnet=m, device=device) for m in (False, True))
        ff_macs = count_mgnet_macs(ff, shape)[0]
        mg_macs = count_mgnet_macs(mg, shape)
        for batch in args.batch_sizes:
            inputs = torch.randn(batch, *shape).to(device)
            fns = [ff.forward_exits] + [
                (lambda x, k=k: mg.forward_exits(x, num_steps=k))
                for k in range(1, args.num_glimpses + 1)
            ]
            ff_ms, *mg_ms = latency_ms(fns, inputs, args.runs, args.warmup, device)
            rows.append(dict(backbone=BACKBONES[key]['name'], model='FF-Net', glimpses=1,
                             batch=batch, ms=ff_ms, speedup=1.0, gmacs=ff_macs / 1e9, ratio=1.0))
            for k, ms in enumerate(mg_ms, 1):
                rows.append(dict(backbone=BACKBONES[key]['name'], model='MGNet', glimpses=k,
                                 batch=batch, ms=ms, speedup=ff_ms / ms, gmacs=mg_macs[k - 1] / 1e9,
                                 ratio=mg_macs[k - 1] / ff_macs))
    header = ('| backbone | model | glimpses | batch | threads | latency (ms/batch) | speed-up | '
              'GMACs/sample | MACs ratio | speed-up x MACs ratio |')
    lines = [
        f'MGNet ({args.num_glimpses} x {args.glimpse_size} px) vs FF-Net ({args.input_size} px), '
        f'{setting_note(args)}, median of {args.runs} interleaved runs (FF-Net and MGNet timed in '
        f'the same runs), load average at the end {load_average()}; {allocator_note()}', '', header,
        '|' + '---|' * 10
    ]
    for r in rows:
        lines.append(f'| {r["backbone"]} | {r["model"]} | {r["glimpses"]} | {r["batch"]} | '
                     f'{args.threads} | {r["ms"]:.1f} | {r["speedup"]:.2f}x | {r["gmacs"]:.4f} | '
                     f'{r["ratio"]:.3f} | {r["speedup"] * r["ratio"]:.2f} |')
    text = '\n'.join(lines)
    emit_report(text, args.out)
    return rows


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
