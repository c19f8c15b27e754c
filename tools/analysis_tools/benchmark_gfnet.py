# Copyright (c) mmdynamic contributors. All rights reserved.
"""Throughput of GF-ResNet-50 with batched early exit against ResNet-50 (GFNet Tab. 1).

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
operating point are fitted on the stream's own confidences (every step run once, untimed; each halfway
between two scores, :func:`~mmdynamic.evaluation.functional.budget.fit_thresholds`); the realised MACs
are those of each executor's exits of the stream (the same exits, unless regrouping the samples moves a
score across a threshold). The table adds the mean
samples per call of each step. With ``--step-times`` a second table gives, per executor, the time of
every step (step 0: the glance, f_G on the downsampled image; step k: focus patch k, f_L) and of the
executor's own work, and the ResNet of the static model apart from its head
(:mod:`mmdynamic.utils.stream_benchmark`).

Device (``--device``, default ``cpu``; ``cuda`` or ``cuda:N``): the models and images run there and are
timed with CUDA events (:func:`~mmdynamic.utils.benchmark.time_interleaved`); the report names the
device. The CPU preparations (TorchScript freezing, oneDNN Graph, the allocator) do not apply on CUDA.

Example:
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_gfnet.py --threads 1 --out gfnet.md
    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_gfnet.py --threads 1 --stream 512 \
        --runs 2 --warmup 0 --step-times --out gfnet_stream.md
    python tools/analysis_tools/benchmark_gfnet.py --device cuda --batch-size 128 --out gfnet_gpu.md
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmdynamic.utils.benchmark import (add_inference_args, allocator_note,  # noqa: E402
                                       check_inference_args, device_from_args, emit_report,
                                       encoder_note, freeze_from_args, memory_format_from_args,
                                       prepare_from_args, reexec_with_tuned_malloc,
                                       setting_note, time_round_robin)
from mmdynamic.utils.stream_benchmark import (STEP_TIMES_HEADER, STREAM_HEADER,  # noqa: E402
                                              StreamSetup, add_stream_args, fit_points,
                                              load_average, measure_step_times, step_time_rows,
                                              stream_rows, time_stream)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Throughput of GFNet vs its backbone')
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
    add_stream_args(parser)
    add_inference_args(parser, freeze=True, device=True)
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    args = parser.parse_args(argv)
    check_inference_args(parser, args)
    if args.stream < 0 or (args.stream and args.stream < args.batch_size):
        parser.error(f'--stream must be 0 or at least --batch-size ({args.batch_size}) images')
    if args.step_times and not args.stream:
        parser.error('--step-times times the steps of the throughput mode: give --stream N')
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


def step_names(args: argparse.Namespace) -> List[str]:
    """The name of each GFNet step in the step-time table."""
    return ['glance (f_G)'] + [f'focus {k} (f_L)' for k in range(1, args.num_steps)]


def setup_models(args: argparse.Namespace, num_images: int
                 ) -> Tuple[nn.Module, nn.Module, torch.Tensor, float, List[float]]:
    """The two models (prepared, on ``--device``), the images (N, 3, H, W) there, the static
    model's MACs and GFNet's exit costs per image (counted on the CPU, before freezing)."""
    from mmdynamic.utils.flops import count_macs
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = device_from_args(args)
    gfnet, static = build_models(args)
    size = args.input_size
    images = torch.randn(num_images, 3, size, size)
    static_macs = count_macs(static, (images[:1], ))
    exit_costs = [float(c) for c in gfnet.exit_macs((3, size, size))]
    gfnet.to(device)
    static.to(device)
    images = images.to(device).contiguous(memory_format=memory_format_from_args(args))
    freeze_backbones(args, gfnet, static, images[:args.batch_size])
    return gfnet, static, images, static_macs, exit_costs


def budgets_from_args(args: argparse.Namespace, static_macs: float) -> List[float]:
    """The operating points in MACs per image."""
    if args.relative_budgets:
        return [r * static_macs for r in args.relative_budgets]
    return [b * 1e9 for b in args.budgets]


def benchmark(args: argparse.Namespace) -> Dict:
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    from mmdynamic.models.utils.early_exit import EarlyExitExecutor
    gfnet, static, inputs, static_macs, exit_costs = setup_models(args, args.batch_size)
    with torch.inference_mode():
        exit_logits = gfnet.forward_exits(inputs).cpu()
    # the stream is then run in other batches (see fit_thresholds)
    solver = BudgetSolver(exit_logits, exit_costs, 'max_softmax', model='GFNet', fit_split='val',
                          midpoints=True)
    costs = torch.tensor(exit_costs, dtype=torch.float64)
    points = []
    for budget in budgets_from_args(args, static_macs):
        policy = solver.policy_for_budget(budget)
        executor = EarlyExitExecutor(policy.thresholds, 'max_softmax')
        with torch.inference_mode():
            result = executor.run(gfnet, inputs)
        fractions = torch.bincount(result.exits.cpu(), minlength=len(exit_costs)).double()
        fractions /= fractions.sum()
        points.append(dict(budget=budget, executor=executor,
                           realised=float((fractions * costs).sum()),
                           fractions=fractions.tolist()))
    fns = [lambda: static(inputs)] + [lambda p=p: p['executor'].run(gfnet, inputs) for p in points]
    with torch.inference_mode():
        static_s, *point_s = time_round_robin(fns, args.runs, args.warmup,
                                              device=device_from_args(args))
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


def benchmark_stream(args: argparse.Namespace) -> Dict:
    """Throughput mode: a stream of ``--stream`` images through the static backbone, the
    per-batch executor and the step-major executor (see the module docstring)."""
    gfnet, static, images, static_macs, exit_costs = setup_models(args, args.stream)
    setup = StreamSetup(model=gfnet, batches=list(images.split(args.batch_size)),
                        static_fn=static, static_macs=static_macs, exit_costs=exit_costs,
                        batch_size=args.batch_size, max_queued=args.max_queued,
                        device=device_from_args(args), step_names=step_names(args),
                        static_parts={f'ResNet-{args.depth}': '0'})
    points = fit_points(setup, budgets_from_args(args, static_macs))
    result = time_stream(setup, points, args.runs, args.warmup)
    if args.step_times:
        result['step_times'] = measure_step_times(setup, points)
    result.update(static_gmacs=static_macs / 1e9, exit_gmacs=[c / 1e9 for c in exit_costs],
                  load=load_average())
    return result


def _preparation(args: argparse.Namespace) -> str:
    return (f'BN {"unfolded" if args.no_fuse_bn else "folded"}, {args.memory_format} and '
            f'{encoder_note(args)} ResNets in both models; {allocator_note()}')


def format_stream_table(args: argparse.Namespace, result: Dict) -> str:
    lines = [
        f'{setting_note(args)}, stream of {args.stream} images of {args.input_size} px in batches '
        f'of {args.batch_size}, median of {args.runs} round-robin runs of the whole stream; '
        f"{_preparation(args)}; load average at the end {result['load']}",
        'GFNet exits (cumulative GMACs): '
        + ', '.join(f'{g:.4g}' for g in result['exit_gmacs']), '', STREAM_HEADER,
        f"| ResNet-{args.depth} | static | {result['static_gmacs']:.4g} | - | "
        f"{result['static_per_s']:.1f} | 1.00 | 1.00 | 1.00 | {args.batch_size} |",
    ]
    lines += stream_rows(result['rows'], 'GFNet')
    if 'step_times' in result:
        lines += ['', 'Where the time goes: one more pass of the stream per executor, every step '
                  'timed (device synchronised around each on a GPU)', '', STEP_TIMES_HEADER]
        lines += step_time_rows(result['step_times'], 'GFNet', f'ResNet-{args.depth}',
                                args.stream)
    return '\n'.join(lines)


def format_table(args: argparse.Namespace, result: Dict) -> str:
    lines = [
        f'{setting_note(args)}, batch {args.batch_size}, {args.input_size} px, '
        f'median of {args.runs} runs; {_preparation(args)}',
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
