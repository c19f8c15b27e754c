# Copyright (c) mmdynamic contributors. All rights reserved.
"""The throughput (stream) mode shared by the GFNet, MGNet and Uni-AdaFocus benchmarks (issue #20).

A stream of N inputs, in batches, is timed as a whole three ways: the static baseline batch by
batch, the step-wise model with the per-batch early-exit executor
(:class:`~mmdynamic.models.utils.EarlyExitExecutor`) batch by batch, and with the step-major
executor (:class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`: the survivors of all
batches pooled per step). :class:`StreamSetup` describes the stream and the models,
:func:`fit_points` fits the exit thresholds of each operating point on the stream's own confidences,
:func:`time_stream` times the three (round-robin,
:func:`~mmdynamic.utils.benchmark.time_round_robin`, CUDA events on a GPU) and :func:`stream_rows`
writes the markdown rows under :data:`STREAM_HEADER`.

Step times (``--step-times``). :func:`measure_step_times` runs each executor once more and times
every call of each step (and of ``init_state``): the step-wise object that the executor runs
(:func:`~mmdynamic.models.utils.step_major.executor_view`) is wrapped in :class:`TimedSteps`, which
brackets each call by :meth:`StepTimes.call` (wall clock, with the device synchronised before and
after on CUDA, so that a step is charged its own kernels). The rest of the pass (exit decisions,
gathering the survivors, the step-major queues) is reported as one row. The static baseline is
broken down into named submodules (:func:`timed_submodules`), the rest of its forward as one row.
The synchronisations change a GPU's overlap of host and device work, so these times come from their
own pass, after the timed runs, and never enter the throughput numbers.
"""
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .benchmark import DeviceLike, resolve_device, synchronize, time_round_robin

STREAM_HEADER = ('| model | executor | GMACs/sample | exit fractions | samples/s | speed-up | '
                 'MACs ratio | quotient | samples per step call |\n'
                 '|---|---|---|---|---|---|---|---|---|')
STEP_TIMES_HEADER = ('| model | executor | part | calls | samples per call | ms | ms per sample '
                     '| share of the pass |\n|---|---|---|---|---|---|---|---|')
INIT_PART = 'init_state'
EXECUTOR_PART = 'exit decisions, gathers, queues'
STATIC_REST_PART = 'rest of the forward'
TOTAL_PART = 'total'
EXECUTORS = ('per-batch', 'step-major')


@dataclass
class StreamSetup:
    """A stream of batches and the two models timed on it.

    Args:
        model: The step-wise model (run as its own early exit runs it, through
            :func:`~mmdynamic.models.utils.step_major.executor_view`), on ``device``.
        batches (Sequence[Tensor]): The stream: (B, ...) batches on ``device`` (the last one may be
            smaller).
        static_fn (Callable): The static baseline on one batch of ``static_batches``.
        static_macs (float): MACs per sample of the static baseline.
        exit_costs (Sequence[float]): (K, ) cumulative MACs per sample of the model's exits.
        batch_size (int): Samples per step call of the step-major executor.
        confidence (str): Confidence function of the exit thresholds. Defaults to 'max_softmax'.
        max_queued (int, optional): Queue limit of the step-major executor.
        static_batches (Sequence[Tensor], optional): The same samples in the static baseline's
            input format (default: ``batches``).
        device (str | torch.device, optional): Where the models and batches are (None: the CPU).
        step_names (Sequence[str], optional): (K, ) a name for each step in the step-time tables
            (default: 'step k').
        static_module (nn.Module, optional): The module whose submodules ``static_parts`` names
            (default: ``static_fn`` when it is a module, or the module of a bound method).
        static_parts (dict): Label -> dotted submodule name of ``static_module``, timed apart in the
            step-time tables (e.g. ``{'ResNet-50': '0'}``).
    """
    model: Any
    batches: Sequence[torch.Tensor]
    static_fn: Callable
    static_macs: float
    exit_costs: Sequence[float]
    batch_size: int
    confidence: str = 'max_softmax'
    max_queued: Optional[int] = None
    static_batches: Optional[Sequence[torch.Tensor]] = None
    device: DeviceLike = None
    step_names: Optional[Sequence[str]] = None
    static_module: Optional[nn.Module] = None
    static_parts: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError('the stream has no batches')
        if self.static_batches is None:
            self.static_batches = self.batches
        if len(self.static_batches) != len(self.batches):
            raise ValueError(f'static_batches must hold the same {len(self.batches)} batches as '
                             f'batches, got {len(self.static_batches)}')
        self.device = resolve_device(self.device)
        where = self.batches[0].device
        if where.type != self.device.type or self.device.index not in (None, where.index):
            raise ValueError(f'the stream is on {where} but the setup names {self.device}: move '
                             'the batches and the models there')
        num_exits = len(self.exit_costs)
        if self.step_names is None:
            self.step_names = [f'step {k}' for k in range(num_exits)]
        if len(self.step_names) != num_exits:
            raise ValueError(f'{len(self.step_names)} step names for {num_exits} exits')
        if self.static_module is None:
            fn = self.static_fn
            self.static_module = fn if isinstance(fn, nn.Module) else getattr(fn, '__self__', None)
        if self.static_parts and not isinstance(self.static_module, nn.Module):
            raise ValueError('static_parts need a static_module (the module that holds them)')

    @property
    def num_samples(self) -> int:
        """N, the samples of the stream."""
        return sum(int(b.shape[0]) for b in self.batches)


def load_average() -> str:
    """The 1/5/15-minute load averages (the machine's load during a measurement)."""
    return ', '.join(f'{v:.1f}' for v in os.getloadavg()) if hasattr(os, 'getloadavg') else 'n/a'


def fit_points(setup: StreamSetup, budgets: Sequence[float]) -> List[Dict]:
    """The thresholds of each budget fitted on the confidences of the stream.

    Every step of ``setup.model`` is run once on each batch (untimed), each batch as the model's
    own early exit runs it; the exit logits are fitted on the host.

    Args:
        setup (StreamSetup): The stream and the model.
        budgets (Sequence[float]): Operating points in MACs per sample.

    Returns:
        list[dict]: Per budget, ``budget`` and ``thresholds`` (K, ).
    """
    from mmdynamic.evaluation.functional.budget import BudgetSolver
    from mmdynamic.models.utils.step_major import executor_view
    with torch.inference_mode():
        exit_logits = torch.cat([
            steps.forward_exits(inputs).cpu()
            for steps, inputs in (executor_view(setup.model, b) for b in setup.batches)
        ], dim=1)
    solver = BudgetSolver(exit_logits, [float(c) for c in setup.exit_costs], setup.confidence,
                          model=type(setup.model).__name__, fit_split='val',
                          midpoints=True)  # the stream is then run in other batches
    return [dict(budget=budget, thresholds=solver.policy_for_budget(budget).thresholds)
            for budget in budgets]


def run_per_batch(setup: StreamSetup, thresholds: Sequence[float],
                  model: Optional[Any] = None) -> torch.Tensor:
    """The stream through the per-batch executor, batch by batch (``model``: default the setup's;
    a :class:`TimedModel` for the step times).

    Returns:
        Tensor: the (N, ) exits of the samples.
    """
    from mmdynamic.models.utils.early_exit import EarlyExitExecutor
    from mmdynamic.models.utils.step_major import executor_view
    model = setup.model if model is None else model
    executor = EarlyExitExecutor(thresholds, setup.confidence)
    return torch.cat([executor.run(*executor_view(model, batch)).exits
                      for batch in setup.batches])


def run_step_major(setup: StreamSetup, thresholds: Sequence[float],
                   model: Optional[Any] = None):
    """The stream through the step-major executor.

    Returns:
        tuple: the executor (its ``step_batches``) and the (N, ) exits of the samples.
    """
    from mmdynamic.models.utils.step_major import StepMajorExecutor, run_stream
    model = setup.model if model is None else model
    executor = StepMajorExecutor(thresholds, setup.confidence, batch_size=setup.batch_size,
                                 max_queued=setup.max_queued)
    return executor, run_stream(executor, model, setup.batches).exits


def run_static(setup: StreamSetup) -> None:
    """The stream through the static baseline, batch by batch."""
    for batch in setup.static_batches:
        setup.static_fn(batch)


def time_stream(setup: StreamSetup, points: List[Dict], runs: int, warmup: int) -> Dict:
    """Time the stream through the static baseline, the per-batch executor and the step-major
    executor at every operating point of ``points`` (:func:`fit_points`), round-robin, under
    ``torch.inference_mode()``, on ``setup.device``.

    Returns:
        dict: ``static_per_s`` (samples/s) and ``rows``: per point and executor the realised MACs
        per sample (from that executor's exits of the stream: they can differ where regrouping the
        samples moves a score across a threshold by float rounding), ``exit_counts`` (K, ) and
        ``exit_fractions``, samples/s, speed-up, MACs ratio, quotient and, step-major, the mean
        samples per step call.
    """
    num = setup.num_samples
    occupancy: Dict[int, List[List[int]]] = {}
    exits: Dict[Tuple[int, str], torch.Tensor] = {}

    def per_batch(i: int, p: Dict) -> None:
        exits[i, EXECUTORS[0]] = run_per_batch(setup, p['thresholds'])

    def step_major(i: int, p: Dict) -> None:
        executor, exits[i, EXECUTORS[1]] = run_step_major(setup, p['thresholds'])
        occupancy[i] = executor.step_batches

    fns = [lambda: run_static(setup)]
    for i, p in enumerate(points):
        fns += [lambda i=i, p=p: per_batch(i, p), lambda i=i, p=p: step_major(i, p)]
    with torch.inference_mode():
        static_s, *point_s = time_round_robin(fns, runs, warmup, device=setup.device)
    static_per_s = num / static_s
    # host bookkeeping: the exits come back to the host, the costs are host numbers
    costs = torch.tensor([float(c) for c in setup.exit_costs], dtype=torch.float64, device='cpu')
    rows = []
    for i, p in enumerate(points):
        means = [sum(s) / len(s) if s else 0.0 for s in occupancy[i]]
        for mode, seconds in zip(EXECUTORS, point_s[2 * i:2 * i + 2]):
            counts = torch.bincount(exits[i, mode].cpu(), minlength=len(costs))
            fractions = counts.double() / num
            realised = float((fractions * costs).sum())
            macs_ratio = setup.static_macs / realised
            speedup = num / seconds / static_per_s
            rows.append(dict(budget_gmacs=p['budget'] / 1e9, mode=mode,
                             realised_gmacs=realised / 1e9, exit_counts=counts.tolist(),
                             exit_fractions=fractions.tolist(), per_s=num / seconds,
                             speedup=speedup, macs_ratio=macs_ratio,
                             quotient=speedup / macs_ratio,
                             step_batch_means=means if mode == 'step-major' else None))
    return dict(static_per_s=static_per_s, rows=rows)


def stream_rows(rows: List[Dict], name: str) -> List[str]:
    """Markdown rows of :func:`time_stream`'s rows (under :data:`STREAM_HEADER`)."""
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


# ---------------------------------------------------------------------------- step times
class StepTimes:
    """Calls, samples and seconds of each named part of one pass.

    ``__slots__`` (no ``__dict__``): a :class:`TimedSteps` that holds it keeps the same
    :func:`~mmdynamic.models.utils.step_major.step_signature` over the stream while the times grow.

    Args:
        device (str | torch.device, optional): Where the timed work runs; on CUDA every call is
            bracketed by device synchronisations.
    """
    __slots__ = ('device', 'parts')

    def __init__(self, device: DeviceLike = None) -> None:
        self.device = resolve_device(device)
        self.parts: Dict[str, List[float]] = {}  # name -> [calls, samples, seconds]

    def call(self, name: str, samples: int, fn: Callable[[], Any]) -> Any:
        """``fn()``, its seconds (device work included) and ``samples`` charged to ``name``."""
        synchronize(self.device)
        start = time.perf_counter()
        out = fn()
        synchronize(self.device)
        seconds = time.perf_counter() - start
        entry = self.parts.setdefault(name, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += int(samples)
        entry[2] += seconds
        return out

    def rows(self, order: Sequence[str], rest: str, total_s: float) -> List[Dict]:
        """One row per part (``order`` first, then any other in the order seen), ``rest`` (the
        pass minus the parts) and :data:`TOTAL_PART`: ``part``, ``calls``, ``samples``,
        ``seconds`` (None for calls and samples where they do not apply)."""
        names = [n for n in order if n in self.parts]
        names += [n for n in self.parts if n not in names]
        rows = [dict(part=n, calls=int(self.parts[n][0]), samples=int(self.parts[n][1]),
                     seconds=self.parts[n][2]) for n in names]
        rows.append(dict(part=rest, calls=None, samples=None,
                         seconds=max(total_s - sum(r['seconds'] for r in rows), 0.0)))
        rows.append(dict(part=TOTAL_PART, calls=None, samples=None, seconds=total_s))
        return rows


def _batch_of(tensor: Any) -> int:
    return int(tensor.shape[0]) if isinstance(tensor, torch.Tensor) and tensor.dim() else 0


class _Clocked:
    """A step-wise object ``inner`` with a :class:`StepTimes` and the part name of each step.

    Args:
        inner: The step-wise object (``num_exits``).
        clock (StepTimes): Where the times go.
        names (Sequence[str]): (K, ) the part name of each step.
    """

    def __init__(self, inner: Any, clock: StepTimes, names: Sequence[str]) -> None:
        self.inner = inner
        self.clock = clock
        self.names = tuple(names)
        self.num_exits = inner.num_exits


class TimedSteps(_Clocked):
    """The step-wise object an executor runs (a model or its ``stepwise_view`` adapter), with its
    ``init_state`` and ``step`` calls timed (arguments: see :class:`_Clocked`)."""

    def init_state(self, inputs: torch.Tensor, **kwargs) -> Any:
        return self.clock.call(INIT_PART, _batch_of(inputs),
                               lambda: self.inner.init_state(inputs, **kwargs))

    def step(self, index: int, inputs: torch.Tensor, state: Any):
        return self.clock.call(self.names[index], _batch_of(inputs),
                               lambda: self.inner.step(index, inputs, state))


class TimedModel(_Clocked):
    """A step-wise model whose executor views (:func:`executor_view`) are :class:`TimedSteps`:
    pass it to an executor, or to ``run_stream``, in place of the model (arguments: see
    :class:`_Clocked`)."""

    def stepwise_view(self, inputs: torch.Tensor):
        from mmdynamic.models.utils.step_major import executor_view
        steps, view_inputs = executor_view(self.inner, inputs)
        return TimedSteps(steps, self.clock, self.names), view_inputs


class _TimedModule(nn.Module):
    """``module`` with every call timed as ``name`` (samples: the first input's batch)."""

    def __init__(self, module: nn.Module, name: str, clock: StepTimes) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self.clock = clock

    def forward(self, *args, **kwargs):
        samples = _batch_of(args[0]) if args else 0
        return self.clock.call(self.name, samples, lambda: self.module(*args, **kwargs))


@contextmanager
def timed_submodules(model: Optional[nn.Module], parts: Dict[str, str],
                     clock: StepTimes) -> Iterator[None]:
    """Within the context, the submodules ``parts`` (label -> dotted name) of ``model`` are timed
    by ``clock`` under their labels (TorchScript modules included); they are put back after."""
    swapped = []
    try:
        for label, name in parts.items():
            parent_name, _, leaf = name.rpartition('.')
            parent = model.get_submodule(parent_name) if parent_name else model
            inner = parent.get_submodule(leaf)
            setattr(parent, leaf, _TimedModule(inner, label, clock))
            swapped.append((parent, leaf, inner))
        yield
    finally:
        for parent, leaf, inner in reversed(swapped):
            setattr(parent, leaf, inner)


def _timed_pass(clock: StepTimes, fn: Callable[[], Any]) -> float:
    """Seconds of ``fn()`` (device work included), under ``torch.inference_mode()``."""
    with torch.inference_mode():
        synchronize(clock.device)
        start = time.perf_counter()
        fn()
        synchronize(clock.device)
    return time.perf_counter() - start


def measure_step_times(setup: StreamSetup, points: List[Dict]) -> List[Dict]:
    """One pass of the stream through the static baseline and through each executor at each
    operating point, every step (and static part) timed (see the module docstring).

    Returns:
        list[dict]: The static pass (``budget_gmacs`` None, ``mode`` 'static'), then per point the
        per-batch and the step-major pass: ``budget_gmacs``, ``mode`` and ``rows``
        (:meth:`StepTimes.rows`: ``part``, ``calls``, ``samples``, ``seconds``).
    """
    clock = StepTimes(setup.device)
    with timed_submodules(setup.static_module, setup.static_parts, clock):
        total = _timed_pass(clock, lambda: run_static(setup))
    tables = [dict(budget_gmacs=None, mode='static',
                   rows=clock.rows(list(setup.static_parts), STATIC_REST_PART, total))]
    order = [INIT_PART] + list(setup.step_names)
    runners = dict(zip(EXECUTORS, (run_per_batch, run_step_major)))
    for p in points:
        for mode in EXECUTORS:
            clock = StepTimes(setup.device)
            model = TimedModel(setup.model, clock, setup.step_names)
            total = _timed_pass(clock, lambda: runners[mode](setup, p['thresholds'], model))
            tables.append(dict(budget_gmacs=p['budget'] / 1e9, mode=mode,
                               rows=clock.rows(order, EXECUTOR_PART, total)))
    return tables


def step_time_rows(tables: List[Dict], name: str, static_name: str,
                   num_samples: int) -> List[str]:
    """Markdown rows of :func:`measure_step_times`'s tables (under :data:`STEP_TIMES_HEADER`);
    ``ms per sample`` divides by the samples of a part's calls (by ``num_samples`` for the rest
    and the total)."""
    lines = []
    for table in tables:
        model = (static_name if table['budget_gmacs'] is None else
                 f"{name} @ {table['budget_gmacs']:.3g} G")
        total = table['rows'][-1]['seconds'] or float('inf')
        for row in table['rows']:
            samples = row['samples'] if row['samples'] is not None else num_samples
            calls = '-' if row['calls'] is None else str(row['calls'])
            per_call = '-' if not row['calls'] else f"{row['samples'] / row['calls']:.1f}"
            per_sample = row['seconds'] * 1e3 / samples if samples else 0.0
            lines.append(f"| {model} | {table['mode']} | {row['part']} | {calls} | {per_call} | "
                         f"{row['seconds'] * 1e3:.1f} | {per_sample:.3f} | "
                         f"{row['seconds'] / total:.0%} |")
    return lines


def add_stream_args(parser) -> None:
    """The options of the throughput modes besides the stream's size: ``--max-queued`` and
    ``--step-times``."""
    parser.add_argument('--max-queued', type=int,
                        help='throughput mode: queue limit of the step-major executor')
    parser.add_argument('--step-times', action='store_true',
                        help='throughput mode: also time every step of each executor (and the '
                        'parts of the static baseline) in one more pass, and report where the '
                        'time goes')


__all__ = [
    'STREAM_HEADER', 'STEP_TIMES_HEADER', 'StreamSetup', 'StepTimes', 'TimedSteps', 'TimedModel',
    'add_stream_args', 'fit_points', 'load_average', 'measure_step_times', 'run_per_batch',
    'run_static', 'run_step_major', 'step_time_rows', 'stream_rows', 'time_stream',
    'timed_submodules'
]
