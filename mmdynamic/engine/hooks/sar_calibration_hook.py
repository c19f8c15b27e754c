# Copyright (c) mmdynamic contributors. All rights reserved.
"""Fit the test-time mask density of a SAR model to its target at the end of training."""
from itertools import islice
from typing import Optional

from mmengine.hooks import Hook

from mmdynamic.models.utils.sar_calibration import calibrate_mask_density
from mmdynamic.registry import HOOKS, register_dual
from .sar_schedule_hook import sar_task_model


@register_dual(HOOKS)
class SARDensityCalibrationHook(Hook):
    """After the last training iteration, shift the refine bias of every SAR mask generator so that
    its test-time (argmax) masks refine the target fraction of the training data
    (:func:`~mmdynamic.models.utils.sar_calibration.calibrate_mask_density`; issue #19, not in
    the paper or the authors' code).

    Runs before the checkpoint hook (priority ``NORMAL`` < ``VERY_LOW``), so the last checkpoint and
    the final validation hold the calibrated biases. Each rank runs its shard of the training data;
    the thresholds are fitted on the cells of all ranks, so every rank applies the same shifts.

    Args:
        target (float, optional): Density to fit. Defaults to the model's ``sparsity.target``.
        per_group (bool, optional): One shift per mask group or per mask. Defaults to per group
            when the model's sparsity loss is ``'group'``, per mask otherwise.
        max_batches (int, optional): Batches of the training data loader to use per rank.
            Defaults to all (one pass).
    """
    priority = 'NORMAL'

    def __init__(self, target: Optional[float] = None, per_group: Optional[bool] = None,
                 max_batches: Optional[int] = None) -> None:
        if target is not None and not 0.0 <= target <= 1.0:
            raise ValueError(f'the target density must be in [0, 1], got {target}')
        if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
            raise ValueError(f'max_batches must be a positive int or None, got {max_batches!r}')
        self.target, self.per_group, self.max_batches = target, per_group, max_batches

    @staticmethod
    def _model(runner):
        return sar_task_model(runner, 'SARDensityCalibrationHook')

    def before_train(self, runner) -> None:
        self._model(runner)  # fail before training, not after it

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.is_last_train_iter(runner):
            self.calibrate(runner)

    def calibrate(self, runner) -> list:
        """Calibrate the model of ``runner`` on its training data loader; returns the report."""
        model = self._model(runner)
        target = model.sparsity_cfg['target'] if self.target is None else self.target
        per_group = (model.sparsity_cfg['loss_type'] == 'group'
                     if self.per_group is None else self.per_group)

        def batches():
            return (model.data_preprocessor(batch, False)['inputs']
                    for batch in islice(runner.train_dataloader, self.max_batches))

        report = calibrate_mask_density(model.backbone, batches, target, per_group)
        runner.logger.info(
            f'SAR density calibration to {target:g}: test-time mask densities on the training '
            'data ' + ', '.join(f"{r['before']:.3f}->{r['after']:.3f}" for r in report))
        return report
