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

Frozen encoders. Eager PyTorch runs a 1x1 convolution of a batch below 16 on one thread with its own
im2col kernel instead of oneDNN, and hands oneDNN plain weights that it reorders on every call; both
cost little on large batches and a lot on the few patches per call of an early-exit step (ResNet-50 on
8 patches of 128 px: about 42 GMAC/s eager, 55-60 frozen, on the development VM).
:func:`freeze_submodules` replaces a model's encoders by TorchScript-frozen copies
(``torch.jit.freeze`` + ``torch.jit.optimize_for_inference``: oneDNN convolutions with weights packed
once), checked against the eager module on two batch sizes. Tools apply it alike to a dynamic model and
its baseline (``--no-freeze`` keeps them eager).

oneDNN Graph. ``optimize_for_inference`` leaves every activation and residual addition as a separate
pass over memory (MobileNet-V2: 35 ReLU6 clamps, about 20 % of its time). With ``--onednn-graph`` the
frozen graphs are fused by PyTorch's oneDNN Graph fuser instead (``torch.jit.enable_onednn_fusion``:
convolutions with their activations and additions), which on the development VM runs MobileNet-V2
about 30 % and ResNet-50 5-10 % faster; it is switched on for the whole process, since TorchScript fuses
a graph on its first calls with each new input shape.

Devices. Tools that accept ``--device`` (``add_inference_args(..., device=True)``, read back by
:func:`device_from_args`) run their models and inputs there. CUDA kernels run asynchronously: a
wall clock read right after a call measures the launches, not the work. :func:`time_interleaved`
therefore times CUDA work with CUDA events recorded around each call on the current stream
(``torch.cuda.Event(enable_timing=True)``), synchronises once per round before reading them, and
synchronises after the warm-up rounds; on the CPU it reads ``time.perf_counter``. Either way the
result is the median over the timed rounds. The CPU preparations (allocator, TorchScript freezing,
oneDNN Graph) do not apply on CUDA: :func:`freeze_from_args` leaves the encoders eager there and
:func:`check_inference_args` refuses ``--onednn-graph`` with a CUDA device.

The throughput modes of the step-wise tools (a stream through the per-batch and the step-major
executors, and the per-step times) share :mod:`mmdynamic.utils.stream_benchmark`.
"""
import argparse
import copy
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

SYSTEM_MALLOC_FLAG = '--system-malloc'
DEVICE_FLAG = '--device'
ONEDNN_GRAPH_PROFILING_CALLS = 2  # calls before TorchScript's profiling executor fuses a graph
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


def _outputs(out) -> List[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def freeze_module(module: nn.Module, example: torch.Tensor, name: str = 'module',
                  rtol: float = 1e-3, onednn_graph: bool = False) -> torch.jit.ScriptModule:
    """A TorchScript-frozen copy of ``module`` for CPU inference (see the module docstring).

    The module is traced on ``example``, frozen and optimised for inference, then checked against the
    eager module on ``example`` and on a batch one larger, contiguous and (4-d inputs) channels-last
    (a graph that specialised on the traced batch size or memory format would fail there).

    Args:
        module (nn.Module): An eval-mode module whose forward takes one (N, ...) tensor and returns
            a tensor or a tuple of tensors (e.g. a backbone).
        example (Tensor): (N, ...) an input of the shape (and memory format) it will mostly see.
        name (str): The module's name, for the error message.
        rtol (float): Tolerance of the check, relative to the largest eager output. Defaults to 1e-3.
        onednn_graph (bool): Fuse with oneDNN Graph instead of ``optimize_for_inference``; this
            switches ``torch.jit.enable_onednn_fusion`` on for the process (leave it on while the
            module runs). The check then compares the fused graph, run after its profiling calls.
            Defaults to False.

    Returns:
        torch.jit.ScriptModule: The frozen module (same outputs, within ``rtol``).

    Raises:
        RuntimeError: If tracing fails or the frozen module's outputs differ from the eager ones.
    """
    if module.training:
        raise RuntimeError(f'freeze {name} in eval mode (a frozen module keeps BN and dropout fixed)')
    probe = torch.cat([example, example[:1].flip(-1)]).contiguous()
    probes = [example, probe]
    if probe.dim() == 4:
        probes.append(probe.contiguous(memory_format=torch.channels_last))
    if onednn_graph:
        torch.jit.enable_onednn_fusion(True)
    with torch.no_grad():
        try:
            frozen = torch.jit.freeze(torch.jit.trace(module, example))
            if not onednn_graph:
                frozen = torch.jit.optimize_for_inference(frozen)
        except Exception as err:  # tracing reports many error types
            raise RuntimeError(f'cannot freeze {name} with TorchScript: {err}') from err
        for inputs in probes:
            # TorchScript fuses a graph for oneDNN Graph after profiling calls with that shape
            for _ in range(ONEDNN_GRAPH_PROFILING_CALLS if onednn_graph else 0):
                frozen(inputs)
            expected, got = _outputs(module(inputs)), _outputs(frozen(inputs))
            if len(got) != len(expected):
                raise RuntimeError(f'the frozen {name} returns {len(got)} outputs, the eager one '
                                   f'{len(expected)}')
            for ref, out in zip(expected, got):
                scale = float(ref.abs().max()) or 1.0
                if ref.shape != out.shape or float((ref - out).abs().max()) > rtol * scale:
                    raise RuntimeError(
                        f'the frozen {name} does not reproduce the eager one on inputs of shape '
                        f'{tuple(inputs.shape)}: keep it eager (--no-freeze)')
    return frozen


def freeze_submodules(model: nn.Module, examples: Dict[str, torch.Tensor],
                      onednn_graph: bool = False) -> None:
    """Replace submodules of ``model`` by frozen copies (:func:`freeze_module`), in place.

    Args:
        model (nn.Module): The model (eval mode); count its MACs before, the MACs counter does not
            read frozen modules.
        examples (dict): Dotted submodule name (e.g. ``'local_backbone'``, ``'0'`` of a
            Sequential) -> an example input (N, ...) of that submodule.
        onednn_graph (bool): See :func:`freeze_module`. Defaults to False.
    """
    for name, example in examples.items():
        parent_name, _, leaf = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        frozen = freeze_module(model.get_submodule(name), example, name, onednn_graph=onednn_graph)
        setattr(parent, leaf, frozen)


def freeze_from_args(args: argparse.Namespace, model: nn.Module,
                     examples: Dict[str, torch.Tensor]) -> None:
    """:func:`freeze_submodules` with the options of :func:`add_inference_args` (``freeze=True``):
    nothing with ``--no-freeze`` or on a non-CPU ``--device`` (freezing is a CPU preparation, see the
    module docstring), oneDNN Graph fusion with ``--onednn-graph``."""
    if not _freezes(args):
        return
    freeze_submodules(model, examples, onednn_graph=args.onednn_graph)


def _freezes(args: argparse.Namespace) -> bool:
    return not args.no_freeze and device_from_args(args).type == 'cpu'


def encoder_note(args: argparse.Namespace) -> str:
    """How :func:`freeze_from_args` prepared the encoders, for a report."""
    if args.no_freeze:
        return 'eager'
    if not _freezes(args):
        return f'eager (on {device_from_args(args).type}: TorchScript freezing is a CPU preparation)'
    return 'TorchScript-frozen (oneDNN Graph)' if args.onednn_graph else 'TorchScript-frozen'


def add_inference_args(parser: argparse.ArgumentParser, layout: bool = True,
                       freeze: bool = False, device: bool = False) -> None:
    """The options every benchmark tool shares: ``--system-malloc`` and, with ``layout``,
    ``--memory-format`` and ``--no-fuse-bn`` (read back by :func:`prepare_from_args`), with
    ``freeze`` also ``--no-freeze`` and ``--onednn-graph`` (read back by :func:`freeze_from_args`),
    with ``device`` also ``--device`` (read back by :func:`device_from_args`).

    ``device`` is opt-in: a tool passes ``device=True`` once it moves its models and inputs to
    :func:`device_from_args` and times them with :func:`time_interleaved` (``device=``), so that a
    tool that would ignore it rejects ``--device`` instead of timing the CPU under a GPU label."""
    if device:
        parser.add_argument(DEVICE_FLAG, default='cpu',
                            help="where the models run: 'cpu' (default), 'cuda' or 'cuda:N'; "
                            'CUDA work is timed with CUDA events (see mmdynamic.utils.benchmark)')
    if layout:
        parser.add_argument('--memory-format', choices=['channels_last', 'contiguous'],
                            default='channels_last')
        parser.add_argument('--no-fuse-bn', action='store_true', help='keep the BN layers unfolded')
    if freeze:
        parser.add_argument('--no-freeze', action='store_true',
                            help='keep the encoders eager (default: TorchScript-frozen, see '
                            'mmdynamic.utils.benchmark)')
        parser.add_argument('--onednn-graph', action='store_true',
                            help='fuse the frozen encoders with oneDNN Graph (see '
                            'mmdynamic.utils.benchmark)')
    parser.add_argument(SYSTEM_MALLOC_FLAG, action='store_true',
                        help="keep glibc's default allocator (see mmdynamic.utils.benchmark)")


def check_inference_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse option combinations of :func:`add_inference_args` that would time the wrong thing:
    ``--onednn-graph`` with fewer than :data:`ONEDNN_GRAPH_PROFILING_CALLS` ``--warmup`` rounds would
    time TorchScript profiling and fusing each new input shape."""
    if getattr(args, 'onednn_graph', False) and args.warmup < ONEDNN_GRAPH_PROFILING_CALLS:
        parser.error(f'--onednn-graph needs --warmup {ONEDNN_GRAPH_PROFILING_CALLS} or more (new '
                     f'input shapes are fused on later calls), got --warmup {args.warmup}')
    try:
        device = device_from_args(args)
    except (RuntimeError, ValueError) as err:
        parser.error(str(err))
    if device.type != 'cpu' and getattr(args, 'onednn_graph', False):
        parser.error(f'--onednn-graph fuses TorchScript graphs for the CPU; it does not apply to '
                     f'--device {args.device}')


def memory_format_from_args(args: argparse.Namespace) -> torch.memory_format:
    """The ``torch.memory_format`` chosen by ``--memory-format`` (:func:`add_inference_args`)."""
    return torch.channels_last if args.memory_format == 'channels_last' else torch.contiguous_format


def prepare_from_args(args: argparse.Namespace, *models: nn.Module) -> None:
    """:func:`prepare_for_inference` on each model with the options of :func:`add_inference_args`."""
    for model in models:
        prepare_for_inference(
            model, fuse_bn=not args.no_fuse_bn,
            channels_last=memory_format_from_args(args) == torch.channels_last)


DeviceLike = Union[str, torch.device, None]


def resolve_device(device: DeviceLike = None) -> torch.device:
    """The ``torch.device`` named by ``device`` ('cpu', 'cuda', 'cuda:N'; None: 'cpu'), checked.

    Raises:
        ValueError: For a name that is not a device, or a device type the benchmarks do not time.
        RuntimeError: For a CUDA device on a machine without one (or with fewer GPUs).
    """
    try:
        resolved = torch.device('cpu' if device is None else device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type not in ('cpu', 'cuda'):
        raise ValueError(f"the benchmarks time 'cpu' or 'cuda' devices, got {device!r}")
    if resolved.type == 'cuda':
        if not torch.cuda.is_available():
            raise RuntimeError(f'device {device!r} asked for, but torch sees no CUDA GPU here '
                               f'(torch {torch.__version__}, CUDA build: {torch.version.cuda})')
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise RuntimeError(f'device {device!r} asked for, but only '
                               f'{torch.cuda.device_count()} CUDA GPU(s) are visible')
    return resolved


def device_from_args(args: argparse.Namespace) -> torch.device:
    """The device of ``--device`` (:func:`add_inference_args` with ``device=True``); the CPU for a
    tool without the option."""
    return resolve_device(getattr(args, 'device', None))


def device_note(device: DeviceLike = None) -> str:
    """One line for a report naming the hardware that ran: the GPU (name, memory, CUDA version) or
    the CPU (model, logical cores)."""
    device = resolve_device(device)
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        return (f'GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA '
                f'{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})')
    return f'CPU: {cpu_name()} ({os.cpu_count()} logical cores)'


def setting_note(args: argparse.Namespace) -> str:
    """The start of a report's first line: the device of ``--device`` (:func:`device_note`), the
    torch version and the threads of ``--threads``."""
    return (f'{device_note(device_from_args(args))}, torch {torch.__version__}, '
            f'{args.threads} thread(s)')


def synchronize(device: DeviceLike = None) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    device = torch.device('cpu' if device is None else device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_round_robin(fns: Sequence[Callable[[], object]], runs: int, warmup: int,
                     device: DeviceLike = None) -> List[float]:
    """Median seconds of each ``fn()`` over ``runs`` rounds after ``warmup`` untimed rounds; every
    round calls each fn once, so a change of machine load hits all of them alike. ``device``: see
    :func:`time_interleaved`."""
    return time_interleaved([[fn] for fn in fns], runs, warmup, device=device)


class _WallClock:
    """Seconds between :meth:`start` and :meth:`stop` by ``time.perf_counter`` (CPU work)."""

    def __init__(self) -> None:
        self._start = self._stop = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        self._stop = time.perf_counter()

    def seconds(self) -> float:
        return self._stop - self._start


class _CudaEvents:
    """Seconds between :meth:`start` and :meth:`stop` on the current CUDA stream of ``device``,
    by CUDA events; :meth:`seconds` is valid once the device has been synchronised."""

    def __init__(self, device: torch.device) -> None:
        with torch.cuda.device(device):
            self._start = torch.cuda.Event(enable_timing=True)
            self._stop = torch.cuda.Event(enable_timing=True)
        self._device = device

    def start(self) -> None:
        self._start.record(torch.cuda.current_stream(self._device))

    def stop(self) -> None:
        self._stop.record(torch.cuda.current_stream(self._device))

    def seconds(self) -> float:
        return self._start.elapsed_time(self._stop) / 1000.0  # elapsed_time is in ms


def _clock(device: torch.device):
    return _CudaEvents(device) if device.type == 'cuda' else _WallClock()


def time_interleaved(parts: Sequence[Sequence[Callable[[], object]]], runs: int,
                     warmup: int, device: DeviceLike = None) -> List[float]:
    """:func:`time_round_robin` for work split into parts (e.g. the batches of a dataset).

    A round runs part j of every model before part j + 1 of any, so that the load of a shared machine,
    which drifts over seconds, hits the models alike even when one pass over all parts takes a minute.

    On a CUDA ``device`` every call is bracketed by CUDA events on the current stream (the work
    the call queued, host syncs inside it included, e.g. an early-exit decision), the device is
    synchronised after the warm-up rounds and at the end of every round, before the events are
    read; the calls of a round are not separated by synchronisations, as in a real loop. On the
    CPU each call is timed by the wall clock.

    Args:
        parts (Sequence[Sequence[Callable]]): ``parts[m][j]`` runs part j of model m; every model has
            the same number of parts.
        runs (int): Timed rounds (at least 1). warmup (int): Untimed rounds first.
        device (str | torch.device, optional): Where the work runs (None: the CPU).

    Returns:
        list[float]: Per model, the median over rounds of the seconds of all its parts.
    """
    if len({len(p) for p in parts}) > 1:
        raise ValueError(f'every model needs the same number of parts, got {[len(p) for p in parts]}')
    if runs < 1 or warmup < 0:
        raise ValueError(f'need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}')
    device = resolve_device(device)
    for _ in range(warmup):
        for step in zip(*parts):
            for fn in step:
                fn()
    synchronize(device)
    times: List[List[float]] = [[] for _ in parts]
    for _ in range(runs):
        clocks = [[_clock(device) for _ in step] for step in zip(*parts)]
        for step, step_clocks in zip(zip(*parts), clocks):
            for fn, clock in zip(step, step_clocks):
                clock.start()
                fn()
                clock.stop()
        synchronize(device)
        for m, out in enumerate(times):
            out.append(sum(step_clocks[m].seconds() for step_clocks in clocks))
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
