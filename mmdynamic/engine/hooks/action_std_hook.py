# Copyright (c) mmdynamic contributors. All rights reserved.
"""A schedule of the Gaussian action std of patch policies (GFNet's stage II)."""
from typing import List

from mmengine.hooks import Hook
from torch import nn

from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model

from .sar_schedule_hook import linear_schedule


def action_std_modules(model: nn.Module) -> List[nn.Module]:
    """The submodules of ``model`` that sample Gaussian actions with a fixed std (an
    ``action_std`` attribute, e.g. :class:`~mmdynamic.models.cls.gfnet.GFPatchPolicy`)."""
    return [m for m in model.modules() if isinstance(getattr(m, 'action_std', None), float)]


@register_dual(HOOKS)
class ActionStdScheduleHook(Hook):
    """Moves the std of a patch policy's Gaussian actions linearly from ``std_start`` to
    ``std_end`` over the training iterations (not in the paper, whose std is fixed at 0.1).

    A wide std early explores locations far from the initial action; a narrow one late gives the
    PPO update a sharper estimate of which way the mean should move (issue #19). The std is a pure
    function of the iteration, so a resumed run continues the schedule exactly; within one
    iteration the rollout and its PPO updates use the same std, so the PPO ratio stays exact.

    Args:
        std_start (float): Std at the first iteration.
        std_end (float): Std at the last iteration.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, std_start: float, std_end: float) -> None:
        if std_start <= 0 or std_end <= 0:
            raise ValueError(f'action stds must be positive, got std_start={std_start}, '
                             f'std_end={std_end}')
        self.std_start, self.std_end = float(std_start), float(std_end)

    def std_at(self, iteration: int, max_iters: int) -> float:
        """The std for training iteration ``iteration`` (0-based) of ``max_iters``."""
        return linear_schedule(iteration / max(1, max_iters - 1), self.std_start, self.std_end)

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        if not action_std_modules(model):
            raise TypeError('ActionStdScheduleHook needs a model with a Gaussian patch policy (a '
                            f'module with a float action_std, e.g. GFNet), got '
                            f'{type(model).__name__}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = unwrap_model(runner.model)
        std = self.std_at(runner.iter, runner.max_iters)
        for module in action_std_modules(model):
            module.action_std = std
        runner.message_hub.update_scalar('train/action_std', std)
