# Copyright (c) mmdynamic contributors. All rights reserved.
"""What the speed benchmarks in ``tools/analysis_tools`` share: the allocator setting, inference
preparation (BN folding, memory format) and the CPU description.

Allocator. glibc's malloc serves every allocation above its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and returns it to the system on ``free``; a network whose activations are larger
(video models at batch 8: 128 frames of 224 px) then page-faults every activation anew, every
forward. On the development VM that cost MobileNet-V2 on 128 frames 8.7 s instead of 3.0 s (6 s of
system time) and ResNet-50 26 s instead of 14 s, unevenly across models, so speed ratios measured
that way say more about page faults than about the models. :func:`reexec_with_tuned_malloc`
restarts a benchmark script with ``MALLOC_MMAP_MAX_=0`` (no mmap: freed memory stays in the heap
and is reused) and a trim threshold that keeps it there; PyTorch's CPU performance guide makes the
same point with jemalloc/tcmalloc. All models of a run share the setting, and the report says
which was used (:func:`allocator_note`). Pass ``--system-malloc`` to a tool to keep the default.
"""
import argparse
import copy
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch.nn as nn

SYSTEM_MALLOC_FLAG = '--system-malloc'
TUNED_MALLOC_ENV: Dict[str, str] = {
    'MALLOC_MMAP_MAX_': '0',  # never mmap: large blocks come from (and go back to) the heap
    'MALLOC_TRIM_THRESHOLD_': str(1 << 40),  # never give the heap's top back to the system
}


def _is_glibc() -> bool:
    return platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


def tuned_malloc_active(environ: Optional[Dict[str, str]] = None) -> bool:
    """Whether ``environ`` (default: this process's) holds :data:`TUNED_MALLOC_ENV`."""
    environ = os.environ if environ is None else environ
    return all(environ.get(k) == v for k, v in TUNED_MALLOC_ENV.items())


def reexec_with_tuned_malloc(argv: Optional[list] = None) -> None:
    """Restart this script with :data:`TUNED_MALLOC_ENV` unless it has it, ``--system-malloc`` is
    among the arguments or the C library is not glibc (then return and run as is).

    Call it first thing under ``if __name__ == '__main__':`` (glibc reads the variables at start-up;
    never from a function that tests call in-process: it replaces the process).

    Args:
        argv (list, optional): The script's arguments (default ``sys.argv``).
    """
    argv = list(sys.argv if argv is None else argv)
    if SYSTEM_MALLOC_FLAG in argv or tuned_malloc_active() or not _is_glibc():
        return
    env = dict(os.environ, **TUNED_MALLOC_ENV)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + argv, env)


def allocator_note() -> str:
    """One line for a report: which allocator setting this process runs with."""
    if tuned_malloc_active():
        return ('allocator: glibc with ' +
                ', '.join(f'{k}={v}' for k, v in TUNED_MALLOC_ENV.items()) +
                ' (freed activations are reused, not page-faulted anew; mmdynamic.utils.benchmark)')
    return 'allocator: the process default (no tuning)'


def prepare_for_inference(model: nn.Module, fuse_bn: bool = True, channels_last: bool = True,
                          copy_model: bool = False) -> nn.Module:
    """Eval mode, BN folded into the convolutions (mmcv ``fuse_conv_bn``) and channels-last
    weights: how a CNN is deployed on CPU, applied alike to a dynamic model and its baseline.

    Args:
        model (nn.Module): The model.
        fuse_bn (bool): Fold every BN that follows a conv. Defaults to True.
        channels_last (bool): Convert the 4-d parameters and buffers (2-d convolutions) to
            channels-last (oneDNN's native layout; these convolutions then also return channels-last
            maps); other tensors (e.g. 3-d convolutions) stay as they are. Defaults to True.
        copy_model (bool): Work on a deep copy (the argument stays as it was). Defaults to False.

    Returns:
        nn.Module: The prepared model (``model`` itself unless ``copy_model``).
    """
    import torch
    from mmcv.cnn import fuse_conv_bn
    if copy_model:
        model = copy.deepcopy(model)
    model.eval()
    if fuse_bn:
        model = fuse_conv_bn(model)
    if channels_last:
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                if tensor.dim() == 4:
                    tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return model


def add_inference_args(parser: argparse.ArgumentParser, layout: bool = True) -> None:
    """The options every benchmark tool shares: ``--system-malloc`` and, with ``layout``,
    ``--memory-format`` and ``--no-fuse-bn`` (read back by :func:`prepare_from_args`)."""
    if layout:
        parser.add_argument('--memory-format', choices=['channels_last', 'contiguous'],
                            default='channels_last')
        parser.add_argument('--no-fuse-bn', action='store_true', help='keep the BN layers unfolded')
    parser.add_argument(SYSTEM_MALLOC_FLAG, action='store_true',
                        help="keep glibc's default allocator (see mmdynamic.utils.benchmark)")


def prepare_from_args(args: argparse.Namespace, *models: nn.Module) -> None:
    """:func:`prepare_for_inference` on each model with the options of :func:`add_inference_args`."""
    for model in models:
        prepare_for_inference(model, fuse_bn=not args.no_fuse_bn,
                              channels_last=args.memory_format == 'channels_last')


def time_round_robin(fns: Sequence[Callable[[], object]], runs: int, warmup: int) -> List[float]:
    """Median seconds of each ``fn()`` over ``runs`` rounds after ``warmup`` untimed rounds; every
    round calls each fn once, so a change of machine load hits all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def emit_report(text: str, out: Optional[str] = None) -> None:
    """Print a markdown report and, with ``out``, also write it there (folders made as needed)."""
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, 'w', encoding='utf-8') as f:
            f.write(text + '\n')


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (or the platform)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
