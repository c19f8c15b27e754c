# Copyright (c) mmdynamic contributors. All rights reserved.
from .budget_eval_hook import BudgetEvalHook

__all__ = ['BudgetEvalHook']
