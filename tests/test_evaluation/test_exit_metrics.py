# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmdynamic.evaluation import (AnytimeAccuracy, AnytimeMAP, BudgetedAccuracy, BudgetedMAP,
                                  BudgetSolver)


def _samples(num=200, exits=3, classes=4, seed=0, multilabel=False):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (num, ), generator=gen)
    samples = []
    for i in range(num):
        logits = torch.randn(exits, classes, generator=gen)
        # later exits are more often right
        logits[torch.arange(exits), labels[i]] += torch.arange(exits).float() * 1.5
        gt = torch.tensor([labels[i], (labels[i] + 1) % classes]) if multilabel else labels[i:i + 1]
        samples.append(dict(exit_logits=logits, exit_macs=torch.tensor([1e9, 2e9, 3e9]),
                            gt_label=gt))
    return samples


def _run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_anytime_accuracy_per_exit():
    samples = _samples()
    out = _run(AnytimeAccuracy(), samples)
    assert set(out) == {'anytime/top1_exit1', 'anytime/top1_exit2', 'anytime/top1_exit3'}
    for k in range(3):
        expected = sum(int(s['exit_logits'][k].argmax() == s['gt_label'][0]) for s in samples) / 2
        assert out[f'anytime/top1_exit{k + 1}'] == pytest.approx(expected)
    assert out['anytime/top1_exit3'] > out['anytime/top1_exit1']


def test_budgeted_accuracy_values_and_data_elements():
    samples = [BaseDataElement(**s) for s in _samples()]
    out = _run(BudgetedAccuracy(budgets=[1.5, 2.5]), samples)
    assert set(out) == {'budget/top1@1.5G', 'budget/gmacs@1.5G', 'budget/top1@2.5G',
                        'budget/gmacs@2.5G'}
    assert out['budget/top1@2.5G'] >= out['budget/top1@1.5G'] - 5
    assert abs(out['budget/gmacs@1.5G'] - 1.5) < 0.1  # fitted on this data: costs match
    with pytest.raises(ValueError, match='below the cheapest exit'):
        _run(BudgetedAccuracy(budgets=[0.5]), samples)


def test_budgeted_accuracy_with_policy_file(tmp_path):
    samples = _samples()
    logits = torch.stack([s['exit_logits'] for s in samples], dim=1)
    policy = BudgetSolver(logits, [1e9, 2e9, 3e9]).policy_for_budget(2e9)
    policy.save(str(tmp_path / 'p.json'))
    out = _run(BudgetedAccuracy(exit_policy=str(tmp_path / 'p.json')), samples)
    assert out['budget/gmacs@2G'] == pytest.approx(policy.expected_cost / 1e9)


def test_map_variants_multilabel():
    samples = _samples(multilabel=True)
    anytime = _run(AnytimeMAP(), samples)
    assert set(anytime) == {'anytime/mAP_exit1', 'anytime/mAP_exit2', 'anytime/mAP_exit3'}
    budget = _run(BudgetedMAP(budgets=[2.0]), samples)
    assert 0 <= budget['budget/mAP@2G'] <= 100


def test_missing_exit_outputs_is_a_clear_error():
    metric = AnytimeAccuracy()
    with pytest.raises(KeyError, match='no exit_logits'):
        metric.process({}, [dict(gt_label=torch.tensor([1]), pred_score=torch.rand(3))])
