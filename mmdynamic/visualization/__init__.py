# Copyright (c) mmdynamic contributors. All rights reserved.
from .budget_plot import plot_budget_report

__all__ = ['plot_budget_report']
