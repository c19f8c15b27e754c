# Copyright (c) mmdynamic contributors. All rights reserved.
"""Train only some parameters at the start of training and hold others after it (e.g. SAR's mask
generators)."""
import re
from typing import Iterator, List, Sequence

import torch
from mmengine.hooks import Hook

from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model

# optimizer state that keeps moving a parameter whose gradient is zero (SGD momentum, Adam's mean)
MOVING_STATE = ('momentum_buffer', 'exp_avg')


@register_dual(HOOKS)
class WarmupFreezeHook(Hook):
    """Two phases of training with different parameters learning.

    During the first ``until`` fraction of the training iterations, the gradients of every parameter
    whose name contains none of ``trainable`` are zeroed, so that only those learn. Afterwards every
    parameter learns, except those whose names match one of ``held_after``, which stay as they are
    until the end.

    Issue #19: SAR's mask generators choose their cells while the target density ramps down; when
    the network adapts to the masks at the same time, the object's refinement is either kept (the
    network relies on it) or dropped (the network learns to do without it), by chance. With the
    network held at its pre-trained state during the ramp, the task gradient the masks follow is
    that of the network that needed every cell refined. With the generators' weights held after the
    ramp (``held_after``; their biases still follow the density target), the network then adapts to
    the cells chosen, instead of the masks re-choosing for a network that is learning to do without
    some of them (in the demo, masks that were object-selective at the end of the ramp drifted back
    off the object while the network fine-tuned). (GFNet's stages II and III likewise alternate
    between the policy and the networks.)

    The gradients are zeroed by tensor hooks on the parameters (compatible with DDP, whose buckets
    then reduce zeros), so the optimizer's weight decay still applies to the held parameters (for
    SGD: ``lr * weight_decay`` of each weight per iteration). When the ``held_after`` parameters
    stop, their momentum (``momentum_buffer`` of SGD, ``exp_avg`` of Adam) is cleared so that they
    stop moving at once. Batch-norm statistics keep updating. Which parameters learn is a pure
    function of the iteration (resume-safe).

    Args:
        trainable (Sequence[str]): Substrings of the names of the parameters that learn from the
            start (e.g. ``('.masks.', )`` for SAR's mask generators).
        until (float): Fraction of the training iterations during which the others are held.
        held_after (Sequence[str]): Regular expressions (searched in the parameter names) of the
            parameters held from ``until`` to the end of training, e.g. SAR's mask generators but
            their 1x1 biases: ``(r'\\.masks\\.\\d+\\.(conv|bn|fc\\.weight)', )``. Defaults to ()
            (every parameter learns after ``until``).
    """

    def __init__(self, trainable: Sequence[str] = ('.masks.', ), until: float = 0.3,
                 held_after: Sequence[str] = ()) -> None:
        if isinstance(trainable, str) or not trainable:
            raise ValueError(f'trainable must be a non-empty sequence of name parts, got '
                             f'{trainable!r}')
        if not 0.0 <= until <= 1.0:
            raise ValueError(f'until must be a fraction of training in [0, 1], got {until}')
        if isinstance(held_after, str):
            raise ValueError(f'held_after must be a sequence of regular expressions, got '
                             f'{held_after!r}')
        try:
            self.held_after = tuple(re.compile(pattern) for pattern in held_after)
        except re.error as err:
            raise ValueError(f'held_after: {err.pattern!r} is not a regular expression: {err}')
        self.trainable, self.until = tuple(trainable), until
        self.warmup = False  # the others are held
        self.after = False  # the held_after parameters are held
        self._stopped: List[torch.nn.Parameter] = []
        self._cleared = False

    def before_train(self, runner) -> None:
        params = {name: p for name, p in unwrap_model(runner.model).named_parameters()
                  if p.requires_grad}
        held = [p for name, p in params.items()
                if not any(part in name for part in self.trainable)]
        if len(held) == len(params):
            raise ValueError(f'WarmupFreezeHook: no trainable parameter name contains any of '
                             f'{self.trainable}')
        for param in held:
            param.register_hook(self._gate_warmup)
        runner.logger.info(f'WarmupFreezeHook: {len(params) - len(held)} of {len(params)} '
                           f'parameters learn during the first {self.until:.0%} of training')
        if not self.held_after:
            return
        stopped = [name for name in params
                   if any(pattern.search(name) for pattern in self.held_after)]
        if not stopped:
            raise ValueError('WarmupFreezeHook: no trainable parameter name matches held_after '
                             f'{[p.pattern for p in self.held_after]}')
        self._stopped = [params[name] for name in stopped]
        for param in self._stopped:
            param.register_hook(self._gate_after)
        runner.logger.info(f'WarmupFreezeHook: {len(stopped)} parameters held after '
                           f'{self.until:.0%} of training: {", ".join(stopped)}')

    def _gate_warmup(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad) if self.warmup else grad

    def _gate_after(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad) if self.after else grad

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.warmup = runner.iter < self.until * runner.max_iters
        self.after = bool(self._stopped) and not self.warmup
        if self.after and not self._cleared:
            self._clear_moving_state(runner)
            self._cleared = True

    def _clear_moving_state(self, runner) -> None:
        stopped = {id(p) for p in self._stopped}
        for optimizer in _optimizers(runner.optim_wrapper):
            for param, state in optimizer.state.items():
                if id(param) not in stopped:
                    continue
                for key in MOVING_STATE:
                    if torch.is_tensor(state.get(key)):
                        state[key].zero_()


def _optimizers(optim_wrapper) -> Iterator[torch.optim.Optimizer]:
    """The optimizers of an ``OptimWrapper`` or of each wrapper of an ``OptimWrapperDict``."""
    if hasattr(optim_wrapper, 'optimizer'):
        yield optim_wrapper.optimizer
    else:
        for wrapper in optim_wrapper.values():
            yield wrapper.optimizer
