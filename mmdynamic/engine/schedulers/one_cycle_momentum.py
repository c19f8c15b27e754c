# Copyright (c) mmdynamic contributors. All rights reserved.
"""The momentum half of the one-cycle policy (Smith & Topin), which MMEngine's ``OneCycleLR`` lacks.

MMEngine's ``OneCycleLR`` schedules the learning rate only; PyTorch's ``OneCycleLR`` also cycles the
momentum inversely to it (max -> base while the learning rate rises, base -> max while it falls).
:class:`OneCycleMomentum` adds that second half with the same phases, so that

    param_scheduler = [
        dict(type='OneCycleLR', eta_max=0.1, pct_start=0.2, by_epoch=False, total_steps=N),
        dict(type='OneCycleMomentum', base_momentum=0.85, max_momentum=0.95, pct_start=0.2,
             by_epoch=False, total_steps=N)]

reproduces ``torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=N, pct_start=0.2)``
(the MGNet recipe) step by step.
"""
import math
from typing import List, Optional, Union

from mmengine.optim import BaseOptimWrapper
from mmengine.optim.scheduler.momentum_scheduler import MomentumSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from torch.optim import Optimizer

from mmdynamic.registry import PARAM_SCHEDULERS, register_dual


class OneCycleParamCycleScheduler(_ParamScheduler):
    """Cycle a parameter inversely to the one-cycle learning rate: ``max -> base`` in the rising
    phase, ``base -> max`` in the falling one (three phases: ``max -> base -> max``, then ``max``).

    Args:
        optimizer (Optimizer | BaseOptimWrapper): Wrapped optimizer.
        param_name (str): The scheduled parameter.
        base_value (float): Value at the learning-rate peak. max_value (float): At the ends.
        total_steps (int, optional): Steps of the cycle; ``end - begin`` if None.
        pct_start (float): Fraction of the cycle spent raising the learning rate. Defaults to 0.3.
        anneal_strategy (str): ``'cos'`` or ``'linear'``. Defaults to ``'cos'``.
        three_phase (bool): As in ``OneCycleLR``. Defaults to False.
        begin, end, last_step, by_epoch, verbose: See :class:`_ParamScheduler`.
    """

    def __init__(self, optimizer: Union[Optimizer, BaseOptimWrapper], param_name: str,
                 base_value: float, max_value: float, total_steps: Optional[int] = None,
                 pct_start: float = 0.3, anneal_strategy: str = 'cos', three_phase: bool = False,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        if total_steps is None:
            if end == INF:
                raise ValueError('OneCycleMomentum needs total_steps or a finite end')
            total_steps = end - begin
        if not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f'total_steps must be a positive integer, got {total_steps}')
        if not 0 <= pct_start <= 1:
            raise ValueError(f'pct_start must be in [0, 1], got {pct_start}')
        if anneal_strategy not in ('cos', 'linear'):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy}")
        self.total_steps = total_steps
        self.base_value = float(base_value)
        self.max_value = float(max_value)
        self.anneal_strategy = anneal_strategy
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [(up, 'max', 'base'), (float(2 * pct_start * total_steps) - 2, 'base', 'max'),
                           (total_steps - 1, 'max', 'max')]
        else:
            self.phases = [(up, 'max', 'base'), (total_steps - 1, 'base', 'max')]
        super().__init__(optimizer=optimizer, param_name=param_name, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == 'linear':
            return start + (end - start) * pct
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def value_at(self, step: int) -> float:
        """The value after ``step`` scheduler steps (the value at step 0 is ``max_value``)."""
        values = dict(base=self.base_value, max=self.max_value)
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(self.phases):
            if step <= end_step or i == len(self.phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return self._anneal(values[start], values[end], pct)
            start_step = end_step
        raise AssertionError('unreachable')

    def _get_value(self) -> List[float]:
        if self.last_step > self.total_steps:
            raise ValueError(f'Tried to step {self.last_step + 1} times; the cycle has '
                             f'{self.total_steps} steps')
        return [self.value_at(self.last_step) for _ in self.optimizer.param_groups]

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, total_steps=None, by_epoch=True,
                              epoch_length=None, **kwargs):
        """Build an iteration-based instance from an epoch-based config."""
        if not by_epoch or not epoch_length:
            raise ValueError('convert_to_iter_based needs by_epoch=True and the epoch length')
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        if total_steps is not None:
            total_steps = total_steps * epoch_length
        return cls(*args, begin=begin, end=end, total_steps=total_steps, by_epoch=False, **kwargs)


@register_dual(PARAM_SCHEDULERS)
class OneCycleMomentum(MomentumSchedulerMixin, OneCycleParamCycleScheduler):
    """One-cycle momentum (SGD momentum, or beta 1 of Adam-type optimizers), PyTorch's defaults.

    Args:
        optimizer (Optimizer | BaseOptimWrapper): Wrapped optimizer.
        base_momentum (float): Momentum at the learning-rate peak. Defaults to 0.85.
        max_momentum (float): Momentum at the start and the end. Defaults to 0.95.
        **kwargs: ``total_steps``, ``pct_start``, ``anneal_strategy``, ``three_phase``, ``begin``,
            ``end``, ``last_step``, ``by_epoch``, ``verbose`` (see
            :class:`OneCycleParamCycleScheduler`); use the values of the ``OneCycleLR`` it pairs with.
    """

    def __init__(self, optimizer: Union[Optimizer, BaseOptimWrapper], base_momentum: float = 0.85,
                 max_momentum: float = 0.95, **kwargs) -> None:
        if not 0 <= base_momentum <= max_momentum < 1:
            raise ValueError('need 0 <= base_momentum <= max_momentum < 1, got '
                             f'{base_momentum}, {max_momentum}')
        super().__init__(optimizer, base_value=base_momentum, max_value=max_momentum, **kwargs)
