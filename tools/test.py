# Copyright (c) mmdynamic contributors. All rights reserved.
"""Evaluate a checkpoint with the config's test set and metrics (any of the four frameworks).

Example:
    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/eval --out results.pkl
    python tools/test.py CONFIG CHECKPOINT --budget 1.0 1.5 2.0 --fit-on train   # GMACs
    python tools/test.py CONFIG CHECKPOINT --exit-policy exit_policy_1.5G.json --throughput
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmdynamic  # noqa: E402,F401  (compatibility fixes first)
from mmdynamic.utils.checkpoint_check import check_checkpoint_fits  # noqa: E402
from mmdynamic.utils.run_config import (add_common_args, add_custom_hook,  # noqa: E402
                                        build_runner, load_config,
                                        shutdown_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint (mmdynamic)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_args(parser)
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--metrics-out', help='write the metrics to this JSON file '
                        '(default: <work_dir>/metrics.json)')
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='evaluate even if the checkpoint lacks weights of the model or has '
                        'others (default: refuse, naming them)')
    budget = parser.add_argument_group(
        'budget evaluation (step-wise models; see mmdynamic.engine.hooks.BudgetEvalHook)')
    budget.add_argument('--budget', type=float, nargs='+', metavar='GMACS',
                        help='budgets in GMACs per sample: fit thresholds, report the curve and the '
                        'metric at each budget, write budget.json and budget.png')
    budget.add_argument('--fit-on', choices=['train', 'heldout', 'val'],
                        help='data the thresholds are fitted on (default: train)')
    budget.add_argument('--fit-num-samples', type=int, help='at most this many fit samples')
    budget.add_argument('--confidence', choices=['max_softmax', 'max_logit', 'neg_entropy'])
    budget.add_argument('--ratios', help="operating points: 'gfnet' or 'uniadafocus'")
    budget.add_argument('--exit-policy', help='evaluate the thresholds of this exit-policy file')
    budget.add_argument('--reference', nargs=3, metavar=('NAME', 'GMACS', 'METRIC'),
                        help="the static backbone's point for comparison")
    budget.add_argument('--throughput', action='store_true',
                        help='run early exit with the policy of --exit-policy (or the config\'s '
                        'model.exit_policy) step-major over the whole test set '
                        '(mmdynamic.StepMajorTestLoop): the survivors of many batches are pooled '
                        'per step; same predictions and metrics as the per-batch early exit')
    budget.add_argument('--step-batch-size', type=int, metavar='N',
                        help='with --throughput: samples per step call (default: the test '
                        "dataloader's batch size)")
    budget.add_argument('--max-queued', type=int, metavar='N',
                        help='with --throughput: at most N samples wait between steps')
    return parser.parse_args()


def use_step_major_loop(cfg, args: argparse.Namespace) -> None:
    """--throughput: early exit with the policy (--exit-policy, else the config's) through
    :class:`mmdynamic.engine.runner.StepMajorTestLoop`."""
    if not args.throughput:
        if args.step_batch_size is not None or args.max_queued is not None:
            raise ValueError('--step-batch-size and --max-queued need --throughput')
        return
    if args.budget:
        raise ValueError('--throughput runs early exit with one exit policy; --budget needs every '
                         "exit's logits of every sample (run it without --throughput)")
    if args.exit_policy is not None:
        if not osp.isfile(args.exit_policy):
            raise FileNotFoundError(f'exit policy not found: {args.exit_policy}')
        cfg.model.exit_policy = args.exit_policy
    elif not cfg.model.get('exit_policy'):
        raise ValueError('--throughput needs an exit policy: --exit-policy FILE or '
                         'model.exit_policy in the config')
    loop = dict(cfg.get('test_cfg') or {})
    loop.update(type='mmdynamic.StepMajorTestLoop', batch_size=args.step_batch_size,
                max_queued=args.max_queued)
    cfg.test_cfg = loop


def drop_every_exit_metrics(cfg) -> None:
    """A model that runs early exit (``model.exit_policy`` set) gives each sample the logits of its
    own exit only, so the anytime and budget metrics, which read every exit's logits, are taken out
    of the test evaluator (with a note); the realised cost is reported by the BudgetEvalHook."""
    if not cfg.model.get('exit_policy'):
        return
    from mmdynamic.evaluation.metrics import needs_every_exit
    evaluator = cfg.test_evaluator
    metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    dropped = [m.get('type') for m in metrics if needs_every_exit(m)]
    if not dropped:
        return
    kept = [m for m in metrics if not needs_every_exit(m)]
    if not kept:
        raise ValueError(f'the test evaluator has only metrics of every exit ({dropped}), which '
                         'an early-exit run (model.exit_policy) cannot give; add a metric of the '
                         'predictions (e.g. Accuracy) or run without the exit policy')
    print(f'early exit (model.exit_policy): not evaluating {dropped}, which need every exit\'s '
          'logits')
    cfg.test_evaluator = kept


def add_budget_hook(cfg, args: argparse.Namespace) -> None:
    """Add (or update) the BudgetEvalHook. Without --budget it still reports the anytime table of
    step-wise models and does nothing for other models."""
    hooks = cfg.get('custom_hooks', None) or []
    hook = next((h for h in hooks if h.get('type') in ('BudgetEvalHook',
                                                        'mmdynamic.BudgetEvalHook')), None)
    if hook is None:
        hook = dict(type='BudgetEvalHook')
        hooks.append(hook)
    # with --throughput the policy is the model's (real early exit), not one evaluated on all exits
    exit_policy = None if getattr(args, 'throughput', False) else args.exit_policy
    options = dict(budgets=args.budget, fit_on=args.fit_on, fit_num_samples=args.fit_num_samples,
                   confidence=args.confidence, ratios=args.ratios, exit_policy=exit_policy)
    hook.update({k: v for k, v in options.items() if v is not None})
    if getattr(args, 'throughput', False):
        if hook.get('budgets') or hook.get('exit_policy'):
            raise ValueError('--throughput runs early exit with the model\'s policy; the '
                             "config's BudgetEvalHook asks for budgets / an exit-policy evaluation "
                             'on every exit (remove them or run without --throughput)')
    if args.reference:
        name, gmacs, metric = args.reference
        hook['reference'] = dict(name=name, gmacs=float(gmacs), metric=float(metric))
    cfg.custom_hooks = hooks


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    use_step_major_loop(cfg, args)
    drop_every_exit_metrics(cfg)
    add_budget_hook(cfg, args)
    add_custom_hook(cfg, dict(type='mmdynamic.LabelRangeHook'))
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        evaluator = cfg.test_evaluator
        metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
        cfg.test_evaluator = metrics + [dict(type='DumpResults', out_file_path=args.out)]
    runner = build_runner(cfg)
    if not args.allow_partial_checkpoint:
        check_checkpoint_fits(runner.model, args.checkpoint)
    metrics = runner.test()
    from mmengine.dist import is_main_process
    if is_main_process():
        out = args.metrics_out or osp.join(cfg.work_dir, 'metrics.json')
        with open(out, 'w', encoding='utf-8') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v for k, v in metrics.items()},
                      f, indent=1)
        print(f'metrics written to {osp.abspath(out)}')
    shutdown_distributed()


if __name__ == '__main__':
    main()
