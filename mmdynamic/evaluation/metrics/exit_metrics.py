# Copyright (c) mmdynamic contributors. All rights reserved.
"""Metrics of step-wise models for MMEngine evaluators: anytime and budgeted accuracy (or mAP)."""
from typing import Dict, List, Optional, Sequence, Union

from mmengine.evaluator import BaseMetric

from mmdynamic.registry import METRICS, register_dual

from ..functional.budget import (GFNET_RATIOS, UNIADAFOCUS_RATIOS, BudgetSolver, ExitPolicy,
                                 anytime_metric)
from ..functional.budget_report import GIGA, build_report
from .exit_outputs import exit_record, stack_records

RATIO_SETS = {'gfnet': GFNET_RATIOS, 'uniadafocus': UNIADAFOCUS_RATIOS}


def resolve_ratios(ratios: Union[str, Sequence[float]]) -> Sequence[float]:
    """'gfnet' (p/20, p = 1..39), 'uniadafocus' (p = 1..19) or explicit ratios."""
    if isinstance(ratios, str):
        if ratios not in RATIO_SETS:
            raise ValueError(f'unknown ratio set {ratios!r}; choose {sorted(RATIO_SETS)} or give '
                             'a list of ratios')
        return RATIO_SETS[ratios]
    return [float(r) for r in ratios]


class _ExitMetric(BaseMetric):
    """A metric of the logits of every exit of every sample (a run without early exit)."""

    def process(self, data_batch, data_samples: Sequence) -> None:
        self.results.extend(exit_record(sample) for sample in data_samples)


def needs_every_exit(metric_cfg: Union[dict, BaseMetric]) -> bool:
    """Whether a metric (config or instance) reads the logits of every exit, which a model that
    runs early exit (``model.exit_policy`` set) does not give."""
    if isinstance(metric_cfg, BaseMetric):
        return isinstance(metric_cfg, _ExitMetric)
    kind = metric_cfg.get('type') if isinstance(metric_cfg, dict) else None
    if isinstance(kind, type):
        return issubclass(kind, _ExitMetric)
    if not isinstance(kind, str):
        return False
    name = kind.rsplit('.', 1)[-1]
    return any(cls.__name__ == name for cls in _exit_metric_classes())


def _exit_metric_classes() -> List[type]:
    found, todo = [], [_ExitMetric]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@register_dual(METRICS)
class AnytimeAccuracy(_ExitMetric):
    """The metric at every exit when every sample runs every step (anytime prediction).

    Args:
        metric (str): 'top1' (accuracy, %) or 'mAP' (multi-label mAP, %). Defaults to 'top1'.
        collect_device (str): See :class:`BaseMetric`. prefix (str): Defaults to 'anytime'.
    """
    default_prefix = 'anytime'

    def __init__(self, metric: str = 'top1', collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metric = metric

    def compute_metrics(self, results: List[Dict]) -> Dict[str, float]:
        logits, labels, _ = stack_records(results)
        values = anytime_metric(logits, labels, self.metric)
        return {f'{self.metric}_exit{k + 1}': v for k, v in enumerate(values)}


@register_dual(METRICS)
class BudgetedAccuracy(_ExitMetric):
    """Budgeted early-exit accuracy (or mAP) on the evaluated data.

    Thresholds are fitted on the evaluated data itself (reported as optimistic), unless
    ``exit_policy`` gives thresholds fitted elsewhere. For thresholds fitted on the training set, as the
    papers do, use :class:`~mmdynamic.engine.hooks.BudgetEvalHook`.

    Args:
        budgets (Sequence[float]): Budgets in GMACs per sample.
        confidence (str): 'max_softmax', 'max_logit' or 'neg_entropy'.
        ratios (str | Sequence[float]): Operating points of the curve ('gfnet', 'uniadafocus').
        metric (str): 'top1' or 'mAP'.
        exit_policy (str, optional): A policy file to evaluate instead of fitting.
        collect_device (str): See :class:`BaseMetric`. prefix (str): Defaults to 'budget'.
    """
    default_prefix = 'budget'

    def __init__(self, budgets: Sequence[float] = (), confidence: str = 'max_softmax',
                 ratios: Union[str, Sequence[float]] = 'gfnet', metric: str = 'top1',
                 exit_policy: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.budgets = [float(b) for b in budgets]
        self.confidence = confidence
        self.ratios = resolve_ratios(ratios)
        self.metric = metric
        self.exit_policy = exit_policy

    def compute_metrics(self, results: List[Dict]) -> Dict[str, float]:
        logits, labels, costs = stack_records(results)
        if self.exit_policy is not None:
            policy = ExitPolicy.load(self.exit_policy, num_exits=logits.shape[0])
            report = build_report(logits, labels, costs, policy=policy, metric=self.metric)
        else:
            solver = BudgetSolver(logits, costs, self.confidence, fit_split='val')
            report = build_report(logits, labels, costs, solver=solver,
                                  budgets=[b * GIGA for b in self.budgets], ratios=self.ratios,
                                  metric=self.metric)
        out = {}
        for entry in report['budgets']:
            key = f"{entry['budget_gmacs']:.4g}G"
            out[f'{self.metric}@{key}'] = entry['metric']
            out[f'gmacs@{key}'] = entry['gmacs']
        if self.exit_policy is not None or not self.budgets:
            gmacs, value = report['curve'][-1]
            out[f'{self.metric}_max_budget'] = value
            out['gmacs_max_budget'] = gmacs
        return out


@register_dual(METRICS)
class AnytimeMAP(AnytimeAccuracy):
    """:class:`AnytimeAccuracy` with multi-label mAP (video recognition): per class, the samples are
    ranked by the softmax probabilities of their exit logits (ActivityNet / FCVID protocol)."""

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(metric='mAP', collect_device=collect_device, prefix=prefix)


@register_dual(METRICS)
class BudgetedMAP(BudgetedAccuracy):
    """:class:`BudgetedAccuracy` with multi-label mAP (video recognition): per class, the samples are
    ranked by the softmax probabilities of the logits of the exit each one takes (ActivityNet / FCVID
    protocol)."""

    def __init__(self, budgets: Sequence[float] = (), confidence: str = 'neg_entropy',
                 ratios: Union[str, Sequence[float]] = 'uniadafocus',
                 exit_policy: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(budgets=budgets, confidence=confidence, ratios=ratios, metric='mAP',
                         exit_policy=exit_policy, collect_device=collect_device, prefix=prefix)
