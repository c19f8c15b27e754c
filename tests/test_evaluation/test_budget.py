# Copyright (c) mmdynamic contributors. All rights reserved.
import math

import numpy as np
import pytest
import torch

from mmdynamic.evaluation.functional.budget import (GFNET_RATIOS, BudgetSolver, ExitPolicy,
                                                    anytime_metric, assign_exits,
                                                    evaluate_thresholds, get_metric_fn,
                                                    exit_fractions, expected_cost,
                                                    fit_thresholds, geometric_exit_priors,
                                                    mean_average_precision)


def _synthetic(num_exits=4, num=1000, classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_exits, num, classes, generator=gen) * torch.arange(
        1, num_exits + 1)[:, None, None]
    labels = torch.randint(0, classes, (num, ), generator=gen)
    return logits, labels


def test_geometric_priors():
    q = geometric_exit_priors(5, 0.5)
    assert q.sum() == pytest.approx(1)
    assert np.allclose(q[1:] / q[:-1], 0.5)
    assert np.allclose(geometric_exit_priors(3, 1.0), 1 / 3)
    with pytest.raises(ValueError, match='positive'):
        geometric_exit_priors(3, 0)


@pytest.mark.parametrize('ratio', [0.1, 0.5, 1.0, 1.5, 1.95])
def test_exit_fractions_match_priors(ratio):
    logits, _ = _synthetic()
    scores = logits.softmax(-1).amax(-1)
    priors = geometric_exit_priors(4, ratio)
    exits = assign_exits(scores, fit_thresholds(scores, priors))
    counts = torch.bincount(exits, minlength=4).numpy()
    quotas = np.floor(1000 * priors + 1e-9).astype(int)
    assert (counts[:-1] == quotas[:-1]).all(), (counts, quotas)
    assert counts.sum() == 1000


def test_extreme_thresholds_give_first_and_last_exit_accuracy():
    logits, labels = _synthetic()
    scores = logits.softmax(-1).amax(-1)
    costs = [1.0, 2.0, 3.0, 4.0]
    first, cost_first, frac = evaluate_thresholds(logits, labels, scores,
                                                  torch.full((4, ), -math.inf), costs)
    assert first == pytest.approx(float((logits[0].argmax(-1) == labels).double().mean() * 100))
    assert cost_first == 1.0 and frac[0] == 1
    last, cost_last, _ = evaluate_thresholds(logits, labels, scores, torch.full((4, ), math.inf),
                                             costs)
    assert last == pytest.approx(float((logits[-1].argmax(-1) == labels).double().mean() * 100))
    assert cost_last == 4.0


def test_expected_cost_arithmetic():
    exits = torch.tensor([0, 0, 1, 3])
    fractions = exit_fractions(exits, 4)
    assert fractions.tolist() == [0.5, 0.25, 0.0, 0.25]
    assert expected_cost(fractions, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.5 + 0.5 + 1.0)


def test_zero_quota_and_ties():
    scores = torch.tensor([[0.9, 0.9, 0.9, 0.1], [0.5, 0.5, 0.5, 0.5]])
    # quota 0 at exit 0: nobody exits there
    thr = fit_thresholds(scores, [0.1, 0.9])
    assert thr[0] == math.inf and thr[1] == -math.inf
    # quota 1 at exit 0 but three tied scores: all ties exit (>=)
    thr = fit_thresholds(scores, [0.25, 0.75])
    assert (assign_exits(scores, thr) == torch.tensor([0, 0, 0, 1])).all()


def test_midpoint_thresholds_keep_the_exits_of_samples_at_a_threshold():
    """Thresholds fitted on samples that are run again in other batches: a score a rounding error
    below its (fitted) threshold no longer exits, unless the thresholds lie halfway to the next
    lower score, which keeps every exit (and cost) of the fitting data."""
    logits, _ = _synthetic()
    costs = [1e9, 2e9, 3e9, 4e9]
    plain = BudgetSolver(logits, costs).policy_for_ratio(1.0)
    solver = BudgetSolver(logits, costs, midpoints=True)
    halfway = solver.policy_for_ratio(1.0)
    thr, mid = torch.tensor(plain.thresholds), torch.tensor(halfway.thresholds)
    assert torch.isfinite(thr[:-1]).all() and (mid[:-1] < thr[:-1]).all() and mid[-1] == -math.inf
    scores = solver.scores
    exits = assign_exits(scores, thr)
    assert torch.equal(assign_exits(scores, mid), exits)
    assert halfway.expected_cost == plain.expected_cost
    for k in range(3):  # halfway between the last sample that exits and the next one down
        left = scores[k][exits >= k]
        below = left[left < thr[k]].max()
        assert mid[k] == (thr[k] + below) / 2
    # one sample per threshold sits on it; a rounding error below, it moves on without midpoints
    on_threshold = [int((scores[k] == thr[k]).nonzero()[0]) for k in range(3)]
    rounded = scores.clone()
    for k, n in enumerate(on_threshold):
        rounded[k, n] = torch.nextafter(scores[k, n].float(), torch.tensor(-math.inf)).double()
    assert not torch.equal(assign_exits(rounded, thr), exits)
    assert torch.equal(assign_exits(rounded, mid), exits)
    # ties stay together: the midpoint of equal scores is that score
    tied = torch.tensor([[0.9, 0.9, 0.9, 0.1], [0.5, 0.5, 0.5, 0.5]])
    assert fit_thresholds(tied, [0.25, 0.75], midpoints=True)[0] == tied[0, 0].double()


def test_solver_budget_and_errors():
    logits, labels = _synthetic()
    solver = BudgetSolver(logits, [1e9, 2e9, 3e9, 4e9], confidence='max_softmax', model='Toy')
    curve = solver.sweep(GFNET_RATIOS)
    assert len(curve) == 39
    costs = [p.expected_cost for p in curve]
    assert costs[0] < costs[-1] and 1e9 <= min(costs) and max(costs) <= 4e9
    policy = solver.policy_for_budget(2.5e9)
    assert abs(policy.expected_cost - 2.5e9) < 0.05e9 and policy.budget == 2.5e9
    with pytest.raises(ValueError, match='below the cheapest exit'):
        solver.policy_for_budget(0.5e9)
    with pytest.raises(ValueError, match='above the dearest exit'):
        solver.policy_for_budget(5e9)
    with pytest.raises(ValueError, match='unknown confidence function'):
        BudgetSolver(logits, [1, 2, 3, 4], confidence='margin')
    with pytest.raises(ValueError, match='cumulative'):
        BudgetSolver(logits, [1, 3, 2, 4])
    with pytest.raises(ValueError, match='3 exit costs for 4 exits'):
        BudgetSolver(logits, [1, 2, 3])


@pytest.mark.parametrize('confidence', ['max_softmax', 'max_logit', 'neg_entropy'])
def test_confidence_options(confidence):
    logits, labels = _synthetic()
    policy = BudgetSolver(logits, [1, 2, 3, 4], confidence=confidence).policy_for_ratio(1.0)
    assert policy.confidence == confidence and len(policy.thresholds) == 4


def test_policy_roundtrip_and_refusals(tmp_path):
    logits, _ = _synthetic()
    policy = BudgetSolver(logits, [1, 2, 3, 4], model='GFNet').policy_for_ratio(0.2)
    path = str(tmp_path / 'policy.json')
    policy.save(path)
    loaded = ExitPolicy.load(path, model='GFNet', num_exits=4)
    assert loaded.thresholds[-1] == -math.inf
    assert loaded.thresholds == policy.thresholds
    with pytest.raises(ValueError, match="fitted for model 'GFNet', not for 'MGNet'"):
        ExitPolicy.load(path, model='MGNet', num_exits=4)
    with pytest.raises(ValueError, match='for 4 exits, but the model has 5'):
        ExitPolicy.load(path, model='GFNet', num_exits=5)
    (tmp_path / 'bad.json').write_text('{"thresholds": [1, ')
    with pytest.raises(ValueError, match='not a valid exit-policy JSON'):
        ExitPolicy.load(str(tmp_path / 'bad.json'))
    (tmp_path / 'other.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='not an exit-policy file'):
        ExitPolicy.load(str(tmp_path / 'other.json'))


def test_mean_average_precision_by_hand():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.6]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]])
    # class 0: ranking 0 (+), 1 (-), 2 (+) -> AP = (1 + 2/3) / 2
    # class 1: ranking 1 (+), 2 (+), 0 (-) -> AP = 1
    expected = ((1 + 2 / 3) / 2 + 1) / 2 * 100
    assert mean_average_precision(scores, labels) == pytest.approx(expected)
    assert mean_average_precision(scores, torch.tensor([0, 1, 1])) == pytest.approx(100.0)


# Logits whose ranking across samples differs from that of their softmax probabilities
# (issue #16, item 6). Softmax: s0 (0.881, 0.119), s1 (0.622, 0.378), s2 (0.269, 0.731).
RANKING_LOGITS = torch.tensor([[2.0, 0.0], [3.0, 2.5], [0.0, 1.0]])
RANKING_LABELS = torch.tensor([[1, 0], [0, 0], [0, 1]])


def _hand_map(scores, labels):
    """AP per class with a positive: mean precision at the ranks of the positives (float64)."""
    aps = []
    for c in range(len(labels[0])):
        order = sorted(range(len(scores)), key=lambda i: -scores[i][c])
        hits = [int(labels[i][c]) for i in order]
        if sum(hits):
            aps.append(sum(sum(hits[:r + 1]) / (r + 1) for r, h in enumerate(hits) if h)
                       / sum(hits))
    return 100 * sum(aps) / len(aps)


def test_map_ranks_by_softmax_probabilities_not_logits():
    """By logits class 0 ranks s1 > s0 > s2 (AP 1/2) and class 1 s1 > s2 > s0 (AP 1/2); by
    probabilities s0 first for class 0 and s2 first for class 1 (AP 1 each)."""
    from mmdynamic.evaluation.functional import mean_average_precision_from_logits
    logits, labels = RANKING_LOGITS, RANKING_LABELS
    probs = torch.softmax(logits.double(), dim=-1).tolist()
    assert _hand_map(probs, labels.tolist()) == pytest.approx(100.0)
    assert _hand_map(logits.tolist(), labels.tolist()) == pytest.approx(50.0)  # the old ranking
    for values in (logits, logits.double()):
        assert mean_average_precision_from_logits(values, labels) == pytest.approx(100.0)
        assert get_metric_fn('mAP')(values, labels) == pytest.approx(100.0)
    # the probability-level function is unchanged: it ranks what it is given
    assert mean_average_precision(logits, labels) == pytest.approx(50.0)
    # anytime (every exit) and budgeted (the exit each sample takes) go through the same ranking
    exit_logits = torch.stack([logits.flip(0), logits])  # (K=2, N=3, C=2)
    flipped_labels = labels.flip(0)
    assert anytime_metric(exit_logits, labels, 'mAP')[1] == pytest.approx(100.0)
    assert anytime_metric(exit_logits, flipped_labels, 'mAP')[0] == pytest.approx(100.0)
    scores = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # everybody takes exit 1
    value, cost, _ = evaluate_thresholds(exit_logits, labels, scores, torch.tensor([0.5, -1e9]),
                                         [1.0, 2.0], metric='mAP')
    assert value == pytest.approx(100.0) and cost == pytest.approx(2.0)
    # a random multi-label set: the metric equals a hand computation on the probabilities
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 5, generator=gen) * 3
    labels = (torch.rand(40, 5, generator=gen) < 0.3).long()
    labels[torch.arange(5), torch.arange(5)] = 1
    probs = torch.softmax(logits.double(), dim=-1).tolist()
    expected = _hand_map(probs, labels.tolist())
    assert get_metric_fn('mAP')(logits, labels) == pytest.approx(expected, abs=1e-9)
    assert abs(_hand_map(logits.tolist(), labels.tolist()) - expected) > 0.5
