# Copyright (c) mmdynamic contributors. All rights reserved.
"""Step-major (throughput) early exit: the survivors of many input batches are pooled per step.

:class:`~mmdynamic.models.utils.EarlyExitExecutor` runs one input batch through every step; after
each step the batch shrinks, and the late steps run on a handful of survivors, where a convolution
does least work per second. :class:`StepMajorExecutor` takes a stream of batches instead: step 0
runs on the incoming batches, the samples that do not exit wait with their explicit state (see
:mod:`~mmdynamic.models.utils.early_exit`) in the queue of their next step, and step k runs whenever
its queue holds a full batch (and on the remainders when the stream ends). Every sample gets the
prediction, exit and cost it gets from the per-batch executor; only the order of the work changes.

A step must therefore treat the samples of a batch independently (eval-mode BatchNorm is fine;
training-mode BatchNorm is refused) and the states of two batches must have the same structure
(:func:`concat_batch` names the first difference).

Memory: after every call each queue holds less than a full batch, so at most
``num_exits * (batch_size - 1)`` samples wait; ``max_queued`` lowers that bound by running the step
whose oldest sample has waited longest on a partial batch until the limit holds again.
"""
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .confidence import get_confidence_fn
from .early_exit import State, StepwiseMixin, exit_mask, gather_batch


def concat_batch(trees: Sequence[State], path: str = 'state') -> State:
    """Concatenate (along dim 0) the tensors of several states of one structure.

    The inverse of splitting a batch with :func:`gather_batch`: dicts need the same keys, lists and
    tuples the same length, and leaves that are not batched (None, 0-dim tensors, numbers, strings)
    the same value in every state.

    Args:
        trees (Sequence): States whose tensors are (B_i, ...) with equal trailing dimensions.
        path (str): Name of the structure in error messages.

    Returns:
        The state of the concatenated batch (sum of B_i rows).

    Raises:
        ValueError: If the structures differ (naming where).
    """
    if not trees:
        raise ValueError('concat_batch needs at least one state')
    first = trees[0]
    if len(trees) == 1:
        return first
    if first is None:
        if any(t is not None for t in trees):
            raise ValueError(f'{path} is None in one batch and not in another')
        return None
    if isinstance(first, torch.Tensor):
        if not all(isinstance(t, torch.Tensor) for t in trees):
            raise ValueError(f'{path} is a tensor in one batch and not in another')
        if first.dim() == 0:
            if any(t.dim() != 0 or not torch.equal(t, first) for t in trees):
                raise ValueError(f'{path} is a 0-dim tensor that differs between batches (a '
                                 'value shared by a whole batch cannot be pooled)')
            return first
        shapes = {tuple(t.shape[1:]) for t in trees}
        if len(shapes) > 1 or any(t.dim() != first.dim() for t in trees):
            raise ValueError(f'{path} has different shapes beyond the batch dimension: '
                             f'{sorted(shapes)}; batches of differently shaped inputs or states '
                             'cannot be pooled')
        return torch.cat(list(trees), dim=0)
    if isinstance(first, dict):
        keys = list(first.keys())
        for t in trees:
            if not isinstance(t, dict) or set(t.keys()) != set(keys):
                raise ValueError(f'{path} has keys {sorted(keys)} in one batch and '
                                 f'{sorted(t.keys()) if isinstance(t, dict) else type(t).__name__}'
                                 ' in another')
        return type(first)((k, concat_batch([t[k] for t in trees], f'{path}[{k!r}]'))
                           for k in keys)
    if isinstance(first, (list, tuple)):
        if any(not isinstance(t, (list, tuple)) or len(t) != len(first) for t in trees):
            raise ValueError(f'{path} has a different length in one batch')
        items = [concat_batch([t[i] for t in trees], f'{path}[{i}]') for i in range(len(first))]
        return type(first)(*items) if hasattr(first, '_fields') else type(first)(items)
    if isinstance(first, (int, float, str, bool)):
        if any(t != first for t in trees):
            raise ValueError(f'{path} is a per-batch value that differs between batches '
                             f'({first!r} vs others); it cannot be pooled')
        return first
    raise TypeError(f'cannot concatenate a state of type {type(first).__name__} at {path}; use '
                    'tensors with the batch as their first dimension')


def slice_batch(tree: State, start: int, stop: int) -> State:
    """Rows ``start:stop`` (along dim 0, as views) of every tensor in a nested state."""
    if isinstance(tree, torch.Tensor):
        return tree[start:stop] if tree.dim() > 0 else tree
    if isinstance(tree, dict):
        return type(tree)((k, slice_batch(v, start, stop)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        items = [slice_batch(v, start, stop) for v in tree]
        return type(tree)(*items) if hasattr(tree, '_fields') else type(tree)(items)
    return tree


def step_signature(model: Any) -> Any:
    """What decides which computation ``model.step`` runs, for checking that two step-wise objects
    may run one pooled batch: modules by identity; wrappers (plain objects such as the multi-view or
    inputs-in-state adapters) by type and their attributes, tensors left out (per-call data)."""
    if isinstance(model, nn.Module):
        return ('module', id(model))
    if isinstance(model, torch.Tensor):
        return None
    if isinstance(model, (int, float, str, bool, type(None))):
        return model
    if isinstance(model, (list, tuple)):
        return tuple(step_signature(v) for v in model)
    if isinstance(model, dict):
        return tuple(sorted((k, step_signature(v)) for k, v in model.items()))
    attrs = getattr(model, '__dict__', None)
    if attrs is None:
        return ('object', id(model))
    return (type(model), tuple(sorted((k, step_signature(v)) for k, v in attrs.items())))


def batch_coupled_modules(model: Any) -> List[str]:
    """Names of modules in ``model`` (or in the step-wise wrappers around it) whose output for one
    sample depends on the other samples of the batch: BatchNorm layers in training mode."""
    found: List[str] = []
    seen = set()

    def visit(obj: Any, prefix: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, nn.Module):
            for name, module in obj.named_modules(prefix=prefix):
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
                    found.append(name or type(module).__name__)
            return
        for key, value in getattr(obj, '__dict__', {}).items():
            if isinstance(value, (nn.Module, StepwiseMixin)):
                visit(value, f'{prefix}.{key}' if prefix else key)

    visit(model, '')
    return found


@dataclass
class StepMajorResult:
    """Samples finished since the last :meth:`StepMajorExecutor.pop_finished`.

    Args:
        keys (Tensor): (N, ) the sample ids :meth:`StepMajorExecutor.submit` returned, ascending.
        logits (Tensor): (N, C) logits of each sample at its exit.
        exits (Tensor): (N, ) 0-based exit index of each sample.
    """
    keys: torch.Tensor
    logits: torch.Tensor
    exits: torch.Tensor


class _Chunk:
    """Consecutive samples waiting for one step: their ids (n, ), inputs (n, ...) and state."""

    def __init__(self, keys: torch.Tensor, inputs: torch.Tensor, state: State) -> None:
        self.keys = keys
        self.inputs = inputs
        self.state = state

    def __len__(self) -> int:
        return int(self.keys.numel())

    def split(self, n: int) -> Tuple['_Chunk', '_Chunk']:
        """The first ``n`` samples and the rest."""
        return (_Chunk(self.keys[:n], self.inputs[:n], slice_batch(self.state, 0, n)),
                _Chunk(self.keys[n:], self.inputs[n:], slice_batch(self.state, n, len(self))))


class StepMajorExecutor:
    """Early exit over a stream of batches, each step run on full batches pooled from many inputs.

    Usage::

        executor = StepMajorExecutor(policy.thresholds, policy.confidence, batch_size=32)
        for images in stream:
            keys = executor.submit(model, images)     # ids of these samples
            done = executor.pop_finished()            # samples that exited meanwhile
        executor.finish()                             # the remainders
        done = executor.pop_finished()

    Args:
        thresholds (Sequence[float]): (K, ) per-exit thresholds; the last exit accepts everything.
        confidence (str | Callable): Confidence function (name or callable on (B, C) logits).
        batch_size (int): Samples per step call once the queues are full.
        max_queued (int, optional): At most this many samples wait between steps after a call
            (None: the natural bound ``num_exits * (batch_size - 1)``; 0: no sample waits, every
            submitted batch runs to its end as in the per-batch executor).

    Attributes:
        step_batches (list[list[int]]): The batch size of every call of each step, for reports.
    """

    def __init__(self, thresholds: Sequence[float],
                 confidence: Union[str, Callable] = 'max_softmax', batch_size: int = 32,
                 max_queued: Optional[int] = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        if max_queued is not None and (not isinstance(max_queued, int) or max_queued < 0):
            raise ValueError(f'max_queued must be None or an int >= 0, got {max_queued!r}')
        self.thresholds = [float(t) for t in thresholds]
        if not self.thresholds:
            raise ValueError('thresholds must name one value per exit, got none')
        self.confidence = get_confidence_fn(confidence)
        self.batch_size = batch_size
        self.max_queued = max_queued
        self.num_exits = len(self.thresholds)
        self._queues: List[Deque[_Chunk]] = [deque() for _ in range(self.num_exits)]
        self._queued = [0] * self.num_exits
        self._model: Optional[StepwiseMixin] = None
        self._signature = None
        self._next_key = 0
        self._finished: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.step_batches: List[List[int]] = [[] for _ in range(self.num_exits)]

    # ------------------------------------------------------------------ public
    @property
    def num_queued(self) -> int:
        """Samples waiting between steps (submitted, not finished)."""
        return sum(self._queued)

    @torch.no_grad()
    def submit(self, model: StepwiseMixin, inputs: torch.Tensor, **kwargs) -> torch.Tensor:
        """Add a batch to the stream and run every step that has a full batch.

        Args:
            model (StepwiseMixin): The step-wise model (the same for the whole stream; wrappers
                around it must be equivalent, see :func:`step_signature`).
            inputs (Tensor): (B, ...) the batch.
            kwargs: For ``model.init_state``.

        Returns:
            Tensor: (B, ) int64 ids of these samples (consecutive over the stream).
        """
        self._check_model(model)
        batch = int(inputs.shape[0])
        keys = torch.arange(self._next_key, self._next_key + batch, dtype=torch.long)
        self._next_key += batch
        if batch == 0:
            return keys
        state = model.init_state(inputs, **kwargs)
        self._push(0, _Chunk(keys, inputs, state))
        self._work()
        return keys

    @torch.no_grad()
    def finish(self) -> None:
        """Run the remainders: every queue in step order, in batches of at most ``batch_size``."""
        for index in range(self.num_exits):
            while self._queued[index]:
                self._run(index, min(self.batch_size, self._queued[index]))

    def pop_finished(self) -> Optional[StepMajorResult]:
        """The samples that exited since the last call, sorted by id (None if there are none)."""
        if not self._finished:
            return None
        keys, logits, exits = (torch.cat(parts) for parts in zip(*self._finished))
        self._finished = []
        order = keys.argsort()
        return StepMajorResult(keys=keys[order], logits=logits[order.to(logits.device)],
                               exits=exits[order])

    # ------------------------------------------------------------------ internals
    def _check_model(self, model: StepwiseMixin) -> None:
        """The model of the first batch, or one that runs the same steps (checked per batch); no
        batch-coupled modules (checked on the first batch: the stream runs in eval mode)."""
        if getattr(model, 'num_exits', None) != self.num_exits:
            raise ValueError(f'{self.num_exits} thresholds for a model with '
                             f'{getattr(model, "num_exits", None)} exits')
        signature = step_signature(model)
        reason = model.batch_dependent_steps() if hasattr(model, 'batch_dependent_steps') else None
        if reason:
            raise ValueError('step-major early exit pools samples of different batches and must '
                             'give each sample the outputs of the per-batch executor, but for '
                             f'{type(model).__name__} {reason}')
        if self._model is None:
            coupled = batch_coupled_modules(model)
            if coupled:
                raise RuntimeError('step-major early exit pools samples of different batches, '
                                   f'but these modules mix the samples of a batch: {coupled[:5]} '
                                   '(BatchNorm in training mode); call model.eval() first')
            self._model, self._signature = model, signature
        elif signature != self._signature:
            raise ValueError('every batch of a step-major stream must run the same step-wise '
                             f'model; got {type(model).__name__} configured differently from the '
                             f'first batch\'s {type(self._model).__name__} (e.g. another number of '
                             'views)')

    def _push(self, index: int, chunk: _Chunk) -> None:
        self._queues[index].append(chunk)
        self._queued[index] += len(chunk)

    def _take(self, index: int, n: int) -> _Chunk:
        """The first ``n`` samples of queue ``index`` as one chunk."""
        queue, parts, left = self._queues[index], [], n
        while left:
            chunk = queue.popleft()
            if len(chunk) > left:
                chunk, rest = chunk.split(left)
                queue.appendleft(rest)
            parts.append(chunk)
            left -= len(chunk)
        self._queued[index] -= n
        if len(parts) == 1:
            return parts[0]
        return _Chunk(torch.cat([p.keys for p in parts]),
                      concat_batch([p.inputs for p in parts], 'inputs'),
                      concat_batch([p.state for p in parts]))

    def _work(self) -> None:
        """Run full batches (deepest step first: it frees the most), then enforce ``max_queued``."""
        while True:
            full = [k for k in range(self.num_exits) if self._queued[k] >= self.batch_size]
            if not full:
                break
            self._run(full[-1], self.batch_size)
        limit = self.max_queued
        while limit is not None and self.num_queued > limit:
            oldest = min((k for k in range(self.num_exits) if self._queued[k]),
                         key=lambda k: int(self._queues[k][0].keys[0]))
            self._run(oldest, min(self.batch_size, self._queued[oldest]))

    def _run(self, index: int, n: int) -> None:
        """Step ``index`` on the first ``n`` samples of its queue; the survivors move on."""
        chunk = self._take(index, n)
        self.step_batches[index].append(n)
        logits, state = self._model.step(index, chunk.inputs, chunk.state)
        leave = exit_mask(logits, index, self.thresholds, self.confidence)
        if bool(leave.any()):
            rows = leave.nonzero(as_tuple=True)[0]
            self._finished.append((chunk.keys[rows.cpu()], logits.index_select(0, rows),
                                   torch.full((rows.numel(), ), index, dtype=torch.long)))
        stay = (~leave).nonzero(as_tuple=True)[0]
        if stay.numel() == 0:
            return
        if stay.numel() < n:
            chunk = _Chunk(chunk.keys[stay.cpu()], chunk.inputs.index_select(0, stay),
                           gather_batch(state, stay))
        else:
            chunk = _Chunk(chunk.keys, chunk.inputs, state)
        self._push(index + 1, chunk)


def executor_view(model: StepwiseMixin, inputs: torch.Tensor) -> Tuple[StepwiseMixin, torch.Tensor]:
    """The step-wise object and the inputs that the model's own early exit runs an executor on.

    Models with a ``stepwise_view(inputs)`` method (the AdaFocus recognizers: multi-view
    averaging, the videos carried in the state) give an adapter; other models run themselves on
    their inputs.

    Args:
        model (StepwiseMixin): The step-wise model.
        inputs (Tensor): (B, ...) a preprocessed batch.

    Returns:
        tuple: the step-wise object and its (B, ...) inputs.
    """
    view = getattr(model, 'stepwise_view', None)
    return view(inputs) if callable(view) else (model, inputs)


def exit_costs(model: StepwiseMixin, inputs: torch.Tensor) -> torch.Tensor:
    """Cumulative MACs (K, ) float64 of each exit for one sample of ``inputs`` (B, ...), as the
    model's ``predict`` writes them into the data samples (``exit_macs``): the model's own
    ``exit_costs(inputs)`` when it has one, else ``exit_macs_for`` of one sample's shape."""
    own = getattr(model, 'exit_costs', None)
    if callable(own):
        return torch.as_tensor(own(inputs), dtype=torch.float64)
    return torch.tensor(model.exit_macs_for(tuple(inputs.shape[1:])), dtype=torch.float64)


def run_stream(executor: StepMajorExecutor, model: StepwiseMixin,
               batches: Iterable[torch.Tensor]) -> StepMajorResult:
    """Run a stream of batches (each (B_i, ...)) of ``model`` through ``executor`` (each batch as
    the model's own early exit would run it, :func:`executor_view`) and return every sample in
    stream order (ids 0..N-1)."""
    results: List[StepMajorResult] = []
    for inputs in batches:
        executor.submit(*executor_view(model, inputs))
        done = executor.pop_finished()
        if done is not None:
            results.append(done)
    executor.finish()
    done = executor.pop_finished()
    if done is not None:
        results.append(done)
    if not results:
        raise ValueError('run_stream got an empty stream')
    keys = torch.cat([r.keys for r in results])
    order = keys.argsort()
    logits = torch.cat([r.logits for r in results])
    return StepMajorResult(keys=keys[order], logits=logits[order.to(logits.device)],
                           exits=torch.cat([r.exits for r in results])[order])


__all__ = [
    'StepMajorExecutor', 'StepMajorResult', 'concat_batch', 'slice_batch', 'step_signature',
    'batch_coupled_modules', 'executor_view', 'exit_costs', 'run_stream'
]
