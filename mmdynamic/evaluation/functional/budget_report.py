# Copyright (c) mmdynamic contributors. All rights reserved.
"""The budget-evaluation report: anytime table, budget curve, values at requested budgets.

Shared by :class:`~mmdynamic.engine.hooks.BudgetEvalHook` and
:class:`~mmdynamic.evaluation.metrics.BudgetedAccuracy`; written as ``budget.json``.
"""
from typing import Dict, List, Optional, Sequence

import torch

from .budget import (GFNET_RATIOS, BudgetSolver, ExitPolicy, anytime_metric,
                     evaluate_thresholds)

GIGA = 1e9


def build_report(test_logits: torch.Tensor, test_labels: torch.Tensor, exit_costs: Sequence[float],
                 solver: Optional[BudgetSolver] = None, budgets: Sequence[float] = (),
                 ratios: Sequence[float] = GFNET_RATIOS, metric: str = 'top1',
                 policy: Optional[ExitPolicy] = None, reference: Optional[Dict] = None) -> Dict:
    """Evaluate budgeted early exit on test outputs.

    Args:
        test_logits (Tensor): (K, N, C) logits of every test sample at every exit.
        test_labels (Tensor): (N, ) class indices or (N, C) multi-hot labels.
        exit_costs (Sequence[float]): (K, ) cumulative MACs of the exits.
        solver (BudgetSolver, optional): Fitted on the fit split; gives the curve and the budgets.
        budgets (Sequence[float]): Requested budgets in MACs (needs ``solver``).
        ratios (Sequence[float]): Prior ratios of the curve's operating points.
        metric (str): 'top1' or 'mAP' (ranked by softmax probabilities).
        policy (ExitPolicy, optional): Fixed thresholds (e.g. loaded from a file) used instead of a
            solver: the report then has this single operating point.
        reference (dict, optional): The static backbone's point: ``name``, ``gmacs``, ``metric``.

    Returns:
        dict: The report (JSON-serialisable); its ``policies`` entry holds the :class:`ExitPolicy` of
        each requested budget.
    """
    if solver is None and policy is None:
        raise ValueError('build_report needs a fitted solver or a fixed exit policy')
    if solver is not None and policy is not None:
        raise ValueError('give either a solver or a fixed exit policy, not both')
    costs = [float(c) for c in exit_costs]
    report: Dict = dict(
        num_exits=len(costs),
        metric=metric,
        exit_flops=[c / GIGA for c in costs],
        anytime=anytime_metric(test_logits, test_labels, metric),
        reference=reference,
    )

    def evaluate(p: ExitPolicy) -> Dict:
        scores = solver.scores_of(test_logits) if solver is not None else None
        if scores is None:
            from mmdynamic.models.utils.confidence import get_confidence_fn
            scores = get_confidence_fn(p.confidence)(test_logits.float()).double()
        thresholds = test_logits.new_tensor(p.thresholds, dtype=torch.float64)
        value, cost, fractions = evaluate_thresholds(test_logits, test_labels, scores, thresholds,
                                                     costs, metric)
        return dict(gmacs=cost / GIGA, metric=value, ratio=p.ratio,
                    fit_gmacs=p.expected_cost / GIGA, exit_fractions=fractions.tolist())

    policies: List[ExitPolicy] = []
    if solver is not None:
        report.update(model=solver.model, confidence=solver.confidence_name,
                      fit_split=solver.fit_split, optimistic=solver.fit_split == 'val',
                      fit_num_samples=int(solver.exit_logits.shape[1]))
        points = [evaluate(p) for p in solver.sweep(ratios)]
        report['curve'] = [[pt['gmacs'], pt['metric']] for pt in points]
        report['curve_ratios'] = [pt['ratio'] for pt in points]
        report['budgets'] = []
        for budget in budgets:
            chosen = solver.policy_for_budget(budget)
            policies.append(chosen)
            report['budgets'].append(dict(budget_gmacs=budget / GIGA, **evaluate(chosen)))
    else:
        point = evaluate(policy)
        report.update(model=policy.model, confidence=policy.confidence, fit_split=policy.fit_split,
                      optimistic=policy.fit_split == 'val', curve=[[point['gmacs'],
                                                                   point['metric']]],
                      curve_ratios=[policy.ratio], budgets=[])
        if policy.budget is not None:
            report['budgets'].append(dict(budget_gmacs=policy.budget / GIGA, **point))
        policies.append(policy)
    report['thresholds'] = {f'{p.budget / GIGA:.6g}' if p.budget is not None else 'fixed':
                            p.to_dict()['thresholds'] for p in policies}
    report['policies'] = policies
    return report


def format_report(report: Dict) -> str:
    """A plain-text summary of a report for logs."""
    name = report['metric']
    lines = [f"exit  cumulative GMACs  anytime {name}"]
    for k, (g, m) in enumerate(zip(report['exit_flops'], report['anytime'])):
        lines.append(f'{k + 1:>4}  {g:>16.4g}  {m:>10.2f}')
    if 'curve' not in report:  # anytime only
        return '\n'.join(lines)
    if report.get('optimistic'):
        lines.append('thresholds fitted on the validation data: the budget results are optimistic')
    lines.append(f"budget curve ({len(report['curve'])} operating points, confidence "
                 f"{report.get('confidence')}, thresholds fitted on {report.get('fit_split')}):")
    lines.append('  GMACs      ' + name)
    for g, m in report['curve']:
        lines.append(f'  {g:<10.4g} {m:.2f}')
    for b in report['budgets']:
        lines.append(f"budget {b['budget_gmacs']:.4g} GMACs: {name} {b['metric']:.2f} at "
                     f"{b['gmacs']:.4g} GMACs on the test data")
    ref = report.get('reference')
    if ref:
        lines.append(f"reference {ref.get('name', 'backbone')}: {name} {ref['metric']} at "
                     f"{ref['gmacs']} GMACs")
    return '\n'.join(lines)


def jsonable(report: Dict) -> Dict:
    """The report without the :class:`ExitPolicy` objects."""
    return {k: v for k, v in report.items() if k != 'policies'}
