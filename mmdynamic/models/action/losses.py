# Copyright (c) mmdynamic contributors. All rights reserved.
"""Policy losses of Uni-AdaFocus (spec §3.3-3.4).

- :func:`temporal_policy_loss`: the expected loss of drawing frames by weighted sampling without
  replacement, Monte-Carlo decomposed (Eq. 21), differentiable in the frame weights. Two forms:
  ``'expected_ce'`` (the paper: renormalised weights times per-frame cross-entropies) and
  ``'ce_of_mixture'`` (the official code: cross-entropy of the renormalised mixture of per-frame logits,
  with a detached normaliser).
- :func:`exact_temporal_loss`: the same expectation by enumerating every ordered draw (tests, tiny T).
- :func:`box_size_regulariser`: ``mean((1 - a_h)^2 + (1 - a_w)^2) / 2`` in normalised units, pulling boxes
  towards the full frame (the alpha term of Eq. 15).
"""
import itertools
from typing import Optional

import torch
import torch.nn.functional as F

TEMPORAL_LOSS_FORMS = ('expected_ce', 'ce_of_mixture')


def draw_without_replacement(weights: torch.Tensor, num_draws: int, num_samples: int,
                             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Ordered draws n_1..n_D by weighted sampling without replacement (Eq. 16, 19).

    Args:
        weights (Tensor): (B, T) non-negative weights (not differentiated).
        num_draws (int): D <= T. num_samples (int): M sequences per video.

    Returns:
        Tensor: (B, M, D) int64 frame indices, in draw order.
    """
    batch, frames = weights.shape
    probs = weights.detach().float().clamp(min=0) + 1e-12
    flat = probs.repeat_interleave(num_samples, dim=0)
    draws = torch.multinomial(flat, num_draws, replacement=False, generator=generator)
    return draws.view(batch, num_samples, num_draws)


def _renormalised_weights(weights: torch.Tensor, draws: torch.Tensor,
                          detach_normaliser: bool) -> torch.Tensor:
    """w^{m,(i)}_j / sum_j' w^{m,(i)}_j' for i = 1..D: (B, M, D, T); step i removes n_1..n_{i-1}."""
    batch, samples, num_draws = draws.shape
    frames = weights.shape[1]
    removed = F.one_hot(draws, frames).to(weights.dtype)  # (B, M, D, T)
    # before step i the first i-1 draws are removed: exclusive cumulative sum along the draws
    removed = torch.cat([removed.new_zeros(batch, samples, 1, frames),
                         removed.cumsum(dim=2)[:, :, :-1]], dim=2)
    kept = weights[:, None, None, :] * (1 - removed)
    norm = kept.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return kept / (norm.detach() if detach_normaliser else norm)


def temporal_policy_loss(weights: torch.Tensor, frame_logits: torch.Tensor, labels: torch.Tensor,
                         num_draws: int, num_samples: int = 128, form: str = 'expected_ce',
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Monte-Carlo estimate of the temporal policy loss (Eq. 21).

    Its value estimates the expected loss of the draws (Eq. 17); its gradient flows through the
    renormalised weights of each draw given the sampled earlier draws (the decomposition Eq. 18), with
    no score-function term for the earlier draws, as in the paper.

    Args:
        weights (Tensor): (B, T) frame weights (sum to 1), differentiable.
        frame_logits (Tensor): (B, T, C) per-frame logits (the auxiliary global head; detach them to
            train only the policy).
        labels (Tensor): (B, ) class indices.
        num_draws (int): D, the number of frames drawn (floor(T_L / T_0 * T_G) on the glance frames).
        num_samples (int): M sampled draw orders per video. Defaults to 128.
        form (str): 'expected_ce' (Eq. 21) or 'ce_of_mixture' (official code). Defaults to
            'expected_ce'.

    Returns:
        Tensor: scalar loss, averaged over the batch.
    """
    if form not in TEMPORAL_LOSS_FORMS:
        raise ValueError(f'form must be one of {TEMPORAL_LOSS_FORMS}, got {form!r}')
    if not 1 <= num_draws <= weights.shape[1]:
        raise ValueError(f'num_draws must be in [1, {weights.shape[1]}], got {num_draws}')
    draws = draw_without_replacement(weights, num_draws, num_samples, generator)
    if form == 'expected_ce':
        mix = _renormalised_weights(weights, draws, detach_normaliser=False)  # (B, M, D, T)
        frame_ce = F.cross_entropy(frame_logits.flatten(0, 1), labels.repeat_interleave(
            frame_logits.shape[1]), reduction='none').view(frame_logits.shape[:2])  # (B, T)
        return (mix * frame_ce[:, None, None, :]).sum(-1).mean()
    mix = _renormalised_weights(weights, draws, detach_normaliser=True)
    mixed_logits = torch.einsum('bmdt,btc->bc', mix, frame_logits) / (num_samples * num_draws)
    return F.cross_entropy(mixed_logits, labels)


def exact_temporal_loss(weights: torch.Tensor, frame_losses: torch.Tensor,
                        num_draws: int) -> torch.Tensor:
    """E[(1/D) sum_i L(n_i)] under weighted sampling without replacement, by enumeration (Eq. 17).

    Args:
        weights (Tensor): (T, ) weights summing to 1. frame_losses (Tensor): (T, ). num_draws (int): D.

    Returns:
        Tensor: scalar, differentiable in ``weights``. Cost O(T! / (T - D)!): tests only.
    """
    total = weights.new_zeros(())
    frames = weights.shape[0]
    for order in itertools.permutations(range(frames), num_draws):
        prob = weights.new_ones(())
        left = weights.sum()
        for n in order:
            prob = prob * weights[n] / left
            left = left - weights[n]
        total = total + prob * frame_losses[list(order)].mean()
    return total


def box_size_regulariser(actions: torch.Tensor) -> torch.Tensor:
    """Pull of the box sides towards the full frame: mean over boxes of ((1 - a_h)^2 + (1 - a_w)^2) / 2.

    Args:
        actions (Tensor): (..., 4) (a_y, a_x, a_h, a_w) in (0, 1).
    """
    return (1 - actions[..., 2:4]).pow(2).mean()
