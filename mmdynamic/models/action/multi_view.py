# Copyright (c) mmdynamic contributors. All rights reserved.
"""Multi-view testing of the AdaFocus recognizers (Kinetics-400's 3-crop protocol, spec §5).

mmaction2's ``ThreeCrop`` puts the frames of the three crops one after the other, so ``FormatShape('NCHW')``
gives a video ``V x T`` frames: V views of the model's T-frame clip. Each view runs as a video of its own;
the prediction averages the views' softmax scores (the paper's "average softmax"), after every exit, and
a video costs V times a view ("8.8 x 3 GFLOPs").

:class:`ViewAveragedSteps` makes the same average step by step, so that early exit decides per video on
the view-averaged confidence and really skips the later steps of all its views.
"""
from typing import Tuple

import torch

from mmdynamic.models.utils.early_exit import State, StepwiseMixin


def split_views(inputs: torch.Tensor, num_views: int) -> torch.Tensor:
    """(B, V * T, ...) -> (B * V, T, ...): each view as a video of its own (views are contiguous)."""
    batch, frames = inputs.shape[:2]
    if frames % num_views:
        raise ValueError(f'{frames} frames per video do not split into {num_views} views')
    return inputs.reshape(batch * num_views, frames // num_views, *inputs.shape[2:])


def average_views(logits: torch.Tensor, num_views: int) -> torch.Tensor:
    """Logits (..., B * V, C) of the views -> (..., B, C) log of the views' mean softmax (its softmax
    is the mean of the views' softmax scores)."""
    probs = logits.softmax(dim=-1)
    probs = probs.reshape(*probs.shape[:-2], -1, num_views, probs.shape[-1]).mean(dim=-2)
    return probs.clamp(min=torch.finfo(probs.dtype).tiny).log()


def _group(tree: State, num_views: int) -> State:
    """Tensors (B * V, ...) -> (B, V, ...) in a nested state (the executor gathers along dim 0)."""
    if isinstance(tree, torch.Tensor):
        return tree.reshape(-1, num_views, *tree.shape[1:]) if tree.dim() > 0 else tree
    if isinstance(tree, dict):
        return type(tree)((k, _group(v, num_views)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree)(_group(v, num_views) for v in tree)
    return tree


def _ungroup(tree: State) -> State:
    """Tensors (B, V, ...) -> (B * V, ...) in a nested state."""
    if isinstance(tree, torch.Tensor):
        return tree.flatten(0, 1) if tree.dim() > 1 else tree
    if isinstance(tree, dict):
        return type(tree)((k, _ungroup(v)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree)(_ungroup(v) for v in tree)
    return tree


class ViewAveragedSteps(StepwiseMixin):
    """A step-wise model on V-view videos: every step runs the model on all views and returns the
    log of the views' mean softmax; the state keeps the views of a video together, batch first.

    Args:
        model (StepwiseMixin): The single-view step-wise model.
        num_views (int): V.
    """

    def __init__(self, model: StepwiseMixin, num_views: int) -> None:
        self.model = model
        self.num_views = num_views
        self.num_exits = model.num_exits

    def init_state(self, inputs: torch.Tensor, **kwargs) -> State:
        """Args: inputs (Tensor): (B, V * T, ...)."""
        return _group(self.model.init_state(split_views(inputs, self.num_views), **kwargs),
                      self.num_views)

    def step(self, index: int, inputs: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        views = None if inputs is None else split_views(inputs, self.num_views)
        logits, state = self.model.step(index, views, _ungroup(state))
        return average_views(logits, self.num_views), _group(state, self.num_views)
