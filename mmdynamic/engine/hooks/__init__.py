# Copyright (c) mmdynamic contributors. All rights reserved.
from .budget_eval_hook import BudgetEvalHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .sar_schedule_hook import SARScheduleHook, exponential_temperature, stepped_target

__all__ = ['BudgetEvalHook', 'NonFiniteLossHook', 'SARScheduleHook', 'exponential_temperature', 'stepped_target']
