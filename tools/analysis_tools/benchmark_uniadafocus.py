# Copyright (c) mmdynamic contributors. All rights reserved.
"""CPU speed of Uni-AdaFocus (MobileNet-V2 + ResNet-50, ActivityNet setting) against the same two
backbones on full frames.

Models (random weights; the latency does not depend on them), both from mmaction2's backbones:

- static: MobileNet-V2 on 16 full frames + ResNet-50 on 16 full frames (the "TSM+"-style pair of the paper),
  pooled features summed through two linear heads;
- Uni-AdaFocus (P = ``--patch-size``): T_0 = 48 candidates, 16 glance frames, 16 focus patches, all exits
  computed in one batched pass (no early exit);
- Uni-AdaFocus with early exit: thresholds (negative entropy) fitted with the budget solver on
  ``--fit-videos`` other random videos for a budget of ``--budget-fraction`` of the full cost (0.665 is the
  paper's operating point A, 18.1 of 27.2 GFLOPs); the executor then really skips f_L for exited videos.
  The realised cost of the timed videos is reported.

For each batch size the report gives the per-video latency, videos/s, GMACs per video (counted from the
modules, BN not counted), the speed-up over the static pair, the GMACs ratio and their quotient (the
issue's target: speed-up >= 0.8 of the GMACs ratio).

Example:
    python tools/analysis_tools/benchmark_uniadafocus.py --batch-sizes 1 8 --runs 3 --out uaf.md
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

BN_FOLDED = {'aten::batch_norm': None}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CPU speed of Uni-AdaFocus vs MN2 + R50')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--runs', type=int, default=3, help='timed batches per model')
    parser.add_argument('--warmup', type=int, default=1, help='untimed batches per model first')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--patch-size', type=int, default=128)
    parser.add_argument('--min-box-size', type=float, default=96)
    parser.add_argument('--budget-fraction', type=float, default=0.665,
                        help='early-exit budget as a fraction of the full Uni-AdaFocus cost')
    parser.add_argument('--fit-videos', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    return parser.parse_args(argv)


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


def build_models(args: argparse.Namespace):
    import mmdynamic.models  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    torch.manual_seed(args.seed)
    feature = -(-args.image_size // 32)
    uni = MODELS.build(dict(type='UniAdaFocus', backbone=dict(type='MobileNetV2'),
                            local_backbone=dict(type='ResNet', depth=50), num_classes=200,
                            feature_size=feature, patch_size=args.patch_size,
                            min_box_size=args.min_box_size)).eval()
    static = StaticPair(MODELS.build(dict(type='MobileNetV2')),
                        MODELS.build(dict(type='ResNet', depth=50))).eval()
    return uni, static


def time_batches(fn: Callable[[], object], runs: int, warmup: int) -> float:
    """Median seconds of ``fn()`` over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fit_policy(uni, args: argparse.Namespace, exit_costs: List[float]):
    """Thresholds for ``budget_fraction`` of the full cost, fitted on other random videos."""
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    gen = torch.Generator().manual_seed(args.seed + 1)
    videos = torch.randn(args.fit_videos, 48, 3, args.image_size, args.image_size, generator=gen)
    with torch.inference_mode():
        exits = torch.cat([uni.forward_exits(v[None]) for v in videos], dim=1)
    solver = BudgetSolver(exits, exit_costs, 'neg_entropy', model='UniAdaFocus')
    budget = min(max(args.budget_fraction * exit_costs[-1], exit_costs[0]), exit_costs[-1])
    return solver.policy_for_budget(budget)


def run(args: argparse.Namespace) -> List[Dict]:
    from mmdynamic.models.utils import EarlyExitExecutor
    from mmdynamic.utils.flops import count_macs
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    uni, static = build_models(args)
    size = args.image_size
    exit_costs = [float(c) for c in uni.exit_macs((48, 3, size, size))]
    static_macs = count_macs(static, torch.zeros(1, 16, 3, size, size), op_handles=BN_FOLDED)
    policy = fit_policy(uni, args, exit_costs)
    executor = EarlyExitExecutor(policy.thresholds, policy.confidence)
    rows = []
    gen = torch.Generator().manual_seed(args.seed)
    for batch in args.batch_sizes:
        videos = torch.randn(batch, 48, 3, size, size, generator=gen)
        frames = videos[:, 1::3].contiguous()  # the 16 middle frames of the 48 candidates
        with torch.inference_mode():
            t_static = time_batches(lambda: static(frames), args.runs, args.warmup)
            t_uni = time_batches(lambda: uni.forward_steps(videos), args.runs, args.warmup)
            result = uni.early_exit(videos, executor)
            t_exit = time_batches(lambda: uni.early_exit(videos, executor), args.runs, args.warmup)
        realised = float(torch.tensor(exit_costs, dtype=torch.float64)[result.exits].mean())
        for name, seconds, macs in (('MN2 + R50 on 16 full frames', t_static, static_macs),
                                    (f'Uni-AdaFocus P={args.patch_size}', t_uni, exit_costs[-1]),
                                    (f'Uni-AdaFocus P={args.patch_size}, early exit', t_exit,
                                     realised)):
            speedup = t_static / seconds
            ratio = static_macs / macs
            rows.append(dict(model=name, batch=batch, latency_ms=seconds / batch * 1e3,
                             videos_per_s=batch / seconds, gmacs=macs / 1e9, speedup=speedup,
                             gmacs_ratio=ratio, quotient=speedup / ratio))
    return rows


def format_table(rows: List[Dict], args: argparse.Namespace) -> str:
    lines = [f'CPU, {args.threads} thread(s), {args.image_size} px frames, median of {args.runs} '
             'batches, random weights and inputs', '',
             '| model | batch | ms / video | videos / s | GMACs / video | speed-up | GMACs ratio | '
             'speed-up / GMACs ratio |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['latency_ms']:.1f} | "
                     f"{r['videos_per_s']:.2f} | {r['gmacs']:.2f} | {r['speedup']:.2f}x | "
                     f"{r['gmacs_ratio']:.2f}x | {r['quotient']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    report = format_table(run(args), args)
    print(report)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(report + '\n')


if __name__ == '__main__':
    main()
