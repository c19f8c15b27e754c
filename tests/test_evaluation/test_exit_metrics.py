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


def _hand_map(scores, labels):
    """Mean over classes with a positive of the mean precision at the positives' ranks."""
    aps = []
    for c in range(labels.shape[1]):
        order = sorted(range(len(scores)), key=lambda i: -float(scores[i][c]))
        hits = [int(labels[i][c]) for i in order]
        if sum(hits):
            aps.append(sum(sum(hits[:r + 1]) / (r + 1) for r, h in enumerate(hits) if h)
                       / sum(hits))
    return 100 * sum(aps) / len(aps)


def test_map_metrics_rank_by_softmax_probabilities():
    """AnytimeMAP / BudgetedMAP rank the samples by softmax probabilities (ActivityNet / FCVID
    protocol), not by raw logits (issue #16, item 6)."""
    samples = _samples(multilabel=True, seed=1)
    for i, s in enumerate(samples):  # per-sample logit offsets: change the logit ranking only
        s['exit_logits'] = s['exit_logits'] * 2 + (i % 7)
    logits = torch.stack([s['exit_logits'] for s in samples], dim=1)  # (K, N, C)
    labels = torch.zeros(len(samples), 4, dtype=torch.long)
    for i, s in enumerate(samples):
        labels[i, s['gt_label']] = 1
    anytime = _run(AnytimeMAP(), samples)
    for k in range(3):
        probs = logits[k].double().softmax(-1)
        expected = _hand_map(probs, labels)
        assert anytime[f'anytime/mAP_exit{k + 1}'] == pytest.approx(expected, abs=1e-6)
        assert abs(_hand_map(logits[k], labels) - expected) > 1  # the old ranking differs
    # a budget at the last exit's cost: every sample runs every step, the last exit's mAP
    budget = _run(BudgetedMAP(budgets=[3.0], ratios=[1e6]), samples)
    assert budget['budget/mAP@3G'] == pytest.approx(anytime['anytime/mAP_exit3'], abs=1e-6)


def test_needs_every_exit_and_the_early_exit_error():
    from mmdynamic.evaluation.metrics import needs_every_exit
    from mmdynamic.evaluation.metrics.exit_outputs import exit_record
    for kind in ('AnytimeAccuracy', 'mmdynamic.BudgetedMAP', 'AnytimeMAP', BudgetedAccuracy):
        assert needs_every_exit(dict(type=kind))
    for kind in ('Accuracy', 'mmpretrain.Accuracy', 'AccMetric', 'DumpResults', None):
        assert not needs_every_exit(dict(type=kind))
    assert needs_every_exit(AnytimeAccuracy())
    # a sample predicted with early exit: the error says so (not "no exit policy set")
    early = dict(exit_index=torch.tensor(1), exit_macs=torch.ones(3), gt_label=torch.tensor([0]))
    with pytest.raises(KeyError, match='predicted with early exit'):
        exit_record(early)
    with pytest.raises(KeyError, match='runs every step'):
        exit_record(dict(gt_label=torch.tensor([0])))
