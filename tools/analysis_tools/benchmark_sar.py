# Copyright (c) mmdynamic contributors. All rights reserved.
"""CPU latency of SAR-ResNet-50 (dense-masked and patch-sparse) against ResNet-50 (sar.md §5).

Batch 1, 224 x 224, for each requested number of intra-op threads (``torch.set_num_threads``):
median wall-clock latency of ``--runs`` forwards after ``--warmup`` ones, under
``torch.inference_mode()``. The models are timed round-robin (one forward of each per round), so
that background load affects all of them alike. Compared:

- ResNet-50: mmpretrain's ``ResNet(depth=50)`` backbone;
- SAR-R50 G2s2a2b1 (``SARResNet(depth=50, groups=2, alpha=2, beta=1, base_scale=2)``)
  dense-masked: the training-time computation (every refine conv runs densely on masked maps);
- the same model with ``set_sparse_infer(True)``: only the selected patches are refined.

The masks are forced to a requested density: every mask generator still runs (its cost is real
and counted), but its logits are replaced by a fixed random pattern (seeded) with
``round(density * G * K * K)`` refined cells. The table reports the realised mean density
(``backbone.density()``) and the realised MACs (``backbone.last_flops``); ResNet-50's MACs are
counted with :func:`mmdynamic.utils.flops.count_macs` on the BN-folded network (4.09 G, BN not
counted, as in the SAR convention). The models have random weights (the latency does not depend
on them); denormals are flushed to zero in all runs.

Unless ``--no-fuse-bn``, every BN is folded into its conv in all models (mmcv's
``fuse_conv_bn``), and unless ``--memory-format contiguous`` all models and the input are
channels-last (oneDNN's native layout). The outputs are checked against the unfused models and
sparse against dense (``--no-check`` skips this).

Example:
    python tools/analysis_tools/benchmark_sar.py --runs 100 --warmup 20 --out sar_latency.md
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmdynamic.models.backbones.sar_resnet import SARResNet  # noqa: E402
from mmdynamic.models.layers.sar_layers import MaskGenerator  # noqa: E402
from mmdynamic.utils.benchmark import (add_inference_args, allocator_note, cpu_name,  # noqa: E402
                                       emit_report, memory_format_from_args,
                                       prepare_for_inference, prepare_from_args,
                                       reexec_with_tuned_malloc)
from mmdynamic.utils.flops import count_macs  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CPU latency of SAR-ResNet-50 vs ResNet-50')
    parser.add_argument('--runs', type=int, default=50, help='timed forwards per model')
    parser.add_argument('--warmup', type=int, default=10, help='untimed forwards per model first')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--densities', type=float, nargs='+', default=[0.3, 0.5, 0.7])
    parser.add_argument('--groups', type=int, default=2, help='G of SAR-R50 (s2a2b1 fixed)')
    parser.add_argument('--input-size', type=int, default=224)
    add_inference_args(parser)
    parser.add_argument('--no-check', action='store_true',
                        help='skip the output checks (fused vs unfused, sparse vs dense)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--breakdown', action='store_true',
                        help='also time the parts of the models (first thread count, density 0.5 '
                        'or the first density) with forward hooks')
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    return parser.parse_args(argv)


def force_density(model: nn.Module, density: float, seed: int = 0) -> None:
    """Make every mask generator of ``model`` select a fixed random ``density`` of its cells.

    The generator's own computation still runs (and counts its MACs); its logits (B, G, 2, K_h, K_w)
    are replaced by +-1 logits of a fixed pattern with ``round(density * G * K_h * K_w)`` refined
    cells, the same for every image (one pattern per generator and grid: a generator with mask cells
    of a fixed size in pixels gets its grid from the input).

    Args:
        model (nn.Module): A SAR backbone.
        density (float): Wanted fraction of refined cells of each mask, in [0, 1].
        seed (int): Seed of the patterns.
    """
    for index, m in enumerate(mod for mod in model.modules() if isinstance(mod, MaskGenerator)):
        original = type(m).forward.__get__(m)
        patterns: Dict[Tuple[int, int], torch.Tensor] = {}

        def forward(x, meter=None, grid=None, original=original, patterns=patterns, index=index,
                    groups=m.groups):
            logits = original(x, meter, grid)
            size = tuple(logits.shape[-2:])
            if size not in patterns:
                gen = torch.Generator().manual_seed(seed * 1000 + index)
                cells = groups * size[0] * size[1]
                pattern = torch.zeros(cells)
                pattern[torch.randperm(cells, generator=gen)[:round(density * cells)]] = 1
                refine = pattern.view(1, groups, 1, *size) * 2 - 1
                patterns[size] = torch.cat([torch.zeros_like(refine), refine], dim=2)
            return patterns[size].to(logits).expand_as(logits)

        m.forward = forward


def build_resnet50() -> nn.Module:
    """mmpretrain's ResNet-50 backbone in eval mode."""
    from mmpretrain.models import ResNet
    model = ResNet(depth=50)
    model.eval()  # mmpretrain's train() returns None
    return model


def build_sar(groups: int, density: float, seed: int) -> SARResNet:
    """SAR-R50 G{groups}s2a2b1 in eval mode with masks forced to ``density``."""
    model = SARResNet(depth=50, groups=groups, alpha=2, beta=1, base_scale=2)
    model.eval()
    force_density(model, density, seed)
    return model


def _last(out) -> torch.Tensor:
    return out[-1] if isinstance(out, (tuple, list)) else out


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


class Entry:
    """One timed configuration.

    Args:
        name (str): Model name in the table.
        model (nn.Module): The model; SAR models are shared by their dense and sparse entries.
        sparse (bool, optional): ``set_sparse_infer`` value before each forward (SAR only).
    """

    def __init__(self, name: str, model: nn.Module, sparse: Optional[bool] = None) -> None:
        self.name, self.model, self.sparse = name, model, sparse
        self.density: Optional[float] = None
        self.macs: float = 0.0
        self.times: Dict[int, List[float]] = {}

    def __call__(self, x: torch.Tensor):
        return self.model(x)

    def prepare(self) -> None:
        if self.sparse is not None:
            self.model.set_sparse_infer(self.sparse)


def prepare_models(args: argparse.Namespace, x: torch.Tensor) -> Tuple[List[Entry], List[str]]:
    """Build, fuse, convert and check the models.

    Args:
        args (argparse.Namespace): Parsed arguments.
        x (Tensor): (1, 3, S, S) contiguous input.

    Returns:
        tuple: the entries (ResNet-50 first, with MACs and realised densities filled in) and the
        notes of the output checks.
    """
    notes = []
    fmt = memory_format_from_args(args)
    tag = f'G{args.groups}s2a2b1'
    entries = [Entry('ResNet-50', build_resnet50())]
    for density in args.densities:
        sar = build_sar(args.groups, density, args.seed)
        entries.append(Entry(f'SAR-R50 {tag} dense-masked', sar, False))
        entries.append(Entry(f'SAR-R50 {tag} sparse', sar, True))
    with torch.inference_mode():
        entries[0].macs = float(count_macs(
            prepare_for_inference(entries[0].model, channels_last=False, copy_model=True), x))
        checked = set()
        for entry in entries:
            model = entry.model
            if id(model) in checked:
                continue
            checked.add(id(model))
            entry.prepare()
            reference = _last(model(x)).clone() if not args.no_check else None
            prepare_from_args(args, model)
            out = _last(model(x.contiguous(memory_format=fmt)))
            if not torch.isfinite(out).all():
                raise RuntimeError(f'{entry.name}: non-finite outputs')
            if reference is not None and not args.no_fuse_bn:
                notes.append(f'{entry.name}{_density_tag(model)}: BN-folded vs unfolded output, '
                             f'max rel. diff {_rel_diff(out, reference):.1e}')
            if isinstance(model, SARResNet):
                density = model.density().mean().item()
                macs = model.last_flops.mean().item()
                if not args.no_check:
                    model.set_sparse_infer(True)
                    sparse = _last(model(x.contiguous(memory_format=fmt)))
                    notes.append(f'SAR-R50 {tag} at density {density:.2f}: sparse vs dense '
                                 f'output, max rel. diff {_rel_diff(sparse, out):.1e}; MACs equal: '
                                 f'{model.last_flops.mean().item() == macs}')
                for e in entries:
                    if e.model is model:
                        e.density, e.macs = density, macs
    return entries, notes


def _density_tag(model: nn.Module) -> str:
    if isinstance(model, SARResNet) and model.last_masks:
        return f' (density {model.density().mean().item():.2f})'
    return ''


def time_entries(entries: List[Entry], x: torch.Tensor, threads: int, runs: int,
                 warmup: int) -> None:
    """Time the entries round-robin (each round runs every entry once) into ``entry.times``.

    Args:
        entries (list[Entry]): What to time.
        x (Tensor): (1, 3, S, S) input in the models' memory format.
        threads (int): Intra-op threads.
        runs (int): Timed rounds.
        warmup (int): Untimed rounds first.
    """
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for _ in range(warmup):
            for entry in entries:
                entry.prepare()
                entry(x)
        for entry in entries:
            entry.times[threads] = []
        for _ in range(runs):
            for entry in entries:
                entry.prepare()
                start = time.perf_counter()
                entry(x)
                entry.times[threads].append((time.perf_counter() - start) * 1e3)


def _parts(model: nn.Module) -> Dict[str, List[nn.Module]]:
    """The parts of a model to time: per SAR stage its base branch, mask generators, refine blocks,
    fusion (with the 1x1 transforms and the s = 4 pre-pool) and fusion block; for ResNet-50 its
    stages. Stem and head are what remains of the total."""
    if not isinstance(model, SARResNet):
        return {f'layer{i}': [getattr(model, f'layer{i}')] for i in range(1, 5)}
    parts = {}
    for i, stage in enumerate(model.stages):
        fusion = [stage.fuse] + [m for m in (stage.prepool, stage.base_transform,
                                             stage.refine_transform) if m is not None]
        parts.update({f'stage{i + 1} base': list(stage.base),
                      f'stage{i + 1} mask generators': list(stage.masks),
                      f'stage{i + 1} refine': list(stage.refine),
                      f'stage{i + 1} fusion + transforms': fusion,
                      f'stage{i + 1} fusion block': [stage.fusion_block]})
    parts['layer4'] = list(model.layer4)
    return parts


def time_parts(entry: Entry, x: torch.Tensor, threads: int, runs: int,
               warmup: int) -> List[Tuple[str, float]]:
    """Mean wall time (ms) of each part of ``entry``'s model (forward hooks), plus the total."""
    totals: Dict[str, float] = {}
    handles = []
    for name, modules in _parts(entry.model).items():
        totals[name] = 0.0
        for module in modules:
            def pre(mod, args, name=name):
                mod._bench_start = time.perf_counter()

            def post(mod, args, out, name=name):
                totals[name] += time.perf_counter() - mod._bench_start

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            entry.prepare()
            for _ in range(warmup):
                entry(x)
            for name in totals:
                totals[name] = 0.0
            start = time.perf_counter()
            for _ in range(runs):
                entry(x)
            total = (time.perf_counter() - start) * 1e3 / runs
    finally:
        for handle in handles:
            handle.remove()
    rows = [(name, value * 1e3 / runs) for name, value in totals.items()]
    return rows + [('stem, head and the rest', total - sum(v for _, v in rows)), ('total', total)]


def breakdown_table(entries: List[Entry], x: torch.Tensor, threads: int, runs: int,
                    warmup: int, density: float) -> List[str]:
    """Markdown rows: the parts of ResNet-50 and of SAR sparse at ``density``."""
    sparse = [e for e in entries if e.sparse]
    chosen = min(sparse, key=lambda e: abs((e.density or 0) - density))
    lines = [f'Parts ({threads} thread(s), mean of {runs} runs): ResNet-50 and {chosen.name} '
             f'at density {chosen.density:.2f}', '', '| model | part | ms |', '|---|---|---|']
    for entry in (entries[0], chosen):
        for name, ms in time_parts(entry, x, threads, runs, warmup):
            lines.append(f'| {entry.name} | {name} | {ms:.2f} |')
    return lines


def make_table(entries: List[Entry], threads: Sequence[int]) -> List[str]:
    """Markdown rows: latency, speed-up, MACs, MACs ratio and their quotient vs ResNet-50."""
    base = entries[0]
    lines = ['| model | density | threads | latency (ms, median) | speed-up vs ResNet-50 | '
             'MACs (G) | MACs ratio | quotient |',
             '|---|---|---|---|---|---|---|---|']
    for t in threads:
        base_ms = statistics.median(base.times[t])
        for entry in entries:
            ms = statistics.median(entry.times[t])
            speedup = base_ms / ms
            ratio = base.macs / entry.macs
            density = '-' if entry.density is None else f'{entry.density:.2f}'
            lines.append(f'| {entry.name} | {density} | {t} | {ms:.1f} | {speedup:.2f}x | '
                         f'{entry.macs / 1e9:.3f} | {ratio:.2f} | {speedup / ratio:.2f} |')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)
    load_before = os.getloadavg()
    fmt = memory_format_from_args(args)
    x = torch.randn(1, 3, args.input_size, args.input_size)
    entries, notes = prepare_models(args, x)
    x = x.contiguous(memory_format=fmt)
    for threads in args.threads:
        time_entries(entries, x, threads, args.runs, args.warmup)
    load_after = os.getloadavg()
    bn_note = ('unfolded in all models' if args.no_fuse_bn else
               'folded into the convs in all models (mmcv fuse_conv_bn)')

    report = [
        f'# SAR-R50 CPU latency (batch 1, {args.input_size}x{args.input_size})', '',
        f'- CPU: {cpu_name()} ({os.cpu_count()} logical cores); torch {torch.__version__}',
        f'- median of {args.runs} runs after {args.warmup} warm-up runs, round-robin over the '
        f'models, `torch.inference_mode()`, denormals flushed',
        f'- BN: {bn_note}; memory format: {args.memory_format} in all models',
        '- masks forced to a fixed random pattern per mask generator (seed '
        f'{args.seed}); density = realised mean over the masks; MACs = realised per image '
        '(ResNet-50 counted with mmdynamic.utils.flops.count_macs)',
        f'- {allocator_note()}',
        f'- load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f}',
    ] + [f'- check: {n}' for n in notes] + [''] + make_table(entries, args.threads)
    if args.breakdown:
        report += [''] + breakdown_table(entries, x, args.threads[0], args.runs, args.warmup,
                                         0.5 if 0.5 in args.densities else args.densities[0])
    text = '\n'.join(report)
    emit_report(text, args.out)


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
