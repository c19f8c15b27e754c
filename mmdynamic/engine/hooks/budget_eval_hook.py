# Copyright (c) mmdynamic contributors. All rights reserved.
"""Budget evaluation of step-wise models inside any MMEngine test run."""
import json
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import (broadcast_object_list, collect_results, get_world_size,
                           is_main_process)
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdynamic.evaluation.functional.budget import BudgetSolver, ExitPolicy, anytime_metric
from mmdynamic.evaluation.functional.budget_report import (GIGA, build_report, format_report,
                                                           jsonable)
from mmdynamic.evaluation.metrics.exit_metrics import resolve_ratios
from mmdynamic.evaluation.metrics.exit_outputs import (exit_choice_record, exit_record,
                                                       realised_cost, stack_records)
from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model

FIT_SPLITS = ('train', 'heldout', 'val')
CHECKPOINT_KEY = 'exit_policies'


def is_stepwise(model) -> bool:
    """Whether a model predicts after every step (has exits)."""
    return callable(getattr(model, 'forward_exits', None)) and hasattr(model, 'num_exits')


@register_dual(HOOKS)
class BudgetEvalHook(Hook):
    """Anytime and budgeted evaluation of a step-wise model in a test run.

    During the test loop (and, with ``during_val``, the validation loop) it collects every sample's
    per-exit logits and exit costs. After it, it runs
    the model over the fit split (``fit_on``), fits exit thresholds for the operating points and the
    requested budgets (:class:`~mmdynamic.evaluation.BudgetSolver`), evaluates them on the test data,
    logs the tables and writes ``budget.json``, ``budget.png`` and one ``exit_policy_<B>G.json`` per
    budget (usable as a model's ``exit_policy``) to ``out_dir``. Outputs of all ranks are gathered before
    fitting: no rank fits on its own shard.

    Without budgets it only reports the anytime table (no fitting). Either way the metric of every
    exit is also added to the loop's metrics (``anytime/<metric>_exit<k>``, k from 1): the
    ``Epoch(test)`` line, the metrics ``runner.test()`` returns and ``tools/test.py``'s
    ``metrics.json`` list every exit, not only the test evaluator's (last-exit) top-1. With the
    model's own exit policy the realised GMACs per sample and the exit fractions are added instead
    (``early_exit/gmacs``, ``early_exit/exit<k>_fraction``). For models
    without exits it does nothing, unless budgets were asked for, which is an error.

    Args:
        budgets (Sequence[float]): Budgets in GMACs per sample.
        fit_on (str): 'train' (a subset of the training set with the training pipeline: the papers'
            default), 'heldout' (``fit_dataloader``, e.g. a held-out part of the training set) or 'val'
            (the validation set: optimistic, flagged in the report).
        confidence (str): 'max_softmax' (GFNet), 'max_logit' or 'neg_entropy' (Uni-AdaFocus).
        ratios (str | Sequence[float]): Operating points: 'gfnet' (39), 'uniadafocus' (19) or a list.
        metric (str): 'top1' or 'mAP' (multi-label; samples ranked by the softmax probabilities of
            their exit logits, the ActivityNet / FCVID protocol).
        fit_num_samples (int, optional): Use at most this many fit samples (all ranks together).
        fit_dataloader (dict, optional): Dataloader config of the 'heldout' split.
        exit_policy (str, optional): Evaluate the thresholds in this file instead of fitting.
        reference (dict, optional): The static backbone's point: ``name``, ``gmacs``, ``metric``.
        out_dir (str, optional): Where to write the results. Defaults to the runner's work dir.
        plot (bool): Write ``budget.png``. Defaults to True.
        during_val (bool): Also evaluate (and fit) after every validation, writing to
            ``<out_dir>/budget_val``. The policies of the requested budgets are then stored in the
            meta of every checkpoint saved afterwards (``meta['exit_policies']``); load one with
            ``ExitPolicy.load(ckpt_path, budget=...)`` or a model's ``exit_policy``.
    """
    # before the LoggerHook (BELOW_NORMAL), so that the per-exit metrics added to the loop's
    # metrics are logged with them; before the CheckpointHook, which stores the fitted policies
    priority = 'NORMAL'

    def __init__(self, budgets: Sequence[float] = (), fit_on: str = 'train',
                 confidence: str = 'max_softmax', ratios: Union[str, Sequence[float]] = 'gfnet',
                 metric: str = 'top1', fit_num_samples: Optional[int] = None,
                 fit_dataloader: Optional[Dict] = None, exit_policy: Optional[str] = None,
                 reference: Optional[Dict] = None, out_dir: Optional[str] = None,
                 plot: bool = True, during_val: bool = False) -> None:
        if fit_on not in FIT_SPLITS:
            raise ValueError(f'fit_on must be one of {FIT_SPLITS}, got {fit_on!r}')
        if fit_on == 'heldout' and fit_dataloader is None:
            raise ValueError("fit_on='heldout' needs fit_dataloader (the held-out split's "
                             'dataloader config)')
        if any(float(b) <= 0 for b in budgets):
            raise ValueError(f'budgets must be positive GMACs, got {list(budgets)}')
        if fit_num_samples is not None and fit_num_samples < 1:
            raise ValueError(f'fit_num_samples must be positive, got {fit_num_samples}')
        from mmdynamic.models.utils.confidence import get_confidence_fn
        get_confidence_fn(confidence)  # fail early on an unknown name
        self.budgets = [float(b) for b in budgets]
        self.fit_on = fit_on
        self.confidence = confidence
        self.ratios = resolve_ratios(ratios)
        self.metric = metric
        self.fit_num_samples = fit_num_samples
        self.fit_dataloader = fit_dataloader
        self.exit_policy = exit_policy
        self.reference = reference
        self.out_dir = out_dir
        self.plot = plot
        self._records: List[Dict] = []
        self.during_val = during_val
        self._mode = 'off'  # 'off' | 'all_exits' | 'early_exit'
        self._saved_policy = None
        self._policies: List[ExitPolicy] = []

    # ------------------------------------------------------------------ test loop
    def _begin(self, runner) -> None:
        model = unwrap_model(runner.model)
        self._records = []
        self._saved_policy = None
        self._mode = 'off'
        if not is_stepwise(model):
            if self.budgets or self.exit_policy:
                raise TypeError(f'budget evaluation needs a step-wise model (with exits); '
                                f'{type(model).__name__} has none')
            return
        policy = getattr(model, 'exit_policy', None)
        if policy is not None and not (self.budgets or self.exit_policy):
            self._mode = 'early_exit'  # report the realised cost of the model's own policy
            return
        self._mode = 'all_exits'
        if policy is not None:
            # every sample must run every step to evaluate every operating point
            self._saved_policy = policy
            model.set_exit_policy(None)
            print_log('BudgetEvalHook: the model\'s exit policy is off during this test run (every '
                      'step is run to evaluate every operating point)', logger='current')

    def _collect(self, outputs) -> None:
        if self._mode == 'early_exit':
            self._records.extend(exit_choice_record(sample) for sample in outputs)
        elif self._mode == 'all_exits':
            records = [exit_record(sample) for sample in outputs]
            if not self._records and records and self.budgets:
                # fail before the whole test set has run when a budget cannot be met
                costs = records[0]['exit_macs'].tolist()
                BudgetSolver.check_budgets_against(costs, [b * GIGA for b in self.budgets])
            self._records.extend(records)

    def _finish(self, runner, dataset_size: int, phase: str,
                metrics: Optional[Dict] = None) -> None:
        if self._mode == 'off':
            return
        model = unwrap_model(runner.model)
        try:
            records = collect_results(self._records, dataset_size, device='cpu')
            if self._mode == 'early_exit':
                shared = [self._report_early_exit(runner, records) if is_main_process() else None]
                broadcast_object_list(shared)
                self._add_metrics(runner, metrics, shared[0], phase)
                return
            fit_records = None
            if self.budgets and self.exit_policy is None:
                fit_records = self._run_fit_split(runner)
            policies, anytime = None, None
            if is_main_process():  # rank 0 holds the gathered outputs
                report = self._report(runner, model, records, fit_records, phase)
                policies = [p.to_dict() for p in report.get('policies', []) if p.budget is not None]
                anytime = [float(v) for v in report['anytime']]
            shared = [policies, anytime]
            broadcast_object_list(shared)  # every rank saves the same checkpoint meta
            self._policies = [ExitPolicy.from_dict(p) for p in shared[0]]
            self._add_metrics(runner, metrics, anytime_metrics(shared[1], self.metric), phase)
        finally:
            self._records = []
            if self._saved_policy is not None:
                model.set_exit_policy(self._saved_policy)

    @staticmethod
    def _add_metrics(runner, metrics: Optional[Dict], extra: Dict[str, float], phase: str) -> None:
        """Add ``extra`` to the loop's metrics (returned by ``runner.test()`` / ``val()``, the same
        on every rank) and to the message hub, where the LoggerHook reads the epoch line."""
        if metrics is not None:
            metrics.update(extra)
        for key, value in extra.items():
            runner.message_hub.update_scalar(f'{phase}/{key}', value)

    # ------------------------------------------------------------------ MMEngine entry points
    def before_test(self, runner) -> None:
        self._begin(runner)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._collect(outputs)

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._finish(runner, len(runner.test_dataloader.dataset), 'test', metrics)

    def before_val(self, runner) -> None:
        if self.during_val:
            self._begin(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.during_val:
            self._collect(outputs)

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        if self.during_val:
            self._finish(runner, len(runner.val_dataloader.dataset), 'val', metrics)

    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        """Store the latest fitted policies (thresholds, exit costs, confidence) in the meta."""
        if self._policies:
            checkpoint.setdefault('meta', {})[CHECKPOINT_KEY] = [
                p.to_dict() for p in self._policies
            ]

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        stored = checkpoint.get('meta', {}).get(CHECKPOINT_KEY)
        if stored:
            self._policies = [ExitPolicy.from_dict(p) for p in stored]

    def _report_early_exit(self, runner, records: List[Dict]) -> Dict[str, float]:
        """Log and write the realised cost; return it as loop metrics (``early_exit/gmacs`` and
        ``early_exit/exit<k>_fraction``)."""
        result = realised_cost(records)
        path = osp.join(self.out_dir or runner.work_dir, 'early_exit.json')
        _dump_json(result, path)
        fractions = ', '.join(f'{f:.3f}' for f in result['exit_fractions'])
        runner.logger.info(f"Early exit with the model's exit policy: {result['realised_gmacs']:.4g} "
                           f'GMACs per sample on average; exit fractions {fractions} '
                           f'(written to {path})')
        out = {'early_exit/gmacs': float(result['realised_gmacs'])}
        out.update({f'early_exit/exit{k + 1}_fraction': float(f)
                    for k, f in enumerate(result['exit_fractions'])})
        return out

    # ------------------------------------------------------------------ helpers
    def _fit_loader_cfg(self, runner) -> Dict:
        if self.fit_on == 'heldout':
            return self.fit_dataloader
        key = 'train_dataloader' if self.fit_on == 'train' else 'val_dataloader'
        cfg = runner.cfg.get(key)
        if not cfg:
            raise ValueError(f'fit_on={self.fit_on!r} needs `{key}` in the config')
        return cfg

    @torch.no_grad()
    def _run_fit_split(self, runner) -> List[Dict]:
        loader = runner.build_dataloader(self._fit_loader_cfg(runner), seed=runner.seed)
        total = len(loader.dataset)
        if self.fit_num_samples is not None:
            total = min(total, self.fit_num_samples)
        per_rank = math.ceil(total / get_world_size())
        records: List[Dict] = []
        runner.model.eval()
        for batch in loader:
            outputs = runner.model.test_step(batch)
            records.extend(exit_record(sample) for sample in outputs)
            if len(records) >= per_rank:
                break
        return collect_results(records[:per_rank], total, device='cpu')

    def _report(self, runner, model, records, fit_records, phase: str) -> Dict:
        """Build, log and write the report (rank 0)."""
        logits, labels, costs = stack_records(records)
        model_name = type(model).__name__
        if self.exit_policy is not None:
            policy = ExitPolicy.load(self.exit_policy, model=model_name, num_exits=model.num_exits)
            report = build_report(logits, labels, costs, policy=policy, metric=self.metric,
                                  reference=self.reference)
        elif fit_records is not None:
            fit_logits, _, fit_costs = stack_records(fit_records)
            solver = BudgetSolver(fit_logits, fit_costs, self.confidence, model=model_name,
                                  fit_split=self.fit_on)
            report = build_report(logits, labels, costs, solver=solver,
                                  budgets=[b * GIGA for b in self.budgets], ratios=self.ratios,
                                  metric=self.metric, reference=self.reference)
        else:
            report = dict(model=model_name, num_exits=len(costs), metric=self.metric,
                          exit_flops=[c / GIGA for c in costs],
                          anytime=anytime_metric(logits, labels, self.metric),
                          reference=self.reference)
        out_dir = self.out_dir or runner.work_dir
        if phase == 'val':
            out_dir = osp.join(out_dir, 'budget_val')
        self._write(report, out_dir)
        runner.logger.info(f'Budget evaluation ({phase}):\n' + format_report(report))
        return report

    def _write(self, report: Dict, out_dir: str) -> None:
        from mmdynamic.visualization import plot_budget_report
        for policy in report.get('policies', []):
            if policy.budget is not None:
                policy.save(osp.join(out_dir, f'exit_policy_{policy.budget / GIGA:.4g}G.json'))
        path = osp.join(out_dir, 'budget.json')
        _dump_json(jsonable(report), path)
        if self.plot and 'curve' in report:
            plot_budget_report(report, osp.join(out_dir, 'budget.png'))
        print_log(f'budget evaluation written to {path}', logger='current', level=logging.INFO)


def anytime_metrics(values: Sequence[float], metric: str) -> Dict[str, float]:
    """The metric of every exit as loop metrics: ``{'anytime/<metric>_exit<k>': value}``, k from 1
    (the names of :class:`~mmdynamic.evaluation.metrics.AnytimeAccuracy`)."""
    return {f'anytime/{metric}_exit{k + 1}': float(v) for k, v in enumerate(values)}


def _dump_json(obj: Dict, path: str) -> None:
    """Write ``obj`` as JSON atomically (infinities as strings)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(_json_safe(obj), f, indent=1)
    os.replace(tmp, path)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return 'inf' if obj > 0 else '-inf'
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj
