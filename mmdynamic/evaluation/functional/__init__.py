# Copyright (c) mmdynamic contributors. All rights reserved.
from .budget import (GFNET_RATIOS, UNIADAFOCUS_RATIOS, BudgetSolver, ExitPolicy, anytime_metric,
                     assign_exits, evaluate_thresholds, exit_fractions, expected_cost,
                     fit_thresholds, geometric_exit_priors, get_metric_fn,
                     mean_average_precision, mean_average_precision_from_logits,
                     top1_accuracy)
from .budget_report import build_report, format_report, jsonable
from .mask_selectivity import (MaskSelectivity, foreground_cells, mask_selectivity,
                               merge_selectivity, object_cells)

__all__ = [
    'GFNET_RATIOS', 'UNIADAFOCUS_RATIOS', 'BudgetSolver', 'ExitPolicy', 'anytime_metric',
    'assign_exits', 'evaluate_thresholds', 'exit_fractions', 'expected_cost', 'fit_thresholds',
    'geometric_exit_priors', 'get_metric_fn', 'mean_average_precision',
    'mean_average_precision_from_logits', 'top1_accuracy',
    'build_report', 'format_report', 'jsonable', 'MaskSelectivity', 'mask_selectivity',
    'merge_selectivity', 'object_cells', 'foreground_cells'
]
