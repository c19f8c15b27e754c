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
