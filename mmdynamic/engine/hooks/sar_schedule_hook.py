# Copyright (c) mmdynamic contributors. All rights reserved.
"""Temperature and target-density schedules of SAR, and its density/MACs statistics."""
import math
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model


def exponential_temperature(progress: float, start: float = 1.0, end: float = 0.01) -> float:
    """tau = start * (end / start) ** progress, progress in [0, 1] (clamped)."""
    progress = min(max(progress, 0.0), 1.0)
    return start * (end / start)**progress


def linear_schedule(progress: float, start: float, end: float) -> float:
    """start + (end - start) * progress, progress in [0, 1] (clamped)."""
    progress = min(max(progress, 0.0), 1.0)
    return start + (end - start) * progress


def stepped_target(progress: float, target: float, begin: float = 0.3, end: float = 0.5,
                   steps: Optional[int] = 3) -> float:
    """The target density schedule of SAR (sar.md §3): 1 until ``begin``, then three equal steps down
    to ``target``, reached at ``end`` (fractions of training): 1 -> t + 2(1-t)/3 -> t + (1-t)/3 -> t.

    Args:
        progress (float): Fraction of training done.
        target (float): Final target t.
        begin (float): Fraction where the target leaves 1. Defaults to 0.3.
        end (float): Fraction where it reaches ``target``. Defaults to 0.5.
        steps (int, optional): Number n of equal steps (the paper: 3). Step k = 1..n sets
            ``t + (1 - t)(n - k) / n`` at ``begin + (k - 1)(end - begin) / (n - 1)`` (the first at
            ``begin``, the last at ``end``; n = 1: one step to t at ``begin``). None: a linear ramp
            from 1 at ``begin`` to t at ``end``, so the target never jumps (issue #19: a jump of the
            target drove the refine logits of whole masks into saturation before the task had
            chosen their cells).
    """
    if not 0 <= begin <= end <= 1:
        raise ValueError(f'need 0 <= begin <= end <= 1, got begin={begin}, end={end}')
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f'steps must be a positive int or None (linear), got {steps!r}')
    if progress < begin:
        return 1.0
    if progress >= end:
        return target
    fraction = (progress - begin) / (end - begin)  # in [0, 1)
    if steps is None:
        return 1.0 - (1.0 - target) * fraction
    done = 1 if steps == 1 else int(fraction * (steps - 1)) + 1  # steps taken, 1..steps - 1
    return target + (1 - target) * (steps - done) / steps


def step_progress(begin: float, end: float, steps: Optional[int]) -> Optional[list]:
    """Fractions of training where :func:`stepped_target` changes the target (None: a linear ramp,
    which changes it continuously)."""
    if steps is None:
        return None
    if steps == 1:
        return [begin]
    return [begin + k * (end - begin) / (steps - 1) for k in range(steps)]


def epochs_resolve_steps(max_epochs: int, begin: float, end: float, steps: Optional[int]) -> bool:
    """Whether stepping the target by epochs keeps every step of the schedule: each step falls in
    an epoch of its own (step k is taken at the first epoch e with e / max_epochs >= its fraction).
    False for a linear ramp and for short schedules (6 epochs, steps at 10 / 20 / 30 %: the steps
    at 20 and 30 % both land on epoch 2, so the target jumps two steps at once)."""
    points = step_progress(begin, end, steps)
    if points is None:
        return False
    epochs = [math.ceil(p * max_epochs - 1e-9) for p in points]
    return len(set(epochs)) == len(epochs)


def sar_task_model(runner, hook: str):
    """The SAR task model inside ``runner.model`` (unwrapped); a TypeError naming ``hook`` if the
    model has no SAR sparsity loss."""
    model = unwrap_model(runner.model)
    if not hasattr(model, 'sparsity_cfg') or not hasattr(model, 'backbone'):
        raise TypeError(f'{hook} needs a SAR task model (SARImageClassifier, SARFasterRCNN, '
                        f'SARRetinaNet, SAREncoderDecoder), got {type(model).__name__}')
    return model


@register_dual(HOOKS)
class SARScheduleHook(Hook):
    """Sets SAR's Gumbel temperature and target density before every training iteration, and logs the
    realised density of every mask and the realised GMACs in validation and test.

    Values are pure functions of the progress (iteration, or epoch for epoch-based loops when
    ``by_epoch``), so a resumed run continues the schedules exactly. Works with DDP (the model is
    unwrapped); validation statistics are summed over all ranks.

    Args:
        tau_start (float): Initial temperature. Defaults to 1.0.
        tau_end (float): Final temperature. Defaults to 0.01.
        target_begin (float): Fraction of training where the target leaves 1. Defaults to 0.3.
        target_end (float): Fraction of training where the target reaches its final value
            (the model's ``sparsity.target``). Defaults to 0.5.
        by_epoch (bool, optional): Step the target by epochs (the authors' schedule) or by
            iterations. Defaults (None) to epochs for epoch-based loops whose epochs resolve every
            step of the schedule (:func:`epochs_resolve_steps`), iterations otherwise (with a
            note in the log). The temperature always decays per iteration. ``by_epoch=True`` on
            a short schedule aliases: at 6 epochs and steps at 10-30 % the target goes
            1 -> 0.83 (epoch 1) -> 0.5 (epoch 2), two steps at once.
        target_steps (int, optional): Number of equal target steps (the paper's 3, the default),
            or None for a linear ramp from 1 at ``target_begin`` to the target at ``target_end``
            (see :func:`stepped_target`; by iterations unless ``by_epoch``).
        noise_start (float): Factor on the Gumbel noise of the training masks at the start.
            Defaults to 1.0 (the paper's sample, all through training).
        noise_end (float): The factor at the end of training, reached linearly per iteration.
            Defaults to 1.0. Below 1 (not in the paper or the authors' code; issue #19) the
            training masks approach the test-time argmax masks: with the full noise a mask meets
            its target with every logit near 0 (each cell a coin flip, P = sigmoid(logit)), and
            the argmax masks of such logits choose their cells at random.
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, tau_start: float = 1.0, tau_end: float = 0.01, target_begin: float = 0.3,
                 target_end: float = 0.5, by_epoch: Optional[bool] = None,
                 target_steps: Optional[int] = 3, noise_start: float = 1.0,
                 noise_end: float = 1.0) -> None:
        if tau_start <= 0 or tau_end <= 0:
            raise ValueError(f'temperatures must be positive, got {tau_start}, {tau_end}')
        if noise_start < 0 or noise_end < 0:
            raise ValueError(f'Gumbel noise factors must be >= 0, got {noise_start}, {noise_end}')
        self.noise_start, self.noise_end = noise_start, noise_end
        stepped_target(0.0, 0.5, target_begin, target_end, target_steps)  # validates the options
        self.tau_start, self.tau_end = tau_start, tau_end
        self.target_begin, self.target_end = target_begin, target_end
        self.by_epoch = by_epoch
        self.target_steps = target_steps
        self._stats: Dict[str, torch.Tensor] = {}

    @staticmethod
    def _model(runner):
        return sar_task_model(runner, 'SARScheduleHook')

    def values_at(self, runner) -> Dict[str, float]:
        """The temperature, Gumbel noise factor and target for the coming iteration."""
        model = self._model(runner)
        iter_progress = runner.iter / max(1, runner.max_iters)
        by_epoch = self.by_epoch
        if by_epoch is None:
            by_epoch = self._auto_by_epoch(runner)
        progress = runner.epoch / max(1, runner.max_epochs) if by_epoch else iter_progress
        return dict(
            tau=exponential_temperature(iter_progress, self.tau_start, self.tau_end),
            noise=linear_schedule(iter_progress, self.noise_start, self.noise_end),
            target=stepped_target(progress, model.sparsity_cfg['target'], self.target_begin,
                                  self.target_end, self.target_steps))

    def _auto_by_epoch(self, runner) -> bool:
        """by_epoch=None: epochs for an epoch-based loop that resolves every target step."""
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return False
        return epochs_resolve_steps(runner.max_epochs, self.target_begin, self.target_end,
                                    self.target_steps)

    def before_train(self, runner) -> None:
        self._model(runner)  # fail early on a model without SAR
        if (self.by_epoch is None and isinstance(runner.train_loop, EpochBasedTrainLoop)
                and not self._auto_by_epoch(runner)):
            print_log(f'SARScheduleHook: {runner.max_epochs} epochs do not resolve the target '
                      f'schedule (steps={self.target_steps} between {self.target_begin:g} and '
                      f'{self.target_end:g} of training), so the target follows the iterations',
                      logger='current')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = self._model(runner)
        values = self.values_at(runner)
        model.backbone.tau = values['tau']
        model.backbone.gumbel_noise = values['noise']
        model.current_target = values['target']
        runner.message_hub.update_scalar('train/tau', values['tau'])
        if self.noise_start != 1.0 or self.noise_end != 1.0:
            runner.message_hub.update_scalar('train/gumbel_noise', values['noise'])

    # ---------------------------------------------------------------- evaluation statistics
    def _reset(self, runner) -> None:
        """Clear the statistics."""
        self._stats = {}

    def _collect(self, runner) -> None:
        model = unwrap_model(runner.model)
        backbone = getattr(model, 'backbone', None)
        if backbone is None or not getattr(backbone, 'last_masks', None):
            return
        flops = backbone.last_flops.double()
        # area-weighted with cells in pixels, as the MACs
        densities = torch.stack([f.detach().double().sum() for f in backbone.mask_fractions()])
        batch = flops.new_tensor(float(flops.numel()))
        if not self._stats:
            self._stats = dict(count=batch * 0, macs=flops.sum() * 0, density=densities * 0)
        self._stats['count'] += batch
        self._stats['macs'] += flops.sum().cpu()
        self._stats['density'] += densities.cpu()

    def _log(self, runner, prefix: str) -> None:
        if not self._stats:
            return
        stats = {k: v.clone() for k, v in self._stats.items()}
        for value in stats.values():
            all_reduce(value)  # sum over ranks (no-op without distributed training)
        count = stats['count'].item()
        density = (stats['density'] / count).tolist()
        gmacs = stats['macs'].item() / count / 1e9
        runner.message_hub.update_scalar(f'{prefix}/gmacs', gmacs)
        runner.message_hub.update_scalar(f'{prefix}/density', float(sum(density) / len(density)))
        for i, d in enumerate(density):
            runner.message_hub.update_scalar(f'{prefix}/density_m{i}', d)
        runner.logger.info(f'SAR {prefix}: {gmacs:.4f} GMACs per sample over {int(count)} samples; '
                           'mask densities ' + ', '.join(f'{d:.3f}' for d in density))
        self._stats = {}

    def before_val_epoch(self, runner) -> None:
        self._reset(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._collect(runner)

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._log(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._reset(runner)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._collect(runner)

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._log(runner, 'test')
