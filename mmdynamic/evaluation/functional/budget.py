# Copyright (c) mmdynamic contributors. All rights reserved.
"""Budgeted early exit, MSDNet style (as used by GFNet and Uni-AdaFocus): one solver for every model.

A step-wise model has K exits with cumulative costs C_1 <= ... <= C_K (MACs of running steps 1..k).
An *operating point* is a prior over exits, q_k proportional to r^k (GFNet: r = p/20, p = 1..39;
Uni-AdaFocus: p = 1..19). Thresholds are fitted on held-out scores so that a fraction q_k of the samples
exits at exit k: walking the exits in order, the floor(N q_k) most confident samples that have not exited
yet exit at k, and the threshold is the score of the last of them. The last exit accepts everything.
At test time a sample exits at the first k with score_k >= threshold_k; expected cost is
sum_k (fraction exiting at k) * C_k.

Decisions (documented; the official codes differ in corner cases):
- An exit whose quota is 0 gets threshold +inf (no sample exits there).
- Ties at a threshold let more than the quota exit (``>=``, as in the official code).
- If fewer samples remain than an exit's quota, all remaining samples exit there.
"""
import json
import math
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

GFNET_RATIOS = tuple(p / 20 for p in range(1, 40))
UNIADAFOCUS_RATIOS = tuple(p / 20 for p in range(1, 20))


def geometric_exit_priors(num_exits: int, ratio: float) -> np.ndarray:
    """Exit priors q_k proportional to ``ratio**k`` for k = 1..K (sums to 1). Returns: (K, )."""
    if num_exits < 1:
        raise ValueError(f'num_exits must be >= 1, got {num_exits}')
    if ratio <= 0:
        raise ValueError(f'the prior ratio must be positive, got {ratio}')
    logs = np.arange(1, num_exits + 1) * math.log(ratio)
    priors = np.exp(logs - logs.max())
    return priors / priors.sum()


def fit_thresholds(scores: torch.Tensor, priors: Sequence[float],
                   midpoints: bool = False) -> torch.Tensor:
    """Thresholds that make a fraction ``priors[k]`` of the samples exit at exit k.

    Args:
        scores (Tensor): (K, N) confidence of every sample at every exit.
        priors (Sequence[float]): (K, ) target exit fractions.
        midpoints (bool): Put each threshold halfway between the score of the last sample that
            exits and the next lower score, instead of on that sample's score (the official code).
            The same samples of ``scores`` exit; for samples that are then run again in other
            batches (a benchmark timing the stream it was fitted on), whose scores float rounding
            moves with the batch composition (measured: up to 1.3e-5 of the score in
            Uni-AdaFocus's later steps), no sample then sits on a threshold. Defaults to False.

    Returns:
        Tensor: (K, ) float64 thresholds on the device of ``scores``; ``+inf`` where nobody exits,
        ``-inf`` at the last exit.
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)
    num_exits, num = scores.shape
    if len(priors) != num_exits:
        raise ValueError(f'{len(priors)} priors for {num_exits} exits')
    thresholds = torch.full((num_exits, ), math.inf, dtype=torch.float64, device=scores.device)
    exited = torch.zeros(num, dtype=torch.bool, device=scores.device)
    for k in range(num_exits - 1):
        quota = int(math.floor(num * float(priors[k]) + 1e-9))
        remaining = scores[k][~exited]
        if quota == 0 or remaining.numel() == 0:
            continue
        ordered = remaining.sort(descending=True).values
        last = min(quota, ordered.numel()) - 1
        thresholds[k] = ordered[last]
        if midpoints and last + 1 < ordered.numel():
            thresholds[k] = (ordered[last] + ordered[last + 1]) / 2
        exited |= scores[k] >= thresholds[k]
    thresholds[-1] = -math.inf
    return thresholds


def assign_exits(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Exit of every sample: the first k with ``scores[k] >= thresholds[k]``.

    Args:
        scores (Tensor): (K, N). thresholds (Tensor): (K, ), the last one accepts everything.

    Returns:
        Tensor: (N, ) int64 exit indices, on the device of ``scores``.
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64, device=scores.device).clone()
    thresholds[-1] = -math.inf
    passed = scores >= thresholds[:, None]
    return passed.to(torch.int64).argmax(dim=0)


def exit_fractions(exits: torch.Tensor, num_exits: int) -> torch.Tensor:
    """Fraction of samples at each exit. Args: exits (N, ). Returns: (K, ) float64."""
    counts = torch.bincount(exits, minlength=num_exits).to(torch.float64)
    return counts / max(1, exits.numel())


def expected_cost(fractions: Sequence[float], exit_costs: Sequence[float]) -> float:
    """sum_k fractions[k] * exit_costs[k] (cumulative costs)."""
    return float(sum(float(f) * float(c) for f, c in zip(fractions, exit_costs)))


def top1_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent. Args: scores (N, C); labels (N, ) class indices."""
    return float((scores.argmax(dim=-1) == labels.to(scores.device)).to(torch.float64).mean() * 100)


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-label mAP in percent: mean over classes with at least one positive of the average
    precision (the mean of the precision at the rank of each positive).

    Args:
        scores (Tensor): (N, C) scores comparable across samples, e.g. softmax probabilities
            (:func:`mean_average_precision_from_logits` takes logits).
        labels (Tensor): (N, C) multi-hot, or (N, ) class indices.
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)
    labels = labels.to(scores.device)
    if labels.dim() == 1:
        labels = torch.nn.functional.one_hot(labels.long(), scores.shape[1])
    labels = labels.to(torch.bool)
    aps = []
    for c in range(scores.shape[1]):
        positives = int(labels[:, c].sum())
        if positives == 0:
            continue
        order = scores[:, c].argsort(descending=True, stable=True)
        hits = labels[order, c].to(torch.float64)
        precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64,
                                                  device=hits.device)
        aps.append(float((precision * hits).sum() / positives))
    if not aps:
        raise ValueError('mAP needs at least one positive label')
    return float(np.mean(aps) * 100)


def mean_average_precision_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-label mAP in percent of predictions given as logits: the samples are ranked by their
    softmax probabilities (the ActivityNet / FCVID protocol of the official evaluation), not by the
    raw logits, whose ranking across samples differs (a logit is only meaningful relative to the
    other logits of its sample).

    Args:
        logits (Tensor): (N, C) logits. labels (Tensor): (N, C) multi-hot, or (N, ) class indices.
    """
    probs = torch.as_tensor(logits, dtype=torch.float64).softmax(dim=-1)
    return mean_average_precision(probs, labels)


# metric name -> function of (logits (N, C), labels); what the anytime / budgeted evaluations use
METRIC_FUNCTIONS: Dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    'top1': top1_accuracy,
    'mAP': mean_average_precision_from_logits,
}


def get_metric_fn(metric: str) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """The metric function of ``metric`` ('top1' or 'mAP'); it takes logits (N, C) and labels."""
    if metric not in METRIC_FUNCTIONS:
        raise ValueError(f'unknown metric {metric!r}; choose one of {sorted(METRIC_FUNCTIONS)}')
    return METRIC_FUNCTIONS[metric]


def anytime_metric(exit_logits: torch.Tensor, labels: torch.Tensor, metric: str = 'top1'
                   ) -> List[float]:
    """The metric at every exit when every sample runs every step. Args: exit_logits (K, N, C)
    (logits: the mAP ranks by their softmax probabilities)."""
    fn = get_metric_fn(metric)
    return [fn(logits, labels) for logits in exit_logits]


def evaluate_thresholds(exit_logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
                        thresholds: torch.Tensor, exit_costs: Sequence[float],
                        metric: str = 'top1') -> Tuple[float, float, torch.Tensor]:
    """Metric and expected cost of early exit with ``thresholds``.

    Args:
        exit_logits (Tensor): (K, N, C). labels (Tensor): (N, ) or (N, C). scores (Tensor): (K, N).
        thresholds (Tensor): (K, ). exit_costs (Sequence[float]): (K, ) cumulative costs.

    Returns:
        tuple: (metric, expected cost, exit fractions (K, )).
    """
    exits = assign_exits(scores, thresholds).to(exit_logits.device)
    chosen = exit_logits[exits, torch.arange(exit_logits.shape[1], device=exit_logits.device)]
    fractions = exit_fractions(exits, exit_logits.shape[0])
    return get_metric_fn(metric)(chosen, labels), expected_cost(fractions, exit_costs), fractions


def _encode(values: Sequence[float]) -> List:
    return [v if math.isfinite(v) else ('inf' if v > 0 else '-inf') for v in map(float, values)]


def _decode(values: Sequence) -> List[float]:
    return [float(v) for v in values]


@dataclass
class ExitPolicy:
    """Everything needed to run (and check) budgeted early exit for one model.

    Args:
        thresholds (list[float]): (K, ) per-exit thresholds; the last is ``-inf``.
        exit_costs (list[float]): (K, ) cumulative MACs of each exit (per sample).
        confidence (str): Name of the confidence function.
        model (str): Type name of the model the thresholds were fitted for.
        fit_split (str): 'train', 'heldout' or 'val' (optimistic).
        ratio (float): The prior ratio r of the operating point.
        expected_cost (float): Expected MACs on the fit split.
        budget (float, optional): The budget (MACs) this policy was chosen for.
    """
    thresholds: List[float]
    exit_costs: List[float]
    confidence: str
    model: str
    fit_split: str
    ratio: float
    expected_cost: float
    budget: Optional[float] = None
    meta: Dict = field(default_factory=dict)

    @property
    def num_exits(self) -> int:
        return len(self.thresholds)

    def to_dict(self) -> Dict:
        out = asdict(self)
        out['thresholds'] = _encode(self.thresholds)
        return out

    @classmethod
    def from_dict(cls, data: Dict) -> 'ExitPolicy':
        data = dict(data)
        data['thresholds'] = _decode(data['thresholds'])
        return cls(**data)

    def check_compatible(self, model: str, num_exits: int) -> None:
        """Refuse a policy made for another model or another number of exits."""
        if self.model != model:
            raise ValueError(f'these exit thresholds were fitted for model {self.model!r}, not for '
                             f'{model!r}')
        if self.num_exits != num_exits:
            raise ValueError(f'these exit thresholds are for {self.num_exits} exits, but the model '
                             f'has {num_exits}')

    def save(self, path: str) -> None:
        """Write the policy as JSON (atomically)."""
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str, model: Optional[str] = None, num_exits: Optional[int] = None,
             budget: Optional[float] = None) -> 'ExitPolicy':
        """Read a policy and check it against ``model`` and ``num_exits``.

        Args:
            path (str): A JSON file written by :meth:`save`, or a checkpoint whose meta holds
                ``exit_policies`` (written by the BudgetEvalHook).
            model (str, optional): The model type name the policy must be for.
            num_exits (int, optional): The number of exits it must have.
            budget (float, optional): With a checkpoint, the budget in GMACs whose policy to take
                (needed when it holds several).
        """
        if not osp.isfile(path):
            raise FileNotFoundError(f'exit-policy file not found: {path}')
        if path.endswith(('.pth', '.pt', '.ckpt')):
            policy = cls._from_checkpoint(path, budget)
        else:
            with open(path, encoding='utf-8') as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{path} is not a valid exit-policy JSON file: {err}') from None
            missing = {'thresholds', 'exit_costs', 'confidence', 'model'} - set(data)
            if missing:
                raise ValueError(f'{path} is not an exit-policy file (missing {sorted(missing)})')
            policy = cls.from_dict(data)
        if model is not None or num_exits is not None:
            policy.check_compatible(model or policy.model,
                                    num_exits if num_exits is not None else policy.num_exits)
        return policy

    @classmethod
    def _from_checkpoint(cls, path: str, budget: Optional[float]) -> 'ExitPolicy':
        import torch
        meta = torch.load(path, map_location='cpu', weights_only=True).get('meta', {})
        stored = [cls.from_dict(p) for p in meta.get('exit_policies', [])]
        if not stored:
            raise ValueError(f'{path} holds no exit policies (meta["exit_policies"]); fit them with '
                             'BudgetEvalHook(during_val=True) or tools/test.py --budget')
        if budget is None:
            if len(stored) > 1:
                options = ', '.join(f'{p.budget / 1e9:.4g}' for p in stored)
                raise ValueError(f'{path} holds policies for several budgets ({options} GMACs): '
                                 'choose one with budget=')
            return stored[0]
        return min(stored, key=lambda p: abs(p.budget / 1e9 - budget))


class BudgetSolver:
    """Fit exit thresholds for operating points and budgets on one set of per-exit outputs.

    Args:
        exit_logits (Tensor): (K, N, C) logits of N samples at K exits (every step run).
        exit_costs (Sequence[float]): (K, ) cumulative MACs per sample of each exit.
        confidence (str | Callable): Confidence function name (see
            :mod:`mmdynamic.models.utils.confidence`) or a callable.
        model (str): Type name of the model, stored in the fitted policies.
        fit_split (str): Which data the outputs come from: 'train', 'heldout' or 'val'.
        midpoints (bool): Thresholds halfway between scores (see :func:`fit_thresholds`), for
            samples that are then run again in other batches. Defaults to False (on a fitting
            sample's score, as in the official code).
    """

    def __init__(self, exit_logits: torch.Tensor, exit_costs: Sequence[float],
                 confidence='max_softmax', model: str = '', fit_split: str = 'train',
                 midpoints: bool = False) -> None:
        from mmdynamic.models.utils.confidence import get_confidence_fn
        if exit_logits.dim() != 3:
            raise ValueError(f'exit_logits must be (K, N, C), got shape {tuple(exit_logits.shape)}')
        if len(exit_costs) != exit_logits.shape[0]:
            raise ValueError(f'{len(exit_costs)} exit costs for {exit_logits.shape[0]} exits')
        if any(b < a for a, b in zip(exit_costs, exit_costs[1:])):
            raise ValueError(f'exit costs must be cumulative (non-decreasing), got {list(exit_costs)}')
        if fit_split not in ('train', 'heldout', 'val'):
            raise ValueError(f"fit_split must be 'train', 'heldout' or 'val', got {fit_split!r}")
        self.exit_logits = exit_logits.detach().float()
        self.exit_costs = [float(c) for c in exit_costs]
        self.confidence_name = confidence if isinstance(confidence, str) else getattr(
            confidence, '__name__', 'custom')
        self._confidence = confidence
        self.scores = get_confidence_fn(confidence)(self.exit_logits).double()
        self.model = model
        self.fit_split = fit_split
        self.midpoints = midpoints

    @property
    def num_exits(self) -> int:
        return self.exit_logits.shape[0]

    def scores_of(self, exit_logits: torch.Tensor) -> torch.Tensor:
        """Confidence (K, N) of other outputs (K, N, C), with this solver's confidence function."""
        from mmdynamic.models.utils.confidence import get_confidence_fn
        return get_confidence_fn(self._confidence)(exit_logits.float()).double()

    def policy_for_ratio(self, ratio: float, budget: Optional[float] = None) -> ExitPolicy:
        """Fit the thresholds of the operating point with prior ratio ``ratio``."""
        thresholds = fit_thresholds(self.scores, geometric_exit_priors(self.num_exits, ratio),
                                    self.midpoints)
        fractions = exit_fractions(assign_exits(self.scores, thresholds), self.num_exits)
        return ExitPolicy(thresholds=thresholds.tolist(), exit_costs=self.exit_costs,
                          confidence=self.confidence_name, model=self.model,
                          fit_split=self.fit_split, ratio=float(ratio),
                          expected_cost=expected_cost(fractions, self.exit_costs), budget=budget)

    def sweep(self, ratios: Sequence[float] = GFNET_RATIOS) -> List[ExitPolicy]:
        """One policy per operating point."""
        return [self.policy_for_ratio(r) for r in ratios]

    @staticmethod
    def check_budgets_against(exit_costs: Sequence[float], budgets: Sequence[float]) -> None:
        """Raise if a budget (MACs) lies outside [cheapest exit, dearest exit]."""
        cheapest, dearest = float(exit_costs[0]), float(exit_costs[-1])
        for budget in budgets:
            if budget < cheapest:
                raise ValueError(f'budget {budget / 1e9:.4g} GMACs is below the cheapest exit '
                                 f'({cheapest / 1e9:.4g} GMACs): no operating point can meet it')
            if budget > dearest:
                raise ValueError(f'budget {budget / 1e9:.4g} GMACs is above the dearest exit '
                                 f'({dearest / 1e9:.4g} GMACs): every sample can run every step')

    def check_budget(self, budget: float) -> None:
        self.check_budgets_against(self.exit_costs, [budget])

    def policy_for_budget(self, budget: float, num_candidates: int = 400) -> ExitPolicy:
        """The operating point whose expected cost (on the fit data) is closest to ``budget``.

        Candidates are the geometric priors with ratios log-spaced in [1e-3, 1e3] (finer than the
        papers' sweeps, which they contain in range).
        """
        self.check_budget(budget)
        ratios = np.unique(np.concatenate([np.logspace(-3, 3, num_candidates), GFNET_RATIOS]))
        best = min((self.policy_for_ratio(r) for r in ratios),
                   key=lambda p: (abs(p.expected_cost - budget), p.expected_cost))
        best.budget = float(budget)
        return best
