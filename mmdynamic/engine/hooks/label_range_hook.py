# Copyright (c) mmdynamic contributors. All rights reserved.
"""Check the class labels of classification and video datasets against the model's classes."""
from typing import Iterable, List, Optional, Tuple

import numpy as np
import torch.nn as nn
from mmengine.hooks import Hook

from mmdynamic.registry import HOOKS, register_dual

_HEADS = ('head', 'cls_head')


def model_num_classes(model: nn.Module) -> Optional[int]:
    """``num_classes`` of a classifier / recognizer (its own, or its head's); None if unknown."""
    model = getattr(model, 'module', model)
    for owner in [model] + [getattr(model, name, None) for name in _HEADS]:
        value = getattr(owner, 'num_classes', None) if owner is not None else None
        if isinstance(value, int):
            return value
    return None


def _labels(dataset) -> Optional[List[Tuple[int, Iterable[int], str]]]:
    """(index, labels, source) of every sample, or None when the dataset has no class labels."""
    dataset = getattr(dataset, 'dataset', dataset)  # ConcatDataset / RepeatDataset wrappers
    if not hasattr(dataset, 'get_data_info') or not hasattr(dataset, '__len__'):
        return None
    out = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        value = info.get('gt_label', info.get('label'))
        if value is None:
            return None
        labels = np.asarray(value).reshape(-1).tolist()
        source = info.get('img_path') or info.get('filename') or info.get('frame_dir') or ''
        out.append((index, labels, source))
    return out


def check_label_range(dataset, num_classes: int, split: str) -> None:
    """Raise ``ValueError`` naming the first sample whose class label is outside
    ``[0, num_classes)``.

    Args:
        dataset: An MMEngine dataset whose data infos carry ``gt_label`` or ``label``.
        num_classes (int): Classes of the model.
        split (str): 'train', 'val' or 'test' (for the message).
    """
    inner = getattr(dataset, 'dataset', dataset)
    if hasattr(inner, 'get_gt_labels'):  # mmpretrain: one array, no per-sample copies
        try:
            labels = np.asarray(inner.get_gt_labels())
        except (KeyError, TypeError, ValueError):  # multi-label or no labels: per sample below
            labels = None
        if labels is not None and labels.ndim == 1 and labels.dtype.kind in 'iu':
            if labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes):
                return
    samples = _labels(dataset)
    for index, labels, source in samples or []:
        bad = [v for v in labels if not 0 <= int(v) < num_classes]
        if bad:
            raise ValueError(
                f'{split} dataset ({type(dataset).__name__}): sample {index} ({source}) has class '
                f'label {bad[0]}, outside [0, {num_classes}) for a model with {num_classes} '
                'classes. Fix the annotation file or the num_classes of the model.')


@register_dual(HOOKS)
class LabelRangeHook(Hook):
    """Before training (train and val sets) and testing (test set), check that every class label
    of the datasets lies in ``[0, num_classes)`` of the model, so that a wrong annotation fails at
    once with the sample named instead of as an index error deep in the loss (or, on GPU, a device
    assert). Datasets without class labels in their data infos (detection, segmentation) and models
    without ``num_classes`` are skipped. ``tools/train.py`` and ``tools/test.py`` add it."""
    priority = 'VERY_HIGH'

    def _check(self, runner, split: str) -> None:
        num_classes = model_num_classes(runner.model)
        loop = getattr(runner, f'{split}_loop', None)
        if num_classes is None or loop is None or isinstance(loop, dict):
            return
        dataloader = getattr(loop, 'dataloader', None)
        if dataloader is not None:
            check_label_range(dataloader.dataset, num_classes, split)

    def before_train(self, runner) -> None:
        self._check(runner, 'train')
        if runner._val_loop is not None:
            self._check(runner, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, 'test')
