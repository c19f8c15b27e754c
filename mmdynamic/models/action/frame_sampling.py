# Copyright (c) mmdynamic contributors. All rights reserved.
"""Which frames the encoders of Uni-AdaFocus see, and where their patches lie.

Pure-torch functions (no parameters):

- :func:`glance_frame_indices`: the T_G frames of the global encoder among the T_0 candidates (one per
  group of T_0 / T_G consecutive candidates: a random member in training; at test the member of index 1,
  ``arange(T_0)[1::T_0 // T_G]`` as in the official MN2 + R50 code, or optionally the middle one).
- :func:`quantile_frame_indices`: the T_L frames of the local encoder, read off the inverse CDF of the
  frame weights at stratified levels (spec §3.4): ``(i + U(0, 1)) / T_L`` in training, ``(i + 0.5) / T_L``
  at test; the indices are made strictly increasing and clamped to the video.
- :func:`interpolate_actions`: per-glance-frame policy outputs linearly interpolated in time to all T_0
  candidates (``F.interpolate(mode='linear', align_corners=False)``).
- :func:`actions_to_boxes` / :func:`random_boxes`: the deformable boxes of the policy
  ((a_y, a_x, a_h, a_w) in (0, 1)^4 -> (centre_y, centre_x, height, width) in pixels, sides in
  [min_size, frame side], always inside the frame) and the fixed-size random boxes of the diversity
  branch, both in the format of :func:`mmdynamic.models.utils.crop_boxes`.

Every random draw takes an optional ``torch.Generator`` (drawn on the generator's device, then moved to
the requested one), so that a training forward can be reproduced from a seed.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F


def draw_device(generator: Optional[torch.Generator], device=None):
    """The device to draw on: the generator's if one is given (torch requires it), else ``device``."""
    return generator.device if generator is not None else device


def glance_test_offset(group: int, test_offset: Union[int, str] = 1) -> int:
    """Index within its group of T_0 / T_G candidates of the glance frame at test.

    Args:
        group (int): T_0 / T_G.
        test_offset (int | str): An index (1 by default: ``arange(T_0)[1::T_0 // T_G]``, the official
            MN2 + R50 code; capped at ``group - 1``, so a group of one takes its only frame) or
            ``'middle'`` (``group // 2``).

    Returns:
        int: The offset in [0, group).
    """
    if test_offset == 'middle':
        return group // 2
    if isinstance(test_offset, bool) or not isinstance(test_offset, int) or test_offset < 0:
        raise ValueError(f"test_offset must be a non-negative int or 'middle', got {test_offset!r}")
    return min(test_offset, group - 1)


def glance_frame_indices(batch_size: int, num_candidates: int, num_glance: int, training: bool,
                         device=None, generator: Optional[torch.Generator] = None,
                         test_offset: Union[int, str] = 1) -> torch.Tensor:
    """Indices of the glance frames among the candidates.

    Args:
        batch_size (int): B.
        num_candidates (int): T_0, a multiple of ``num_glance``.
        num_glance (int): T_G.
        training (bool): A random member of each group (True) or the member ``test_offset`` (False).
        generator (torch.Generator, optional): For the random members.
        test_offset (int | str): See :func:`glance_test_offset`. Defaults to 1 (official).

    Returns:
        Tensor: (B, T_G) int64, increasing.
    """
    if num_candidates % num_glance:
        raise ValueError(f'num_candidates ({num_candidates}) must be a multiple of num_glance '
                         f'({num_glance})')
    group = num_candidates // num_glance
    offset = glance_test_offset(group, test_offset)
    starts = torch.arange(num_glance, device=device) * group
    if training:
        offsets = torch.randint(0, group, (batch_size, num_glance), generator=generator,
                                device=draw_device(generator, device)).to(starts.device)
    else:
        offsets = torch.full((batch_size, num_glance), offset, device=device)
    return starts[None] + offsets


def quantile_levels(batch_size: int, num_select: int, training: bool, device=None,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Stratified levels ``(i + xi_i) / T_L``: xi ~ U(0, 1) in training, 0.5 at test. Returns (B, T_L)."""
    base = torch.arange(num_select, device=device, dtype=torch.float32)
    if training:
        jitter = torch.rand((batch_size, num_select), generator=generator,
                            device=draw_device(generator, device)).to(base.device)
    else:
        jitter = torch.full((batch_size, num_select), 0.5, device=device)
    return (base[None] + jitter) / num_select


def quantile_frame_indices(weights: torch.Tensor, num_select: int, num_candidates: int,
                           levels: Optional[torch.Tensor] = None, training: bool = False,
                           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Frames for the local encoder by the inverse CDF of the frame weights (Uni-AdaFocus §3.4).

    The weights ``w`` of the T_G glance positions define a piecewise-linear CDF on [0, 1] with knots
    ``x_j = j / T_G`` and ``F(x_j) = w_1 + ... + w_j`` (``F(1) = 1``). Level ``u`` maps to
    ``x = F^{-1}(u)`` and to the candidate ``floor(x * T_0)``; the indices are then made strictly
    increasing (``n_i >= n_{i-1} + 1``) and clamped (``n_i <= T_0 - T_L + i``), so that T_L distinct
    frames in temporal order come out even for peaked weights.

    Args:
        weights (Tensor): (B, T_G) non-negative frame weights (normalised here; not differentiated).
        num_select (int): T_L <= T_0.
        num_candidates (int): T_0.
        levels (Tensor, optional): (B, T_L) increasing levels in (0, 1); default
            :func:`quantile_levels` for ``training``.
        training (bool): Stratified random levels (True) or centred levels (False).
        generator (torch.Generator, optional): For the random levels.

    Returns:
        Tensor: (B, T_L) int64 strictly increasing indices in [0, T_0).
    """
    if weights.dim() != 2:
        raise ValueError(f'weights must be (B, T_G), got {tuple(weights.shape)}')
    if not 1 <= num_select <= num_candidates:
        raise ValueError(f'num_select must be in [1, num_candidates={num_candidates}], '
                         f'got {num_select}')
    weights = weights.detach().float().clamp(min=0)
    batch, num_bins = weights.shape
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
    cdf = torch.cat([weights.new_zeros(batch, 1), weights.cumsum(dim=1)], dim=1)
    cdf[:, -1] = 1.0
    if levels is None:
        levels = quantile_levels(batch, num_select, training, weights.device, generator)
    levels = levels.to(weights).clamp(1e-6, 1 - 1e-6)
    # segment j with cdf[j] < u <= cdf[j + 1]; its width is positive by construction
    seg = torch.searchsorted(cdf[:, 1:].contiguous(), levels.contiguous()).clamp(max=num_bins - 1)
    low = cdf.gather(1, seg)
    width = (cdf.gather(1, seg + 1) - low).clamp(min=1e-12)
    pos = (seg.to(levels) + ((levels - low) / width).clamp(0, 1)) / num_bins
    index = (pos * num_candidates).floor().long().clamp(0, num_candidates - 1)
    rank = torch.arange(num_select, device=index.device)
    shifted = (index - rank).cummax(dim=1).values.clamp(0, num_candidates - num_select)
    return shifted + rank


def interpolate_actions(actions: torch.Tensor, num_candidates: int) -> torch.Tensor:
    """Per-glance-frame outputs linearly interpolated to every candidate frame.

    Args:
        actions (Tensor): (B, T_G, D).
        num_candidates (int): T_0.

    Returns:
        Tensor: (B, T_0, D) (``align_corners=False``: glance frame j sits at the centre of its group).
    """
    out = F.interpolate(actions.transpose(1, 2), size=num_candidates, mode='linear',
                        align_corners=False)
    return out.transpose(1, 2)


def actions_to_boxes(actions: torch.Tensor, frame_size: Tuple[int, int],
                     min_size: float) -> torch.Tensor:
    """Deformable boxes from normalised actions (Uni-AdaFocus).

    Side ``s = min_size + a_s (S - min_size)`` for each axis, top-left ``a_pos (S - s)``; so every
    box lies inside the frame and its sides range over [min_size, S].

    Args:
        actions (Tensor): (..., 4) (a_y, a_x, a_h, a_w) in [0, 1].
        frame_size (tuple): (H, W) of the frames.
        min_size (float): Smallest side in pixels (96 in the paper, for 224 frames).

    Returns:
        Tensor: (..., 4) (centre_y, centre_x, height, width) in pixels.
    """
    height, width = frame_size
    if not 0 < min_size <= min(height, width):
        raise ValueError(f'min_size must be in (0, {min(height, width)}], got {min_size}')
    extent = actions.new_tensor([float(height), float(width)])
    sides = min_size + actions[..., 2:4] * (extent - min_size)
    top_left = actions[..., 0:2] * (extent - sides)
    # centre as (x1 + x2) / 2 with x2 = x1 + s: the crop's translation -1 + 2 c / S is then
    # bit-identical to the official -1 + (x1 + x2) / S
    return torch.cat([(top_left + (top_left + sides)) / 2, sides], dim=-1)


def random_boxes(shape: Sequence[int], frame_size: Tuple[int, int], side: float, device=None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Fixed ``side x side`` boxes at uniformly random places inside the frame (diversity branch).

    Args:
        shape (Sequence[int]): Leading shape of the boxes, e.g. (B, T_L).
        frame_size (tuple): (H, W) of the frames.
        side (float): P, the side of every box.
        device: Device of the boxes.
        generator (torch.Generator, optional): For the places.

    Returns:
        Tensor: (*shape, 4) (centre_y, centre_x, side, side) in pixels.
    """
    height, width = frame_size
    if side > min(height, width):
        raise ValueError(f'random boxes of side {side} do not fit {height} x {width} frames')
    pos = torch.rand(tuple(shape) + (2, ), generator=generator,
                     device=draw_device(generator, device)).to(device)
    extent = pos.new_tensor([float(height), float(width)])
    centres = pos * (extent - side) + side / 2
    return torch.cat([centres, torch.full_like(centres, float(side))], dim=-1)
