# Copyright (c) mmdynamic contributors. All rights reserved.
"""Speed of Uni-AdaFocus (MobileNet-V2 + ResNet-50, ActivityNet setting) against the same two
backbones on full frames.

All models run on the same ``--videos`` random videos (T_0 = 48 frames each), at every batch size in
turn (the videos split into consecutive batches; per-video latency = time for all of them / their
number). Models (random weights, BN statistics calibrated on two other random videos so that the
activations keep unit scale and the confidences differ between videos, see :func:`calibrate_bn`; the
latency does not depend on the weights), both from mmaction2's backbones:

- static: MobileNet-V2 on 16 full frames + ResNet-50 on 16 full frames (the "TSM+"-style pair of the paper),
  pooled features summed through two linear heads;
- Uni-AdaFocus (P = ``--patch-size``): T_0 = 48 candidates, 16 glance frames, 16 focus patches, all exits
  computed in one batched pass (no early exit);
- Uni-AdaFocus with early exit, once per ``--focus-chunks`` value c (f_L encodes c focus patches per call,
  see ``UniAdaFocus(focus_chunk=...)``; c = 1 is exactly the work of the exits taken): thresholds (negative
  entropy) fitted with the budget solver, on an untimed pass over the same videos, for a budget of
  ``--budget-fraction`` of the full cost (0.665 is the paper's operating point A, 18.1 of 27.2 GFLOPs)
  with the exit costs of that c, so that the timed videos exit as at that operating point (as the GFNet
  tool does); the executor then really skips f_L for exited videos. The realised cost (work done ahead
  within a chunk included) and the share of videos that leave before the last exit are reported.

All models are prepared alike for CPU inference (:func:`mmdynamic.utils.benchmark.prepare_for_inference`:
BN folded into the convolutions unless ``--no-fuse-bn``, channels-last unless ``--memory-format
contiguous``; the four encoders TorchScript-frozen by :func:`~mmdynamic.utils.benchmark.freeze_submodules`
unless ``--no-freeze``, which matters for the few patches per f_L call of early exit; fused by oneDNN
Graph with ``--onednn-graph``), timed interleaved (:func:`~mmdynamic.utils.benchmark.time_interleaved`:
each batch of videos through every model in turn, then the next batch, so that the drifting load of a
shared machine hits all alike) under ``torch.inference_mode()``, and the script restarts itself with the
tuned glibc allocator setting of :mod:`mmdynamic.utils.benchmark` unless ``--system-malloc``.

For each batch size the report gives the per-video latency, videos/s, GMACs per video (counted from the
modules, BN not counted), the speed-up over the static pair, the GMACs ratio and their quotient (the
issue's target: speed-up >= 0.8 of the GMACs ratio).

Throughput mode (``--stream``, issue #20): the ``--videos`` videos are one stream, timed as a whole at
each batch size: the static pair batch by batch, and Uni-AdaFocus early exit (per focus chunk) with the
per-batch executor and with the step-major executor
(:class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`: the survivors of all batches pooled per
step, so that f_L reads full batches of patches); thresholds as above
(:mod:`mmdynamic.utils.stream_benchmark`). The realised cost is that of the stream's exits (the same for
both executors). ``--step-times`` adds where the time goes: every step of each executor (exit 0: the
MobileNet-V2 glance; exit 1: the policy, the crops and focus patch 1; exit k: focus patch k, ResNet-50)
and the two encoders of the static pair.

Device (``--device``, default ``cpu``; ``cuda`` or ``cuda:N``): the models and videos run there, timed
with CUDA events on a GPU (:func:`~mmdynamic.utils.benchmark.time_interleaved`); the report names the
device. The CPU preparations (TorchScript freezing, oneDNN Graph, the allocator) do not apply on CUDA.

Example:
    python tools/analysis_tools/benchmark_adafocus.py --batch-sizes 1 8 --runs 3 --out uaf.md
    python tools/analysis_tools/benchmark_adafocus.py --batch-sizes 8 --videos 64 --stream \
        --focus-chunks 1 --runs 1 --warmup 0 --step-times
    python tools/analysis_tools/benchmark_adafocus.py --device cuda --batch-sizes 16 --videos 16
"""
import argparse
import copy
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
                                       setting_note, time_interleaved)
from mmdynamic.utils.stream_benchmark import (STEP_TIMES_HEADER, STREAM_HEADER,  # noqa: E402
                                              StreamSetup, add_stream_args, fit_points,
                                              load_average, measure_step_times, step_time_rows,
                                              stream_rows, time_stream)

BN_FOLDED = {'aten::batch_norm': None}
STATIC_NAME = 'MN2 + R50 on 16 full frames'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Speed of Uni-AdaFocus vs MN2 + R50')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--runs', type=int, default=3, help='timed batches per model')
    parser.add_argument('--warmup', type=int, default=1, help='untimed batches per model first')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--patch-size', type=int, default=128)
    parser.add_argument('--min-box-size', type=float, default=96)
    parser.add_argument('--budget-fraction', type=float, default=0.665,
                        help='early-exit budget as a fraction of the full Uni-AdaFocus cost')
    parser.add_argument('--focus-chunks', type=int, nargs='+', default=[1, 4, 8],
                        help='focus patches per f_L call in the early-exit rows (one row each)')
    parser.add_argument('--videos', type=int, default=16,
                        help='random videos timed (and fitted on); a multiple of every batch size')
    parser.add_argument('--stream', action='store_true',
                        help='throughput mode: the videos as one stream, per-batch against '
                        'step-major early exit')
    add_stream_args(parser)
    add_inference_args(parser, freeze=True, device=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    args = parser.parse_args(argv)
    check_inference_args(parser, args)
    if any(c < 1 for c in args.focus_chunks):
        parser.error(f'--focus-chunks must be positive, got {args.focus_chunks}')
    if any(b < 1 or (args.videos % b and not args.stream) for b in args.batch_sizes):
        parser.error(f'--videos ({args.videos}) must be a multiple of every batch size (the '
                     f'stream of --stream may end with a remainder), got {args.batch_sizes}')
    if args.step_times and not args.stream:
        parser.error('--step-times times the steps of the throughput mode: give --stream')
    return args


class StaticPair(nn.Module):
    """MobileNet-V2 and ResNet-50 on every frame, pooled, two linear heads summed.

    Args:
        global_encoder (nn.Module), local_encoder (nn.Module): 2D backbones returning feature maps.
        num_classes (int): Number of classes.
    """

    def __init__(self, global_encoder: nn.Module, local_encoder: nn.Module,
                 num_classes: int = 200) -> None:
        super().__init__()
        self.global_encoder = global_encoder
        self.local_encoder = local_encoder
        self.fc_global = nn.Linear(1280, num_classes)
        self.fc_local = nn.Linear(2048, num_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Args: frames (B, T, C, H, W). Returns: (B, num_classes)."""
        batch, steps = frames.shape[:2]
        flat = frames.flatten(0, 1)
        g = self.global_encoder(flat).mean(dim=(-2, -1)).view(batch, steps, -1).mean(1)
        l = self.local_encoder(flat).mean(dim=(-2, -1)).view(batch, steps, -1).mean(1)  # noqa: E741
        return self.fc_global(g) + self.fc_local(l)


def random_videos(num: int, size: int, seed: int) -> torch.Tensor:
    """(num, 48, 3, size, size) standard-normal videos from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num, 48, 3, size, size, generator=gen)


@torch.no_grad()
def calibrate_bn(model: nn.Module, forward) -> None:
    """Set every BN's running statistics to those of ``forward()`` (training mode), then eval.

    With random weights and the initial statistics (mean 0, variance 1), MobileNet-V2's features
    shrink to about 1e-8: every video then gets the same glance-exit confidence and no budget can be
    fitted. Calibrated statistics keep the activations at unit scale, as trained ones roughly do; the
    latency does not change.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the calibration batches
    model.train()
    forward()
    model.eval()


def build_models(args: argparse.Namespace):
    import mmdynamic.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    torch.manual_seed(args.seed)
    device = device_from_args(args)
    feature = -(-args.image_size // 32)
    uni = MODELS.build(dict(type='UniAdaFocus', backbone=dict(type='MobileNetV2'),
                            local_backbone=dict(type='ResNet', depth=50), num_classes=200,
                            feature_size=feature, patch_size=args.patch_size,
                            min_box_size=args.min_box_size)).eval().to(device)
    static = StaticPair(MODELS.build(dict(type='MobileNetV2')),
                        MODELS.build(dict(type='ResNet', depth=50))).eval().to(device)
    calibration = random_videos(2, args.image_size, args.seed + 1).to(device)
    calibrate_bn(uni, lambda: uni.forward_steps(calibration))
    calibrate_bn(static, lambda: static(calibration[:, 1::3]))
    prepare_from_args(args, uni, static)
    return uni, static


def fit_policy(exits: torch.Tensor, exit_costs: List[float], fraction: float):
    """Thresholds for ``fraction`` of the full cost on ``exits`` (K, N, C) of the videos."""
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    # the videos are then run in other batches (see fit_thresholds)
    solver = BudgetSolver(exits, exit_costs, 'neg_entropy', model='UniAdaFocus', midpoints=True)
    budget = min(max(fraction * exit_costs[-1], exit_costs[0]), exit_costs[-1])
    return solver.policy_for_budget(budget)


def early_exit_variants(uni, videos: torch.Tensor, args: argparse.Namespace
                        ) -> List[Tuple[int, object, List[float]]]:
    """Per focus chunk c: (c, a copy of ``uni`` with that chunk, its exit costs on ``videos``)."""
    variants = []
    for chunk in args.focus_chunks:
        model = copy.deepcopy(uni)
        model.set_focus_chunk(chunk)
        variants.append((chunk, model, [float(c) for c in model.exit_macs_for(videos.shape[1:])]))
    return variants


def fit_executors(uni, videos: torch.Tensor, variants, args: argparse.Namespace) -> list:
    """One :class:`EarlyExitExecutor` per variant, fitted with its costs on the exit logits of
    ``videos`` (N, T_0, C, H, W) (computed by ``uni`` as prepared for timing)."""
    from mmdynamic.models.utils import EarlyExitExecutor
    with torch.inference_mode():
        exits = torch.cat([uni.forward_exits(v[None]).cpu() for v in videos], dim=1)
    executors = []
    for _, _, costs in variants:
        policy = fit_policy(exits, costs, args.budget_fraction)
        executors.append(EarlyExitExecutor(policy.thresholds, policy.confidence))
    return executors


def freeze_encoders(args: argparse.Namespace, uni, static, variants) -> None:
    """TorchScript-freeze f_G and f_L of Uni-AdaFocus (shared by its early-exit variants) and both
    encoders of the static pair, after their MACs are counted (unless ``--no-freeze``)."""
    frames = torch.randn(16, 3, args.image_size, args.image_size)
    patches = torch.randn(4, 3, args.patch_size, args.patch_size)
    static_frames = frames.contiguous(memory_format=memory_format_from_args(args))
    freeze_from_args(args, static, dict(global_encoder=static_frames, local_encoder=static_frames))
    # the glance frames and the patches reach the encoders in the contiguous format
    freeze_from_args(args, uni, dict(backbone=frames, local_backbone=patches))
    for _, model, _ in variants:
        model.backbone, model.local_backbone = uni.backbone, uni.local_backbone


def batch_calls(fn, data: torch.Tensor, batch: int) -> list:
    """One call of ``fn`` per consecutive batch of ``data`` (N, ...), to time interleaved."""
    return [lambda i=i: fn(data[i:i + batch]) for i in range(0, data.shape[0], batch)]


def in_batches(fn, data: torch.Tensor, batch: int) -> list:
    """``fn`` on consecutive batches of ``data`` (N, ...): the results of :func:`batch_calls`."""
    return [call() for call in batch_calls(fn, data, batch)]


def setup_models(args: argparse.Namespace) -> Dict:
    """Everything both modes time, on ``--device``: ``uni`` and ``static`` (prepared, encoders
    frozen unless ``--no-freeze``), ``static_macs``, ``videos`` (N, 48, 3, H, W), ``frames`` (N, 16,
    3, H, W) (the 16 middle frames of the 48 candidates, in the models' memory format),
    ``variants`` (:func:`early_exit_variants`) and, without ``--stream``, ``full_cost`` (MACs of
    every step of ``uni`` per video); MACs are counted before freezing (the counter does not read
    frozen modules)."""
    from mmdynamic.utils.flops import count_macs
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = device_from_args(args)
    uni, static = build_models(args)
    size = args.image_size
    static_macs = count_macs(static, torch.zeros(1, 16, 3, size, size, device=device),
                             op_handles=BN_FOLDED)
    videos = random_videos(args.videos, size, args.seed).to(device)
    frames = videos[:, 1::3].flatten(0, 1).contiguous(
        memory_format=memory_format_from_args(args)).view(args.videos, 16, 3, size, size)
    variants = early_exit_variants(uni, videos, args)
    full_cost = None if args.stream else float(uni.exit_macs_for(tuple(videos.shape[1:]))[-1])
    freeze_encoders(args, uni, static, variants)
    return dict(uni=uni, static=static, static_macs=static_macs, videos=videos, frames=frames,
                variants=variants, full_cost=full_cost)


def run(args: argparse.Namespace) -> List[Dict]:
    prepared = setup_models(args)
    uni, static, videos, frames, variants = (prepared[k] for k in ('uni', 'static', 'videos',
                                                                   'frames', 'variants'))
    static_macs, full_cost = prepared['static_macs'], prepared['full_cost']
    executors = fit_executors(uni, videos, variants, args)
    rows = []
    for batch in args.batch_sizes:
        names = [STATIC_NAME, f'Uni-AdaFocus P={args.patch_size}']
        parts = [batch_calls(static, frames, batch), batch_calls(uni.forward_steps, videos, batch)]
        macs, early = [static_macs, full_cost], [None, None]
        for (chunk, model, costs), executor in zip(variants, executors):
            def early_exit(x, m=model, e=executor):
                return m.early_exit(x, e)

            with torch.inference_mode():
                exits = torch.cat([r.exits.cpu()
                                   for r in in_batches(early_exit, videos, batch)])
            names.append(f'Uni-AdaFocus P={args.patch_size}, early exit'
                         + (f', f_L on {chunk} patches per call' if chunk > 1 else ''))
            parts.append(batch_calls(early_exit, videos, batch))
            macs.append(float(torch.tensor(costs, dtype=torch.float64)[exits].mean()))
            early.append(float((exits < len(costs) - 1).double().mean()))
        with torch.inference_mode():
            seconds = time_interleaved(parts, args.runs, args.warmup,
                                       device=device_from_args(args))
        for name, secs, cost, left in zip(names, seconds, macs, early):
            speedup = seconds[0] / secs
            ratio = static_macs / cost
            rows.append(dict(model=name, batch=batch, latency_ms=secs / args.videos * 1e3,
                             videos_per_s=args.videos / secs, gmacs=cost / 1e9,
                             exited_early=left, speedup=speedup, gmacs_ratio=ratio,
                             quotient=speedup / ratio))
    return rows


def step_names(model: nn.Module) -> List[str]:
    """The name of each Uni-AdaFocus exit in the step-time table."""
    return (['glance (MobileNet-V2)', 'policy, crops, focus 1 (ResNet-50)'] +
            [f'focus {k} (ResNet-50)' for k in range(2, model.num_exits)])


STATIC_PARTS = {'MobileNet-V2 (frames)': 'global_encoder', 'ResNet-50 (frames)': 'local_encoder'}


def run_stream_mode(args: argparse.Namespace) -> Tuple[str, List[Dict]]:
    """Throughput mode: the static pair and Uni-AdaFocus early exit, per-batch and step-major, on
    the stream of ``--videos`` videos at each batch size.

    Returns:
        tuple: the report (markdown) and, per batch size and focus chunk, ``batch``, ``chunk`` and
        the result of :func:`~mmdynamic.utils.stream_benchmark.time_stream` (with
        ``step_times`` under ``--step-times``).
    """
    prepared = setup_models(args)
    videos, frames, static_macs = prepared['videos'], prepared['frames'], prepared['static_macs']
    name = f'Uni-AdaFocus P={args.patch_size}'
    lines = [f'{setting_note(args)}, {args.image_size} px frames, a stream of {args.videos} random '
             f'videos timed as a whole, median of {args.runs} round-robin runs; thresholds fitted '
             f'on the stream for {args.budget_fraction:g} of the full cost; BN '
             f"{'unfolded' if args.no_fuse_bn else 'folded'}, {args.memory_format} and "
             f'{encoder_note(args)} encoders in all models; {allocator_note()}']
    results = []
    for batch in args.batch_sizes:
        for chunk, model, costs in prepared['variants']:
            setup = StreamSetup(model=model, batches=list(videos.split(batch)),
                                static_fn=prepared['static'], static_macs=static_macs,
                                exit_costs=costs, batch_size=batch, confidence='neg_entropy',
                                max_queued=args.max_queued,
                                static_batches=list(frames.split(batch)),
                                device=device_from_args(args), step_names=step_names(model),
                                static_parts=STATIC_PARTS)
            budget = min(max(args.budget_fraction * costs[-1], costs[0]), costs[-1])
            points = fit_points(setup, [budget])
            result = time_stream(setup, points, args.runs, args.warmup)
            lines += ['', f'batch {batch}, f_L on {chunk} focus patch(es) per call; load average '
                      f'at the end {load_average()}', '', STREAM_HEADER,
                      f'| {STATIC_NAME} | static | {static_macs / 1e9:.4g} | - | '
                      f"{result['static_per_s']:.2f} | 1.00 | 1.00 | 1.00 | {batch} |"]
            lines += stream_rows(result['rows'], name)
            if args.step_times:
                result['step_times'] = measure_step_times(setup, points)
                lines += ['', f'batch {batch}, f_L on {chunk} focus patch(es) per call: where the '
                          'time goes (one more pass per executor, every step timed; the static '
                          "pair's encoders per frame)", '', STEP_TIMES_HEADER]
                lines += step_time_rows(result['step_times'], name, STATIC_NAME, args.videos)
            results.append(dict(batch=batch, chunk=chunk, **result))
    return '\n'.join(lines), results


def format_table(rows: List[Dict], args: argparse.Namespace) -> str:
    bn = 'unfolded' if args.no_fuse_bn else 'folded into the convs'
    encoders = encoder_note(args)
    lines = [f'{setting_note(args)}, {args.image_size} px frames, median of {args.runs} '
             f'rounds over {args.videos} random videos (batches interleaved across models), '
             f'random weights; early-exit thresholds fitted on these videos for '
             f'{args.budget_fraction:g} of the full cost; BN {bn}, {args.memory_format} and '
             f'{encoders} encoders in all models; '
             f'{allocator_note()}', '',
             '| model | batch | ms / video | videos / s | GMACs / video | exited early | speed-up | '
             'GMACs ratio | speed-up / GMACs ratio |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        exited = '-' if r['exited_early'] is None else f"{r['exited_early']:.0%}"
        lines.append(f"| {r['model']} | {r['batch']} | {r['latency_ms']:.1f} | "
                     f"{r['videos_per_s']:.2f} | {r['gmacs']:.2f} | {exited} | "
                     f"{r['speedup']:.2f}x | {r['gmacs_ratio']:.2f}x | {r['quotient']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    report = run_stream_mode(args)[0] if args.stream else format_table(run(args), args)
    emit_report(report, args.out)


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
