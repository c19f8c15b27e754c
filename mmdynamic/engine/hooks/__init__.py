# Copyright (c) mmdynamic contributors. All rights reserved.
from .action_std_hook import ActionStdScheduleHook, action_std_modules
from .budget_eval_hook import BudgetEvalHook
from .label_range_hook import LabelRangeHook, check_label_range, model_num_classes
from .nonfinite_loss_hook import NonFiniteLossHook
from .sar_calibration_hook import SARDensityCalibrationHook
from .sar_schedule_hook import SARScheduleHook, exponential_temperature, stepped_target
from .warmup_freeze_hook import WarmupFreezeHook

__all__ = [
    'ActionStdScheduleHook', 'action_std_modules', 'BudgetEvalHook', 'NonFiniteLossHook',
    'LabelRangeHook', 'check_label_range', 'model_num_classes', 'SARDensityCalibrationHook',
    'SARScheduleHook', 'exponential_temperature', 'stepped_target', 'WarmupFreezeHook'
]
