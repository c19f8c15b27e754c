# Copyright (c) mmdynamic contributors. All rights reserved.
"""Logits of any mmpretrain classifier, per exit, with gradients (for attacks and robustness tables)."""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn


def classifier_exit_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Logits of every exit of a classifier on preprocessed ``inputs`` (B, C, H, W), with autograd.

    Step-wise models (:class:`~mmdynamic.models.utils.StepwiseMixin`, e.g. MGNet, GFNet) give all their
    exits; an mmpretrain ``ImageClassifier`` (backbone, neck, head) gives one.

    Returns:
        Tensor: (K, B, num_classes).
    """
    from mmdynamic.models.utils.early_exit import StepwiseMixin
    if isinstance(model, StepwiseMixin):
        return model.forward_exits(inputs)
    head = getattr(model, 'head', None)
    if head is not None and hasattr(model, 'extract_feat'):
        return head(model.extract_feat(inputs))[None]
    raise TypeError(f'{type(model).__name__} is neither a step-wise model nor a classifier with '
                    '`extract_feat` and `head`')


def normalization_of(model: nn.Module, channels: int) -> Dict[str, torch.Tensor]:
    """``mean`` and ``std`` (1, C, 1, 1) of the model's data preprocessor (0 and 1 if it does not
    normalise), mapping pixel values (0..255) to the model's inputs."""
    pre = getattr(model, 'data_preprocessor', None)
    if pre is not None and getattr(pre, '_enable_normalize', False):
        mean, std = pre.mean.reshape(1, -1, 1, 1), pre.std.reshape(1, -1, 1, 1)
    else:
        param = next(model.parameters())
        mean = torch.zeros(1, channels, 1, 1, device=param.device)
        std = torch.ones(1, channels, 1, 1, device=param.device)
    return dict(mean=mean.float(), std=std.float())


class ExitAccuracy:
    """Running top-1 accuracy of every exit (K exits)."""

    def __init__(self) -> None:
        self.correct: List[int] = []
        self.total = 0

    def update(self, exit_logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Args: exit_logits (Tensor): (K, B, C). labels (Tensor): (B, )."""
        hits = (exit_logits.argmax(-1) == labels[None].to(exit_logits.device)).sum(-1).tolist()
        if not self.correct:
            self.correct = [0] * len(hits)
        self.correct = [c + h for c, h in zip(self.correct, hits)]
        self.total += int(labels.numel())

    def result(self) -> List[float]:
        """Top-1 (%) of each exit."""
        if self.total == 0:
            raise ValueError('no samples were evaluated')
        return [100.0 * c / self.total for c in self.correct]


def mean_of(rows: Sequence[Sequence[float]]) -> List[float]:
    """Column means of equally long rows."""
    return [sum(col) / len(col) for col in zip(*rows)]
