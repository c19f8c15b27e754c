# Copyright (c) mmdynamic contributors. All rights reserved.
"""Train only some parameters at the start of training (e.g. SAR's mask generators)."""
from typing import Sequence

import torch
from mmengine.hooks import Hook

from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model


@register_dual(HOOKS)
class WarmupFreezeHook(Hook):
    """During the first ``until`` fraction of the training iterations, zero the gradients of every
    parameter whose name contains none of ``trainable``, so that only those learn; afterwards all
    parameters learn.

    Issue #19: SAR's mask generators choose their cells while the target density ramps down; when
    the network adapts to the masks at the same time, the object's refinement is either kept (the
    network relies on it) or dropped (the network learns to do without it), by chance. With the
    network held at its pre-trained state during the ramp, the task gradient the masks follow is
    that of the network that needed every cell refined. (GFNet's stage II likewise trains its
    policy against frozen networks.)

    The gradients are zeroed by tensor hooks on the parameters (compatible with DDP, whose buckets
    then reduce zeros), so the optimizer's weight decay still applies to the held parameters (for
    SGD: ``lr * weight_decay`` of each weight per iteration). Batch-norm statistics keep updating.
    The state is a pure function of the iteration (resume-safe).

    Args:
        trainable (Sequence[str]): Substrings of the names of the parameters that learn from the
            start (e.g. ``('.masks.', )`` for SAR's mask generators).
        until (float): Fraction of the training iterations during which the others are held.
    """

    def __init__(self, trainable: Sequence[str] = ('.masks.', ), until: float = 0.3) -> None:
        if isinstance(trainable, str) or not trainable:
            raise ValueError(f'trainable must be a non-empty sequence of name parts, got '
                             f'{trainable!r}')
        if not 0.0 <= until <= 1.0:
            raise ValueError(f'until must be a fraction of training in [0, 1], got {until}')
        self.trainable, self.until = tuple(trainable), until
        self.holding = False

    def before_train(self, runner) -> None:
        params = {name: p for name, p in unwrap_model(runner.model).named_parameters()
                  if p.requires_grad}
        held = [p for name, p in params.items()
                if not any(part in name for part in self.trainable)]
        if len(held) == len(params):
            raise ValueError(f'WarmupFreezeHook: no trainable parameter name contains any of '
                             f'{self.trainable}')
        for param in held:
            param.register_hook(self._gate)
        runner.logger.info(f'WarmupFreezeHook: {len(params) - len(held)} of {len(params)} '
                           f'parameters learn during the first {self.until:.0%} of training')

    def _gate(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad) if self.holding else grad

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.holding = runner.iter < self.until * runner.max_iters
