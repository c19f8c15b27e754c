# Copyright (c) mmdynamic contributors. All rights reserved.
"""The sparsity loss of SAR (``shared/specs/sar.md`` §3, Eq. 10 and 11)."""
from typing import Sequence

import torch

LOSS_TYPES = ('batch', 'sample')


def mask_density(mask: torch.Tensor) -> torch.Tensor:
    """Per-sample density r_b = sum M / (G K K). Args: mask (B, G, K, K). Returns: (B, )."""
    return mask.flatten(1).mean(dim=1)


def sparsity_loss(masks: Sequence[torch.Tensor], target: float,
                  loss_type: str = 'batch') -> torch.Tensor:
    """Distance of the realised densities to the target, averaged over the N masks.

    Args:
        masks (Sequence[Tensor]): N hard masks (B, G, K, K) carrying the straight-through gradient.
        target (float): Target density t in [0, 1].
        loss_type (str): 'batch' (Eq. 10, the paper's choice): mean_n (mean_b r_{b,n} - t)^2, so each
            image may use a different budget; 'sample' (Eq. 11): mean_n mean_b (r_{b,n} - t)^2.

    Returns:
        Tensor: Scalar loss.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got {loss_type!r}')
    if not 0.0 <= target <= 1.0:
        raise ValueError(f'the target density must be in [0, 1], got {target}')
    if not masks:
        raise ValueError('sparsity_loss needs at least one mask (did the backbone run?)')
    terms = []
    for mask in masks:
        density = mask_density(mask)
        if loss_type == 'batch':
            terms.append((density.mean() - target)**2)
        else:
            terms.append(((density - target)**2).mean())
    return torch.stack(terms).mean()
