# Copyright (c) mmdynamic contributors. All rights reserved.
"""Policy losses of Uni-AdaFocus (spec §3.3-3.4).

- :func:`temporal_policy_loss`: the expected loss of drawing frames by weighted sampling without
  replacement, Monte-Carlo decomposed (Eq. 21), differentiable in the frame weights. Two forms:
  ``'expected_ce'`` (the paper: renormalised weights times per-frame cross-entropies) and
  ``'ce_of_mixture'`` (the official code: cross-entropy of the renormalised mixture of per-frame logits,
  with a detached normaliser). The frames removed before the i-th term (i = 1..D) are, by default, a
  fresh draw of i - 1 frames for every i (``draw_mode='independent'``, the official ``MCSampleFeature``);
  ``'nested'`` uses the prefixes of one draw sequence per sample (same expectation, other variance).
- :func:`removal_masks`: those removed frames as 0/1 masks (what a test can also inject).
- :func:`exact_temporal_loss`: the same expectation by enumerating every ordered draw (tests, tiny T).
- :func:`box_size_regulariser`: ``mean((1 - a_h)^2 + (1 - a_w)^2) / 2`` in normalised units, pulling boxes
  towards the full frame (the alpha term of Eq. 15).
"""
import itertools
from typing import Optional

import torch
import torch.nn.functional as F

TEMPORAL_LOSS_FORMS = ('expected_ce', 'ce_of_mixture')
MC_DRAW_MODES = ('independent', 'nested')


def _multinomial(probs: torch.Tensor, num: int,
                 generator: Optional[torch.Generator]) -> torch.Tensor:
    """``torch.multinomial`` without replacement on the generator's device (if one is given)."""
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.to(generator.device), num, replacement=False,
                                 generator=generator).to(probs.device)
    return torch.multinomial(probs, num, replacement=False, generator=generator)


def _draw_probs(weights: torch.Tensor) -> torch.Tensor:
    """Non-negative sampling weights: zero (or negative) entries get a tiny positive weight, so that
    every frame can be drawn; positive weights are used as they are."""
    probs = weights.detach().clamp(min=0)
    return torch.where(probs > 0, probs, torch.full_like(probs, 1e-12))


def draw_without_replacement(weights: torch.Tensor, num_draws: int, num_samples: int,
                             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Ordered draws n_1..n_D by weighted sampling without replacement (Eq. 16, 19).

    Args:
        weights (Tensor): (B, T) non-negative weights (not differentiated).
        num_draws (int): D <= T. num_samples (int): M sequences per video.
        generator (torch.Generator, optional): For the draws.

    Returns:
        Tensor: (B, M, D) int64 frame indices, in draw order.
    """
    batch, frames = weights.shape
    probs = weights.detach().float().clamp(min=0) + 1e-12
    flat = probs.repeat_interleave(num_samples, dim=0)
    draws = _multinomial(flat, num_draws, generator)
    return draws.view(batch, num_samples, num_draws)


def removal_masks(weights: torch.Tensor, num_draws: int, num_samples: int,
                  draw_mode: str = 'independent',
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Frames removed before each of the D terms of the Monte-Carlo loss (Eq. 19-21).

    Term i (0-based) renormalises the weights without i frames drawn by weighted sampling without
    replacement. ``'independent'`` (official ``MCSampleFeature``): for i = 1..D-1 a fresh draw of i
    frames for each of the M samples, made in that order (the generator is consumed as the official
    loop consumes torch's). ``'nested'``: one sequence of D draws per sample
    (:func:`draw_without_replacement`), term i removes its first i.

    Args:
        weights (Tensor): (B, T) non-negative weights (not differentiated).
        num_draws (int): D in [1, T]. num_samples (int): M.
        draw_mode (str): 'independent' or 'nested'. Defaults to 'independent'.
        generator (torch.Generator, optional): For the draws.

    Returns:
        Tensor: (B, M, D, T) 0/1 masks in the dtype of ``weights``; term 0 removes nothing.
    """
    if draw_mode not in MC_DRAW_MODES:
        raise ValueError(f'draw_mode must be one of {MC_DRAW_MODES}, got {draw_mode!r}')
    batch, frames = weights.shape
    if draw_mode == 'nested':
        draws = draw_without_replacement(weights, num_draws, num_samples, generator)
        removed = F.one_hot(draws, frames).to(weights.dtype)  # (B, M, D, T)
        # before term i the first i draws are removed: exclusive cumulative sum along the draws
        return torch.cat([removed.new_zeros(batch, num_samples, 1, frames),
                          removed.cumsum(dim=2)[:, :, :-1]], dim=2)
    flat = _draw_probs(weights).repeat_interleave(num_samples, dim=0)  # (B * M, T)
    masks = [weights.new_zeros(batch * num_samples, frames)]
    for depth in range(1, num_draws):
        drawn = _multinomial(flat, depth, generator)
        masks.append(weights.new_zeros(batch * num_samples, frames).scatter_(1, drawn, 1.0))
    return torch.stack(masks, dim=1).view(batch, num_samples, num_draws, frames)


def _renormalised_weights(weights: torch.Tensor, removed: torch.Tensor,
                          detach_normaliser: bool) -> torch.Tensor:
    """w^{m,(i)}_j / sum_j' w^{m,(i)}_j' for every term i: (B, M, D, T), ``removed`` (B, M, D, T)."""
    kept = weights[:, None, None, :] * (1 - removed)
    norm = kept.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return kept / (norm.detach() if detach_normaliser else norm)


def temporal_policy_loss(weights: torch.Tensor, frame_logits: torch.Tensor, labels: torch.Tensor,
                         num_draws: int, num_samples: int = 128, form: str = 'expected_ce',
                         generator: Optional[torch.Generator] = None,
                         draw_mode: str = 'independent',
                         removed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Monte-Carlo estimate of the temporal policy loss (Eq. 21).

    Its value estimates the expected loss of the draws (Eq. 17); its gradient flows through the
    renormalised weights of each draw given the sampled earlier draws (the decomposition Eq. 18), with
    no score-function term for the earlier draws, as in the paper.

    Args:
        weights (Tensor): (B, T) frame weights (sum to 1), differentiable.
        frame_logits (Tensor): (B, T, C) per-frame logits (the auxiliary global head; detach them to
            train only the policy).
        labels (Tensor): (B, ) class indices.
        num_draws (int): D, the number of terms (frames drawn), floor(T_L / T_0 * T_G) on the glance
            frames.
        num_samples (int): M Monte-Carlo samples per video. Defaults to 128.
        form (str): 'expected_ce' (Eq. 21) or 'ce_of_mixture' (official code). Defaults to
            'expected_ce'.
        generator (torch.Generator, optional): For the draws.
        draw_mode (str): 'independent' (official: a fresh draw for every term) or 'nested' (prefixes
            of one draw sequence). See :func:`removal_masks`. Defaults to 'independent'.
        removed (Tensor, optional): (B, M, D, T) 0/1 masks of the removed frames to use instead of
            drawing them (M is then ``removed.shape[1]``).

    Returns:
        Tensor: scalar loss, averaged over the batch.
    """
    if form not in TEMPORAL_LOSS_FORMS:
        raise ValueError(f'form must be one of {TEMPORAL_LOSS_FORMS}, got {form!r}')
    if not 1 <= num_draws <= weights.shape[1]:
        raise ValueError(f'num_draws must be in [1, {weights.shape[1]}], got {num_draws}')
    if removed is None:
        removed = removal_masks(weights, num_draws, num_samples, draw_mode, generator)
    elif removed.dim() != 4 or removed.shape[0] != weights.shape[0] or \
            removed.shape[2:] != (num_draws, weights.shape[1]):
        raise ValueError(f'removed must be (B, M, D={num_draws}, T={weights.shape[1]}), got '
                         f'{tuple(removed.shape)}')
    removed = removed.to(weights)
    num_samples = removed.shape[1]
    if form == 'expected_ce':
        mix = _renormalised_weights(weights, removed, detach_normaliser=False)  # (B, M, D, T)
        frame_ce = F.cross_entropy(frame_logits.flatten(0, 1), labels.repeat_interleave(
            frame_logits.shape[1]), reduction='none').view(frame_logits.shape[:2])  # (B, T)
        return (mix * frame_ce[:, None, None, :]).sum(-1).mean()
    mix = _renormalised_weights(weights, removed, detach_normaliser=True)
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
