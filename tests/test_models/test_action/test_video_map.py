# Copyright (c) mmdynamic contributors. All rights reserved.
"""Multi-label mAP (ActivityNet / FCVID, spec §5.2) against mmaction2's own metric.

§5.2 (official code): per class, sort the videos by softmax score; AP = sum over positive ranks of the
precision at that rank / max(#positives, 1); mean over all classes. mmaction2's
``AccMetric(metric_list=('mean_average_precision', ))`` computes the same number (as a fraction) whenever
every class has a positive and no scores tie, which holds for softmax scores on the official val sets, so
the configs use mmaction2's metric. The one difference (a class without positives counts 0 in §5.2 and is
skipped by mmaction2) is pinned down below.
"""
import numpy as np
import torch
from mmaction.evaluation import AccMetric

from mmdynamic.evaluation.functional.budget import mean_average_precision


def spec_map(scores: np.ndarray, labels: np.ndarray) -> float:
    """§5.2 literally, in percent."""
    aps = []
    for c in range(scores.shape[1]):
        order = np.argsort(-scores[:, c], kind='stable')
        hits = labels[order, c]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append((precision * hits).sum() / max(hits.sum(), 1))
    return float(np.mean(aps) * 100)


def mmaction_map(scores: np.ndarray, labels: np.ndarray) -> float:
    metric = AccMetric(metric_list=('mean_average_precision', ))
    metric.process(None, [dict(pred_score=torch.from_numpy(s), gt_label=torch.from_numpy(y))
                          for s, y in zip(scores, labels)])
    return metric.compute_metrics(metric.results)['mean_average_precision'] * 100


def _multi_label_set(num=60, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(num, classes))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.zeros((num, classes), dtype=np.int64)
    labels[np.arange(num), rng.integers(0, classes, num)] = 1  # first label
    second = rng.random(num) < 0.3  # some videos have a second label
    labels[np.nonzero(second)[0], rng.integers(0, classes, second.sum())] = 1
    labels[np.arange(classes), np.arange(classes)] = 1  # every class has a positive
    return scores, labels


def test_mmaction_map_equals_spec_map():
    for seed in range(3):
        scores, labels = _multi_label_set(seed=seed)
        expected = spec_map(scores, labels)
        assert abs(mmaction_map(scores, labels) - expected) < 1e-6
        assert abs(mean_average_precision(torch.from_numpy(scores), torch.from_numpy(labels))
                   - expected) < 1e-6  # mmdynamic's anytime / budgeted mAP


def test_class_without_positives_is_the_only_difference():
    scores, labels = _multi_label_set()
    labels[:, 0] = 0  # class 0 has no positive in this split
    spec = spec_map(scores, labels)
    skipped = mmaction_map(scores, labels)
    # §5.2 averages a 0 for class 0 over all 6 classes; mmaction2 averages the other 5
    assert abs(spec - skipped * 5 / 6) < 1e-6
