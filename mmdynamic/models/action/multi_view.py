# Copyright (c) mmdynamic contributors. All rights reserved.
"""Multi-view testing of the AdaFocus recognizers (Kinetics-400's 3-crop protocol, spec §5).

A multi-view crop transform (:class:`~mmdynamic.datasets.transforms.TSNThreeCrop`, the official one, or
mmaction2's ``ThreeCrop``) puts the frames of the crops one after the other, so ``FormatShape('NCHW')``
gives a video ``V x T`` frames: V views of the model's T-frame clip. Each view runs as a video of its own,
the views are averaged after every exit, and a video costs V times a view ("8.8 x 3 GFLOPs").

Two averages (``VIEW_AVERAGES``):

- ``'logits'``: the mean of the views' raw logits. The official Uni-AdaFocus-X3D 3-crop test
  (``main_nViewEval.py``, and its early-exit script) does this, as TSN's consensus does over frames;
  mmaction2 calls it ``average_clips='score'``.
- ``'softmax'``: the log of the mean of the views' softmax scores, so that its softmax is that mean (the
  paper's wording; mmaction2's ``average_clips='prob'``).

Either way the result is a (B, C) tensor of logits: the prediction is its softmax, and early exit and the
budget thresholds read the same tensor, so a threshold fitted on the view-averaged exit logits of a test
run applies unchanged to early exit. :class:`ViewAveragedSteps` makes the same average step by step, so
that early exit decides per video on the view-averaged confidence and really skips the later steps of all
its views.
"""
from typing import Tuple

import torch

from mmdynamic.models.utils.early_exit import State, StepwiseMixin

VIEW_AVERAGES = ('logits', 'softmax')


def check_view_average(mode: str) -> str:
    """Return ``mode`` if it is one of ``VIEW_AVERAGES``, else raise a ValueError."""
    if mode not in VIEW_AVERAGES:
        raise ValueError(f'view_average must be one of {VIEW_AVERAGES}, got {mode!r}')
    return mode


def split_views(inputs: torch.Tensor, num_views: int) -> torch.Tensor:
    """(B, V * T, ...) -> (B * V, T, ...): each view as a video of its own (views are contiguous)."""
    batch, frames = inputs.shape[:2]
    if frames % num_views:
        raise ValueError(f'{frames} frames per video do not split into {num_views} views')
    return inputs.reshape(batch * num_views, frames // num_views, *inputs.shape[2:])


def average_views(logits: torch.Tensor, num_views: int, mode: str = 'logits') -> torch.Tensor:
    """Average the views of each video.

    Args:
        logits (Tensor): (..., B * V, C) logits of the views, the V views of a video consecutive.
        num_views (int): V.
        mode (str): 'logits' (the mean of the raw logits; official) or 'softmax' (the log of the
            views' mean softmax, whose softmax is that mean). Defaults to 'logits'.

    Returns:
        Tensor: (..., B, C) logits.
    """
    check_view_average(mode)
    if logits.shape[-2] % num_views:
        raise ValueError(f'{logits.shape[-2]} rows of logits do not split into {num_views} views')
    if mode == 'logits':
        return logits.reshape(*logits.shape[:-2], -1, num_views, logits.shape[-1]).mean(dim=-2)
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
    views' average (:func:`average_views`); the state keeps the views of a video together, batch first.

    Args:
        model (StepwiseMixin): The single-view step-wise model.
        num_views (int): V.
        mode (str): 'logits' (official) or 'softmax', see :func:`average_views`. Defaults to 'logits'.
    """

    def __init__(self, model: StepwiseMixin, num_views: int, mode: str = 'logits') -> None:
        self.model = model
        self.num_views = num_views
        self.mode = check_view_average(mode)
        self.num_exits = model.num_exits

    def init_state(self, inputs: torch.Tensor, **kwargs) -> State:
        """Args: inputs (Tensor): (B, V * T, ...)."""
        return _group(self.model.init_state(split_views(inputs, self.num_views), **kwargs),
                      self.num_views)

    def step(self, index: int, inputs: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        views = None if inputs is None else split_views(inputs, self.num_views)
        logits, state = self.model.step(index, views, _ungroup(state))
        return average_views(logits, self.num_views, self.mode), _group(state, self.num_views)
