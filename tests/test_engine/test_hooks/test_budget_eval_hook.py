# Copyright (c) mmdynamic contributors. All rights reserved.
"""A toy step-wise model with known exits through tools/test.py --budget (BudgetEvalHook)."""
import json
import os.path as osp

import pytest

from mmdynamic.engine.hooks import BudgetEvalHook
from mmdynamic.evaluation import ExitPolicy

from ...conftest import run_tool
from ...test_downstream.test_downstream import config_with_data_root


@pytest.fixture(scope='module')
def trained_toy(demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('stepwise')
    base = config_with_data_root('toy_mmpretrain.py', osp.join(demo_root, 'cls'), str(tmp))
    with open(osp.join(osp.dirname(__file__), '../../data/configs/toy_stepwise_cls.py')) as f:
        text = f.read()
    config = str(tmp / 'toy_stepwise_cls.py')
    with open(config, 'w') as f:
        f.write(text.replace("'./toy_mmpretrain.py'", repr(base)))
    run_tool(['tools/train.py', config, '--work-dir', str(tmp / 'train'), '--cfg-options',
              'train_cfg.max_iters=10', 'default_hooks.checkpoint.interval=10'])
    return config, str(tmp / 'train' / 'iter_10.pth'), tmp


def _exit_costs(work_dir):
    with open(osp.join(work_dir, 'budget.json')) as f:
        return json.load(f)['exit_flops']


@pytest.mark.slow
def test_test_tool_budget_outputs(trained_toy):
    config, ckpt, tmp = trained_toy
    anytime_dir = str(tmp / 'anytime')
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', anytime_dir])
    assert 'anytime top1' in proc.stdout + proc.stderr
    costs = _exit_costs(anytime_dir)
    assert len(costs) == 3 and costs[0] < costs[1] < costs[2]
    # issue #19: every exit's top-1 in the test metrics (the Epoch(test) line and metrics.json),
    # not only the test evaluator's last-exit top-1
    with open(osp.join(anytime_dir, 'budget.json')) as f:
        anytime = json.load(f)['anytime']
    with open(osp.join(anytime_dir, 'metrics.json')) as f:
        metrics = json.load(f)
    assert [metrics[f'anytime/top1_exit{k}'] for k in (1, 2, 3)] == pytest.approx(anytime)
    assert metrics['anytime/top1_exit3'] == pytest.approx(metrics['accuracy/top1'])
    epoch_line = next(line for line in (proc.stdout + proc.stderr).splitlines()
                      if 'Epoch(test)' in line and 'accuracy/top1' in line)
    assert all(f'anytime/top1_exit{k}:' in epoch_line for k in (1, 2, 3)), epoch_line

    budgets = [f'{(costs[0] + costs[1]) / 2:.6g}', f'{(costs[1] + costs[2]) / 2:.6g}']
    out = str(tmp / 'budget')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', out, '--budget', *budgets,
              '--fit-on', 'train', '--reference', 'ToyStatic', f'{costs[2]:.6g}', '10.0'])
    with open(osp.join(out, 'budget.json')) as f:
        report = json.load(f)
    for key in ('exit_flops', 'anytime', 'curve', 'budgets', 'thresholds', 'confidence',
                'fit_split'):
        assert key in report, key
    assert report['fit_split'] == 'train' and report['confidence'] == 'max_softmax'
    assert len(report['curve']) == 39 and len(report['budgets']) == 2
    assert all(costs[0] - 1e-12 <= g <= costs[-1] + 1e-12 for g, _ in report['curve'])
    for entry, budget in zip(report['budgets'], budgets):
        assert entry['budget_gmacs'] == pytest.approx(float(budget))
    assert osp.getsize(osp.join(out, 'budget.png')) > 10_000
    policy = ExitPolicy.load(osp.join(out, f'exit_policy_{float(budgets[0]):.4g}G.json'),
                             model='DynToyStepwiseClassifier', num_exits=3)
    assert policy.thresholds[-1] == float('-inf')

    # real early exit with that policy: the realised cost is the budget's, not the last exit's
    early = str(tmp / 'early')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', early, '--cfg-options',
              f'model.exit_policy={osp.join(out, f"exit_policy_{float(budgets[0]):.4g}G.json")}'])
    with open(osp.join(early, 'early_exit.json')) as f:
        realised = json.load(f)
    with open(osp.join(early, 'metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['early_exit/gmacs'] == pytest.approx(realised['realised_gmacs'])
    assert [metrics[f'early_exit/exit{k}_fraction'] for k in (1, 2, 3)] == pytest.approx(
        realised['exit_fractions'])
    assert realised['num_samples'] == 20
    assert realised['realised_gmacs'] == pytest.approx(report['budgets'][0]['gmacs'], rel=1e-6)
    assert realised['exit_fractions'] == pytest.approx(report['budgets'][0]['exit_fractions'])


@pytest.mark.slow
def test_budget_errors_are_clear(trained_toy):
    config, ckpt, tmp = trained_toy
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp / 'bad'), '--budget',
                     '1e-9'], check=False)
    assert proc.returncode != 0 and 'is below the cheapest exit' in proc.stderr
    proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp / 'bad'), '--budget',
                     '1', '--confidence', 'max_logit', '--cfg-options',
                     'model.exit_policy=/nonexistent.json'], check=False)
    assert proc.returncode != 0 and 'nonexistent.json' in proc.stderr


def test_static_model_with_budget_is_refused():
    import types

    import torch.nn as nn
    BudgetEvalHook().before_test(types.SimpleNamespace(model=nn.Linear(2, 2)))  # no-op
    with pytest.raises(TypeError, match='needs a step-wise model'):
        BudgetEvalHook(budgets=[1.0]).before_test(types.SimpleNamespace(model=nn.Linear(2, 2)))


def test_hook_argument_checks():
    with pytest.raises(ValueError, match='fit_on must be one of'):
        BudgetEvalHook(fit_on='test')
    with pytest.raises(ValueError, match='needs fit_dataloader'):
        BudgetEvalHook(fit_on='heldout')
    with pytest.raises(ValueError, match='unknown confidence function'):
        BudgetEvalHook(confidence='margin')
    with pytest.raises(ValueError, match='budgets must be positive'):
        BudgetEvalHook(budgets=[-1])


@pytest.mark.slow
def test_policies_fitted_during_val_are_stored_in_checkpoints(trained_toy, tmp_path):
    import torch
    config, _, _ = trained_toy
    derived = tmp_path / 'with_val_budget.py'
    derived.write_text(
        f'_base_ = [{config!r}]\n'
        "custom_hooks = [dict(type='BudgetEvalHook', during_val=True, budgets=[0.0004],\n"
        '                     fit_on="train", fit_num_samples=24)]\n'
        'train_cfg = dict(max_iters=4, val_interval=2)\n'
        'default_hooks = dict(checkpoint=dict(interval=4))\n')
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(derived), '--work-dir', str(work)])
    ckpt = str(work / 'iter_4.pth')
    stored = torch.load(ckpt, map_location='cpu', weights_only=True)['meta']['exit_policies']
    assert len(stored) == 1 and stored[0]['budget'] == pytest.approx(0.0004e9)
    assert stored[0]['model'] == 'DynToyStepwiseClassifier' and stored[0]['fit_split'] == 'train'
    policy = ExitPolicy.load(ckpt, model='DynToyStepwiseClassifier', num_exits=3, budget=0.0004)
    assert policy.thresholds[-1] == float('-inf')
    assert (work / 'budget_val' / 'budget.json').is_file()
    # the model takes its thresholds from the checkpoint
    run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'early'),
              '--cfg-options', f'model.exit_policy.file={ckpt}', 'model.exit_policy.budget=0.0004'])
    assert (tmp_path / 'early' / 'early_exit.json').is_file()


def test_anytime_metrics_of_the_hook_are_those_of_the_anytime_metric():
    """The per-exit metrics the hook adds (issue #19) have AnytimeAccuracy's names and values."""
    import torch
    from mmpretrain.structures import DataSample

    from mmdynamic.engine.hooks.budget_eval_hook import anytime_metrics
    from mmdynamic.evaluation.functional.budget import anytime_metric
    from mmdynamic.evaluation.metrics.exit_metrics import AnytimeAccuracy
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 8, 4), torch.randint(0, 4, (8, ))
    samples = []
    for i in range(8):
        sample = DataSample().set_gt_label(int(labels[i]))
        sample.set_field(logits[:, i], 'exit_logits')
        sample.set_field(torch.tensor([1e9, 2e9, 3e9], dtype=torch.float64), 'exit_macs')
        samples.append(sample.to_dict())
    metric = AnytimeAccuracy()
    metric.process(None, samples)
    expected = metric.evaluate(8)
    assert anytime_metrics(anytime_metric(logits, labels), 'top1') == pytest.approx(expected)
    assert sorted(expected) == ['anytime/top1_exit1', 'anytime/top1_exit2', 'anytime/top1_exit3']


def test_hook_restores_policies_on_resume():
    from mmdynamic.evaluation import BudgetSolver
    import torch
    logits = torch.randn(3, 50, 4)
    policy = BudgetSolver(logits, [1e9, 2e9, 3e9], model='M').policy_for_budget(2e9)
    saver, loader = BudgetEvalHook(), BudgetEvalHook()
    saver._policies = [policy]
    checkpoint = dict(meta={})
    saver.before_save_checkpoint(None, checkpoint)
    loader.after_load_checkpoint(None, checkpoint)
    assert loader._policies[0].to_dict() == policy.to_dict()


@pytest.mark.slow
def test_framework_test_tool_gets_budget_evaluation_from_custom_hooks(trained_toy, tmp_path):
    """mmpretrain's own tools/test.py runs the hook configured in custom_hooks."""
    import importlib.util
    config, ckpt, _ = trained_toy
    derived = tmp_path / 'hooked.py'
    derived.write_text(f'_base_ = [{config!r}]\n'
                       "custom_hooks = [dict(type='BudgetEvalHook', budgets=[0.0004])]\n")
    tool = osp.join(osp.dirname(importlib.util.find_spec('mmpretrain').origin), '.mim', 'tools',
                    'test.py')
    run_tool([tool, str(derived), ckpt, '--work-dir', str(tmp_path / 'work')])
    with open(tmp_path / 'work' / 'budget.json') as f:
        assert json.load(f)['budgets'][0]['budget_gmacs'] == pytest.approx(0.0004)


@pytest.mark.slow
def test_two_process_budget_evaluation_fits_on_all_ranks(trained_toy, tmp_path):
    from ...test_tools.test_train_tools import _free_port
    config, ckpt, _ = trained_toy
    work = tmp_path / 'dist'
    run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir', str(work), '--budget',
              '0.0004'], env=dict(PORT=_free_port()))
    with open(work / 'budget.json') as f:
        report = json.load(f)
    assert report['fit_num_samples'] == 40  # the whole demo train split, gathered from both ranks
    single = tmp_path / 'single'
    run_tool(['tools/test.py', config, ckpt, '--work-dir', str(single), '--budget', '0.0004'])
    with open(single / 'budget.json') as f:
        reference = json.load(f)
    assert report['anytime'] == pytest.approx(reference['anytime'])
    assert report['exit_flops'] == pytest.approx(reference['exit_flops'])
