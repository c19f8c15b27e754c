# Copyright (c) mmdynamic contributors. All rights reserved.
from .exit_metrics import (AnytimeAccuracy, AnytimeMAP, BudgetedAccuracy, BudgetedMAP,
                           needs_every_exit, resolve_ratios)
from .exit_outputs import exit_record, label_of, stack_records

__all__ = [
    'AnytimeAccuracy', 'AnytimeMAP', 'BudgetedAccuracy', 'BudgetedMAP', 'needs_every_exit',
    'resolve_ratios', 'exit_record', 'label_of', 'stack_records'
]
