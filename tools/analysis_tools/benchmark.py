# Copyright (c) mmdynamic contributors. All rights reserved.
"""One speed report: the benchmarks of SAR, GFNet, MGNet and Uni-AdaFocus in one process.

Each family's own tool (``benchmark_sar.py``, ``benchmark_gfnet.py``, ``benchmark_mgnet.py``,
``benchmark_adafocus.py``) measures its dynamic model against its static baseline in the same run;
this tool runs them one after the other on the same machine and threads and writes one markdown table:

    model | baseline | speed-up | MACs ratio | quotient | batch | threads | device

``speed-up`` = baseline latency / model latency, ``MACs ratio`` = baseline MACs / model MACs (realised
per sample), ``quotient`` = speed-up / MACs ratio (1.0 when latency follows MACs). Each tool's full
table (with its notes) follows the summary.

``--preset paper`` uses the settings of the papers' comparisons (224 px, ResNet-50 class models);
``--preset quick`` uses tiny models (seconds; for tests, not for numbers); ``--preset gpu`` the papers'
GPU batch sizes (GFNet and MGNet batch 64 and 128 at 224 px, Uni-AdaFocus 16 videos, SAR batch 1 and
64), meant for ``--device cuda`` (``tools/misc/gpu_check.sh`` runs it).

``--device`` (default ``cpu``; ``cuda`` or ``cuda:N``) is passed to every tool, which runs its models
there and times them with CUDA events on a GPU (see :mod:`mmdynamic.utils.benchmark`); the report and
its summary name the device. SAR's tool runs through its command line (its summary rows are read back
from its table).

``--throughput`` runs the step-wise families (GFNet, MGNet, Uni-AdaFocus) in their throughput mode
instead (issue #20): a stream of inputs timed as a whole, the static baseline against early exit with the
per-batch executor and with the step-major one (``STREAM_PRESETS``); SAR has no exits and is left out.
``--step-times`` adds each tool's step-time table (where the time of each executor goes).

Example:
    python tools/analysis_tools/benchmark.py --threads 1 --out benchmark.md
    python tools/analysis_tools/benchmark.py --preset gpu --device cuda --out benchmark_gpu.md
"""
import argparse
import contextlib
import importlib.util
import io
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmdynamic.utils.benchmark import (add_inference_args, allocator_note,  # noqa: E402
                                       check_inference_args, cpu_name, device_from_args,
                                       device_note, emit_report, reexec_with_tuned_malloc,
                                       resolve_device)

HERE = osp.dirname(osp.abspath(__file__))
FAMILIES = ('sar', 'gfnet', 'mgnet', 'uniadafocus')

# Per family: the tool's arguments for each preset (threads and the device are added by this tool);
# a list of argument lists runs the tool once per list.
Argv = Union[List[str], List[List[str]]]
PRESETS: Dict[str, Dict[str, Argv]] = {
    'paper': {
        'sar': ['--runs', '30', '--warmup', '5', '--densities', '0.5'],
        'gfnet': ['--runs', '5', '--warmup', '1'],
        'mgnet': ['--backbones', 'r18', 'r50', '--batch-sizes', '1', '32', '--runs', '5',
                  '--warmup', '1'],
        'uniadafocus': ['--batch-sizes', '1', '8', '--runs', '3', '--warmup', '1', '--focus-chunks',
                        '1', '4', '8'],
    },
    'quick': {
        'sar': ['--runs', '1', '--warmup', '0', '--densities', '0.5', '--no-check'],
        'gfnet': ['--depth', '18', '--base-channels', '8', '--input-size', '64', '--patch-size',
                  '32', '--num-steps', '3', '--batch-size', '4', '--num-classes', '10',
                  '--relative-budgets', '0.35', '0.6', '--runs', '1', '--warmup', '0'],
        'mgnet': ['--backbones', 'r18', '--batch-sizes', '2', '--input-size', '64',
                  '--glimpse-size', '32', '--num-glimpses', '2', '--width', '8', '--runs', '1',
                  '--warmup', '0'],
        'uniadafocus': ['--image-size', '64', '--patch-size', '32', '--min-box-size', '32',
                        '--batch-sizes', '2', '--runs', '1', '--warmup', '0', '--videos', '4',
                        '--focus-chunks', '1', '2'],
    },
    'gpu': {
        'sar': ['--batch-sizes', '1', '64', '--densities', '0.5', '--runs', '20', '--warmup', '5'],
        'gfnet': [['--batch-size', str(b), '--runs', '10', '--warmup', '3'] for b in (64, 128)],
        'mgnet': ['--backbones', 'r50', '--batch-sizes', '64', '128', '--runs', '10', '--warmup',
                  '3'],
        'uniadafocus': ['--batch-sizes', '16', '--videos', '16', '--runs', '5', '--warmup', '2',
                        '--focus-chunks', '1', '4'],
    },
}


# Per step-wise family: the tool's throughput-mode arguments for each preset (issue #20 targets:
# GF-ResNet-50 P=96 T=5 batch 32 at the paper preset's four budgets, MGNet ResNet-50 batch 32 with
# budgeted early exit, Uni-AdaFocus P=128 batch 8 with one focus patch per f_L call).
STREAM_PRESETS: Dict[str, Dict[str, Argv]] = {
    'paper': {
        'gfnet': ['--stream', '512', '--runs', '2', '--warmup', '0'],
        'mgnet': ['--backbones', 'r50', '--batch-sizes', '32', '--stream', '512', '--runs', '2',
                  '--warmup', '0'],
        'uniadafocus': ['--batch-sizes', '8', '--videos', '64', '--focus-chunks', '1', '--stream',
                        '--runs', '1', '--warmup', '0'],
    },
    'quick': {
        'gfnet': PRESETS['quick']['gfnet'] + ['--stream', '10'],
        'mgnet': PRESETS['quick']['mgnet'] + ['--stream', '5'],
        'uniadafocus': ['--image-size', '64', '--patch-size', '32', '--min-box-size', '32',
                        '--batch-sizes', '2', '--runs', '1', '--warmup', '0', '--videos', '5',
                        '--focus-chunks', '1', '--stream'],
    },
    'gpu': {
        'gfnet': ['--batch-size', '64', '--stream', '1024', '--runs', '3', '--warmup', '1'],
        'mgnet': ['--backbones', 'r50', '--batch-sizes', '64', '--stream', '1024', '--runs', '3',
                  '--warmup', '1'],
        'uniadafocus': ['--batch-sizes', '16', '--videos', '64', '--focus-chunks', '1', '--stream',
                        '--runs', '2', '--warmup', '1'],
    },
}


def argv_lists(entry: Argv) -> List[List[str]]:
    """A preset entry as a list of argument lists (one run of the tool each)."""
    return [list(a) for a in entry] if entry and isinstance(entry[0], list) else [list(entry)]


def load_tool(name: str):
    """Import ``tools/analysis_tools/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, osp.join(HERE, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(model: str, baseline: str, speedup: float, macs_ratio: float, batch: int,
         threads: int) -> Dict:
    return dict(model=model, baseline=baseline, speedup=speedup, macs_ratio=macs_ratio,
                quotient=speedup / macs_ratio, batch=batch, threads=threads)


def _tool_argv(argv: List[str], threads: int, device: str) -> List[str]:
    return argv + ['--threads', str(threads), '--device', device]


def markdown_rows(text: str, first_column: str) -> List[Dict[str, str]]:
    """The rows (dicts by column name) of the first markdown table in ``text`` whose header starts
    with the column ``first_column``."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f'| {first_column} |')),
                 None)
    if start is None:
        raise ValueError(f'no table with a column {first_column!r} first in the report')
    names = [c.strip() for c in lines[start].strip('|').split('|')]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append(dict(zip(names, (c.strip() for c in line.strip('|').split('|')))))
    return rows


def run_sar(argv: List[str], threads: int, device: str) -> List[Dict]:
    """``benchmark_sar.py`` through its command line; the summary rows are read back from its table
    (its columns found by name): every SAR row against the baseline its speed-up column names."""
    import tempfile
    tool = load_tool('benchmark_sar')
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'sar.md')
        tool.main(_tool_argv(argv, threads, device) + ['--out', out])
        with open(out, encoding='utf-8') as f:
            table = markdown_rows(f.read(), 'model')
    speedup_column = next(name for name in table[0] if name.startswith('speed-up vs '))
    baseline = speedup_column[len('speed-up vs '):]
    return [_row(f"{r['model']} (density {r['density']})", baseline,
                 float(r[speedup_column].rstrip('x')), float(r['MACs ratio']), int(r['batch']),
                 int(r['threads'])) for r in table if r['density'] != '-']


def run_gfnet(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_gfnet')
    args = tool.parse_args(_tool_argv(argv, threads, device))
    result = tool.benchmark(args)
    print(tool.format_table(args, result))
    return [_row(f'GF-ResNet-{args.depth} (P={args.patch_size}, T={args.num_steps}) early exit '
                 f'@ {r["realised_gmacs"]:.3g} GMACs', f'ResNet-{args.depth}', r['speedup'],
                 r['macs_ratio'], args.batch_size, threads) for r in result['rows']]


def run_mgnet(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_mgnet')
    rows = tool.main(_tool_argv(argv, threads, device))
    return [_row(f'MGNet {r["backbone"]}, {r["glimpses"]} glimpse(s)', f'FF-Net {r["backbone"]}',
                 r['speedup'], 1 / r['ratio'], r['batch'], threads)
            for r in rows if r['model'] == 'MGNet']


def run_uniadafocus(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_adafocus')
    args = tool.parse_args(_tool_argv(argv, threads, device))
    rows = tool.run(args)
    print(tool.format_table(rows, args))
    baseline = rows[0]['model']
    return [_row(r['model'], baseline, r['speedup'], r['gmacs_ratio'], r['batch'], threads)
            for r in rows if r['model'] != baseline]


def _stream_rows(name: str, baseline: str, result: Dict, batch: int, threads: int) -> List[Dict]:
    return [_row(f"{name} @ {r['realised_gmacs']:.3g} GMACs, {r['mode']} stream", baseline,
                 r['speedup'], r['macs_ratio'], batch, threads) for r in result['rows']]


def run_gfnet_stream(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_gfnet')
    args = tool.parse_args(_tool_argv(argv, threads, device))
    result = tool.benchmark_stream(args)
    print(tool.format_stream_table(args, result))
    return _stream_rows(f'GF-ResNet-{args.depth} (P={args.patch_size}, T={args.num_steps})',
                        f'ResNet-{args.depth}', result, args.batch_size, threads)


def run_mgnet_stream(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_mgnet')
    rows = []
    for result in tool.main(_tool_argv(argv, threads, device)):
        rows += _stream_rows(f"MGNet {result['backbone']}", f"FF-Net {result['backbone']}",
                             result, result['batch'], threads)
    return rows


def run_uniadafocus_stream(argv: List[str], threads: int, device: str) -> List[Dict]:
    tool = load_tool('benchmark_adafocus')
    args = tool.parse_args(_tool_argv(argv, threads, device))
    report, results = tool.run_stream_mode(args)
    print(report)
    rows = []
    for result in results:
        rows += _stream_rows(f"Uni-AdaFocus P={args.patch_size}, {result['chunk']} patch(es) per "
                             'f_L call', tool.STATIC_NAME, result, result['batch'], threads)
    return rows


Runner = Callable[[List[str], int, str], List[Dict]]
RUNNERS: Dict[str, Runner] = dict(sar=run_sar, gfnet=run_gfnet, mgnet=run_mgnet,
                                  uniadafocus=run_uniadafocus)
STREAM_RUNNERS: Dict[str, Runner] = dict(gfnet=run_gfnet_stream, mgnet=run_mgnet_stream,
                                         uniadafocus=run_uniadafocus_stream)


def device_label(device: Optional[str] = None) -> str:
    """The short name of ``device`` (default the CPU) for the summary's device column: the GPU's or
    the CPU's."""
    resolved = resolve_device(device)
    if resolved.type == 'cuda':
        return torch.cuda.get_device_name(resolved)
    return cpu_name()


def summary_table(rows: List[Dict], device: str) -> str:
    lines = ['| model | baseline | speed-up | MACs ratio | quotient | batch | threads | device |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['model']} | {r['baseline']} | {r['speedup']:.2f}x | "
                     f"{r['macs_ratio']:.2f} | {r['quotient']:.2f} | {r['batch']} | "
                     f"{r['threads']} | {device} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='One speed report over the mmdynamic benchmarks')
    parser.add_argument('--families', nargs='+', choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--throughput', action='store_true',
                        help='the throughput modes of the step-wise families (a stream of inputs, '
                        'per-batch against step-major early exit); SAR is left out')
    parser.add_argument('--step-times', action='store_true',
                        help='with --throughput: also the time of every step of each executor')
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    add_inference_args(parser, layout=False, device=True)
    args = parser.parse_args(argv)
    check_inference_args(parser, args)
    if args.step_times and not args.throughput:
        parser.error('--step-times times the steps of the throughput modes: add --throughput')
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    device = str(device_from_args(args))
    rows: List[Dict] = []
    details = []
    load_before = os.getloadavg()
    start = time.time()
    runners, presets = ((STREAM_RUNNERS, STREAM_PRESETS) if args.throughput else
                        (RUNNERS, PRESETS))
    extra = ['--step-times'] if args.step_times else []
    for family in args.families:
        if family not in runners:
            print(f'note: {family} has no throughput mode (no exits); left out')
            continue
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            for argv in argv_lists(presets[args.preset][family]):
                rows += runners[family](argv + extra, args.threads, device)
        details.append(f'### {family}\n\n{buffer.getvalue().strip()}')
    load_after = os.getloadavg()
    report = '\n'.join([
        f"# mmdynamic speed report ({args.preset} preset"
        f"{', throughput mode' if args.throughput else ''})", '',
        f'- {device_note(device)}; torch {torch.__version__}; {args.threads} thread(s)',
        f'- {allocator_note()}',
        f'- load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f}; '
        f'{time.time() - start:.0f} s in all', '',
        summary_table(rows, device_label(device)), '', '## Details of each benchmark', '',
        '\n\n'.join(details)])
    emit_report(report, args.out)
    return rows


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
