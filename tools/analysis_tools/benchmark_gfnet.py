# Copyright (c) mmdynamic contributors. All rights reserved.
"""CPU throughput of GF-ResNet-50 with batched early exit against ResNet-50 (GFNet Tab. 1).

Batch ``--batch-size`` (32) at ``--input-size`` (224): images/s of

- the static backbone: mmpretrain ResNet-``depth`` + global pooling + a linear head;
- GFNet (same backbone for fG and fL, P = ``--patch-size``, T = ``--num-steps``) with real early
  exit (:class:`~mmdynamic.models.utils.EarlyExitExecutor`: exited samples are dropped from the
  batch, later steps run on the survivors only), at operating points of ``--budgets`` GMACs (or
  ``--relative-budgets`` x the backbone's MACs).

Thresholds come from the model's real confidences: every step is run once (untimed) on the
benchmark batch, and a :class:`~mmdynamic.evaluation.BudgetSolver` fits the geometric-prior
thresholds of each budget on them; the timed runs then exit exactly that way. The models have
random weights (latency does not depend on them). The realised MACs are the exit costs counted from the modules
weighted by the realised exit fractions. Reported per operating point: images/s, speed-up over the
backbone, MACs ratio (backbone / GFNet) and their quotient (the target: at least 0.85).
Median of ``--runs`` timed batches after ``--warmup`` ones, models timed round-robin, under
``torch.inference_mode()``, ``torch.set_num_threads(--threads)``. Both models are prepared alike for
CPU inference (:func:`mmdynamic.utils.benchmark.prepare_for_inference`: BN folded unless
``--no-fuse-bn``, channels-last unless ``--memory-format contiguous``; the ResNets, GFNet's two encoders
and the baseline's one, TorchScript-frozen by :func:`~mmdynamic.utils.benchmark.freeze_submodules` unless
``--no-freeze``, fused by oneDNN Graph with ``--onednn-graph``), and the script restarts itself
with the tuned allocator setting of :mod:`mmdynamic.utils.benchmark` unless ``--system-malloc``.

Throughput mode (``--stream N``, issue #20): a stream of N images in batches of ``--batch-size``,
timed as a whole: the static backbone batch by batch, GFNet with the per-batch executor batch by batch,
and GFNet with :class:`~mmdynamic.models.utils.step_major.StepMajorExecutor` (the survivors of all
batches pooled per step, every step run on full batches until the stream ends). The thresholds of each
operating point are fitted on the stream's own confidences (every step run once, untimed); the
realised MACs are those of the stream's exits (the same for both executors). The table adds the mean
samples per call of each step.

Example:
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_gfnet.py --threads 1 --out gfnet.md
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_gfnet.py --threads 1 --stream 512 \
        --runs 2 --warmup 0 --out gfnet_stream.md
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmdynamic.utils.benchmark import (add_inference_args, allocator_note,  # noqa: E402
                                       check_inference_args, cpu_name, emit_report,
                                       encoder_note, freeze_from_args, memory_format_from_args,
                                       prepare_from_args, reexec_with_tuned_malloc,
                                       time_round_robin)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CPU throughput of GFNet vs its backbone')
    parser.add_argument('--depth', type=int, default=50, help='ResNet depth of both models')
    parser.add_argument('--base-channels', type=int, default=64)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--patch-size', type=int, default=96)
    parser.add_argument('--num-steps', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=32)
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--budgets', type=float, nargs='+', default=[1.0, 1.5, 2.0, 2.5],
                       help='operating points in GMACs per image')
    group.add_argument('--relative-budgets', type=float, nargs='+',
                       help="operating points as fractions of the backbone's MACs")
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stream', type=int, default=0, metavar='N',
                        help='throughput mode: time a stream of N images (per-batch against '
                        'step-major early exit; 0: one batch, the default mode)')
    parser.add_argument('--max-queued', type=int,
                        help='throughput mode: queue limit of the step-major executor')
    add_inference_args(parser, freeze=True)
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    args = parser.parse_args(argv)
    check_inference_args(parser, args)
    if args.stream < 0 or (args.stream and args.stream < args.batch_size):
        parser.error(f'--stream must be 0 or at least --batch-size ({args.batch_size}) images')
    return args


def build_models(args: argparse.Namespace):
    from mmengine.registry import MODELS, init_default_scope

    import mmdynamic.models  # noqa: F401
    init_default_scope('mmpretrain')
    backbone = dict(type='ResNet', depth=args.depth, base_channels=args.base_channels,
                    stem_channels=args.base_channels, out_indices=(3, ))
    channels = args.base_channels * (32 if args.depth >= 50 else 8)
    gfnet = MODELS.build(dict(
        type='GFNet', num_classes=args.num_classes, patch_size=args.patch_size,
        num_steps=args.num_steps, train_stage=3,
        global_encoder=dict(backbone=backbone, in_channels=channels),
        classifier=dict(type='recurrent', hidden_channels=min(1024, channels)),
        policy=dict(variant='fc', fc_channels=min(2048, 2 * channels),
                    hidden_channels=min(1024, channels))))
    static = nn.Sequential(MODELS.build(backbone), _LastMap(), nn.AdaptiveAvgPool2d(1),
                           nn.Flatten(), nn.Linear(channels, args.num_classes))
    prepare_from_args(args, gfnet, static)
    return gfnet, static


def freeze_backbones(args: argparse.Namespace, gfnet: nn.Module, static: nn.Module,
                     inputs: torch.Tensor) -> None:
    """TorchScript-freeze the ResNets of both models (after their MACs are counted), traced on a
    batch of the benchmark's ``inputs`` (B, 3, H, W) and of patches (unless ``--no-freeze``)."""
    sample = inputs[:min(4, inputs.shape[0])]
    patches = sample[..., :args.patch_size, :args.patch_size].contiguous()
    freeze_from_args(args, static, {'0': sample})
    freeze_from_args(args, gfnet, {'global_encoder.backbone': patches,
                                   'local_encoder.backbone': patches})


class _LastMap(nn.Module):
    def forward(self, outs):
        return outs[-1]


def benchmark(args: argparse.Namespace) -> Dict:
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    from mmdynamic.models.utils.early_exit import EarlyExitExecutor
    from mmdynamic.utils.flops import count_macs
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    gfnet, static = build_models(args)
    size = args.input_size
    inputs = torch.randn(args.batch_size, 3, size, size)
    static_macs = count_macs(static, (inputs[:1], ))
    inputs = inputs.contiguous(memory_format=memory_format_from_args(args))
    exit_costs = gfnet.exit_macs((3, size, size))
    freeze_backbones(args, gfnet, static, inputs)
    if args.relative_budgets:
        budgets = [r * static_macs for r in args.relative_budgets]
    else:
        budgets = [b * 1e9 for b in args.budgets]
    with torch.inference_mode():
        exit_logits = gfnet.forward_exits(inputs)
    solver = BudgetSolver(exit_logits, exit_costs, 'max_softmax', model='GFNet', fit_split='val')
    points = []
    for budget in budgets:
        policy = solver.policy_for_budget(budget)
        executor = EarlyExitExecutor(policy.thresholds, 'max_softmax')
        with torch.inference_mode():
            result = executor.run(gfnet, inputs)
        counts = torch.bincount(result.exits, minlength=len(exit_costs)).double()
        realised = float((counts / counts.sum() * torch.tensor(exit_costs).double()).sum())
        points.append(dict(budget=budget, executor=executor, realised=realised,
                           fractions=(counts / counts.sum()).tolist()))
    fns = [lambda: static(inputs)] + [lambda p=p: p['executor'].run(gfnet, inputs) for p in points]
    with torch.inference_mode():
        static_s, *point_s = time_round_robin(fns, args.runs, args.warmup)
    static_ips = args.batch_size / static_s
    rows = []
    for i, p in enumerate(points):
        ips = args.batch_size / point_s[i]
        speedup = ips / static_ips
        macs_ratio = static_macs / p['realised']
        rows.append(dict(budget_gmacs=p['budget'] / 1e9, realised_gmacs=p['realised'] / 1e9,
                         exit_fractions=p['fractions'], images_per_s=ips, speedup=speedup,
                         macs_ratio=macs_ratio, quotient=speedup / macs_ratio))
    return dict(static_gmacs=static_macs / 1e9, static_images_per_s=static_ips,
                exit_gmacs=[c / 1e9 for c in exit_costs], rows=rows)


def fit_points(model, batches: Sequence[torch.Tensor], exit_costs: Sequence[float],
               budgets: Sequence[float], confidence: str = 'max_softmax') -> List[Dict]:
    """The thresholds of each budget (MACs per sample) fitted on the confidences of ``batches``
    (every step of the step-wise ``model`` run once, untimed; each batch as the model's own early
    exit runs it). Shared by the throughput modes of the GFNet, MGNet and AdaFocus benchmarks."""
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    from mmdynamic.models.utils.step_major import executor_view
    with torch.inference_mode():
        views = [executor_view(model, b) for b in batches]
        exit_logits = torch.cat([steps.forward_exits(inputs) for steps, inputs in views], dim=1)
        del views
    solver = BudgetSolver(exit_logits, list(exit_costs), confidence, model=type(model).__name__,
                          fit_split='val')
    return [dict(budget=budget, thresholds=solver.policy_for_budget(budget).thresholds)
            for budget in budgets]


def time_stream(static_fn, model, batches: Sequence[torch.Tensor], points: List[Dict],
                exit_costs: Sequence[float], static_macs: float, confidence: str,
                batch_size: int, max_queued: Optional[int], runs: int, warmup: int,
                static_batches: Optional[Sequence[torch.Tensor]] = None) -> Dict:
    """Time a stream (``batches``, each (B, ...)) through the static baseline (``static_fn`` on
    each of ``static_batches``, default ``batches``: the same samples in its input format), the
    per-batch executor and the step-major executor at every operating point of ``points``
    (:func:`fit_points`: ``budget`` and ``thresholds``), round-robin, under
    ``torch.inference_mode()``.

    Returns:
        dict: ``static_per_s`` (samples/s) and ``rows``: per point and executor the realised MACs
        per sample (from the stream's exits, the same for both executors), exit fractions,
        samples/s, speed-up, MACs ratio, quotient and, step-major, the mean samples per step call.
    """
    from mmdynamic.models.utils.early_exit import EarlyExitExecutor
    from mmdynamic.models.utils.step_major import StepMajorExecutor, executor_view, run_stream
    num = sum(int(b.shape[0]) for b in batches)
    occupancy: Dict[int, List[List[int]]] = {}
    exits: Dict[int, torch.Tensor] = {}

    def per_batch(p):
        executor = EarlyExitExecutor(p['thresholds'], confidence)
        for b in batches:
            executor.run(*executor_view(model, b))

    def step_major(i, p):
        executor = StepMajorExecutor(p['thresholds'], confidence, batch_size=batch_size,
                                     max_queued=max_queued)
        exits[i] = run_stream(executor, model, batches).exits
        occupancy[i] = executor.step_batches

    static_batches = batches if static_batches is None else static_batches
    fns = [lambda: [static_fn(b) for b in static_batches]]
    for i, p in enumerate(points):
        fns += [lambda p=p: per_batch(p), lambda i=i, p=p: step_major(i, p)]
    with torch.inference_mode():
        static_s, *point_s = time_round_robin(fns, runs, warmup)
    static_per_s = num / static_s
    costs = torch.tensor([float(c) for c in exit_costs], dtype=torch.float64)
    rows = []
    for i, p in enumerate(points):
        fractions = torch.bincount(exits[i], minlength=len(costs)).double() / num
        realised = float((fractions * costs).sum())
        macs_ratio = static_macs / realised
        for mode, seconds in (('per-batch', point_s[2 * i]), ('step-major', point_s[2 * i + 1])):
            speedup = num / seconds / static_per_s
            rows.append(dict(budget_gmacs=p['budget'] / 1e9, mode=mode,
                             realised_gmacs=realised / 1e9, exit_fractions=fractions.tolist(),
                             per_s=num / seconds, speedup=speedup, macs_ratio=macs_ratio,
                             quotient=speedup / macs_ratio,
                             step_batch_means=([sum(s) / len(s) if s else 0.0
                                                for s in occupancy[i]]
                                               if mode == 'step-major' else None)))
    return dict(static_per_s=static_per_s, rows=rows)


def stream_rows(rows: List[Dict], name: str) -> List[str]:
    """Markdown rows of :func:`time_stream`'s rows (after a header of 9 columns)."""
    lines = []
    for row in rows:
        fractions = '/'.join(f'{f:.2f}' for f in row['exit_fractions'])
        occupancy = ('/'.join(f'{m:.1f}' for m in row['step_batch_means'])
                     if row['step_batch_means'] else '-')
        lines.append(f"| {name} @ {row['budget_gmacs']:.3g} G | {row['mode']} | "
                     f"{row['realised_gmacs']:.4g} | {fractions} | {row['per_s']:.1f} | "
                     f"{row['speedup']:.2f} | {row['macs_ratio']:.2f} | {row['quotient']:.2f} | "
                     f'{occupancy} |')
    return lines


STREAM_HEADER = ('| model | executor | GMACs/sample | exit fractions | samples/s | speed-up | '
                 'MACs ratio | quotient | samples per step call |\n'
                 '|---|---|---|---|---|---|---|---|---|')


def load_average() -> str:
    """The 1/5/15-minute load averages (the machine's load during a measurement)."""
    return ', '.join(f'{v:.1f}' for v in os.getloadavg()) if hasattr(os, 'getloadavg') else 'n/a'


def benchmark_stream(args: argparse.Namespace) -> Dict:
    """Throughput mode: a stream of ``--stream`` images through the static backbone, the
    per-batch executor and the step-major executor (see the module docstring)."""
    from mmdynamic.utils.flops import count_macs
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    gfnet, static = build_models(args)
    size = args.input_size
    images = torch.randn(args.stream, 3, size, size)
    static_macs = count_macs(static, (images[:1], ))
    images = images.contiguous(memory_format=memory_format_from_args(args))
    batches = list(images.split(args.batch_size))
    exit_costs = gfnet.exit_macs((3, size, size))
    freeze_backbones(args, gfnet, static, batches[0])
    budgets = ([r * static_macs for r in args.relative_budgets] if args.relative_budgets else
               [b * 1e9 for b in args.budgets])
    points = fit_points(gfnet, batches, exit_costs, budgets)
    result = time_stream(static, gfnet, batches, points, exit_costs, static_macs, 'max_softmax',
                         args.batch_size, args.max_queued, args.runs, args.warmup)
    result.update(static_gmacs=static_macs / 1e9, exit_gmacs=[c / 1e9 for c in exit_costs],
                  load=load_average())
    return result


def format_stream_table(args: argparse.Namespace, result: Dict) -> str:
    lines = [
        f'CPU: {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s), stream of '
        f'{args.stream} images of {args.input_size} px in batches of {args.batch_size}, median of '
        f'{args.runs} round-robin runs of the whole stream; BN '
        f'{"unfolded" if args.no_fuse_bn else "folded"}, {args.memory_format} and '
        f'{encoder_note(args)} ResNets in both models; {allocator_note()}; load average at the end '
        f"{result['load']} on {os.cpu_count()} CPUs",
        'GFNet exits (cumulative GMACs): '
        + ', '.join(f'{g:.4g}' for g in result['exit_gmacs']), '', STREAM_HEADER,
        f"| ResNet-{args.depth} | static | {result['static_gmacs']:.4g} | - | "
        f"{result['static_per_s']:.1f} | 1.00 | 1.00 | 1.00 | {args.batch_size} |",
    ]
    return '\n'.join(lines + stream_rows(result['rows'], 'GFNet'))


def format_table(args: argparse.Namespace, result: Dict) -> str:
    lines = [
        f'CPU: {cpu_name()}, torch {torch.__version__}, '
        f'{args.threads} thread(s), batch {args.batch_size}, {args.input_size} px, '
        f'median of {args.runs} runs; BN {"unfolded" if args.no_fuse_bn else "folded"}, '
        f'{args.memory_format} and {encoder_note(args)} '
        f'ResNets in both models; {allocator_note()}',
        'GFNet exits (cumulative GMACs): '
        + ', '.join(f'{g:.4g}' for g in result['exit_gmacs']), '',
        '| model | GMACs/img | exit fractions | images/s | speed-up | MACs ratio | quotient |',
        '|---|---|---|---|---|---|---|',
        f"| ResNet-{args.depth} | {result['static_gmacs']:.4g} | - | "
        f"{result['static_images_per_s']:.1f} | 1.00 | 1.00 | 1.00 |",
    ]
    for row in result['rows']:
        fractions = '/'.join(f'{f:.2f}' for f in row['exit_fractions'])
        lines.append(f"| GFNet @ {row['budget_gmacs']:.3g} G | {row['realised_gmacs']:.4g} | "
                     f"{fractions} | {row['images_per_s']:.1f} | {row['speedup']:.2f} | "
                     f"{row['macs_ratio']:.2f} | {row['quotient']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.stream:
        result = benchmark_stream(args)
        table = format_stream_table(args, result)
    else:
        result = benchmark(args)
        table = format_table(args, result)
    emit_report(table, args.out)
    return result


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
