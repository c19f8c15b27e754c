# Copyright (c) mmdynamic contributors. All rights reserved.
"""The sparsity loss of SAR (``shared/specs/sar.md`` §3, Eq. 10 and 11)."""
from typing import Optional, Sequence

import torch

from mmdynamic.models.layers.sar_layers import mask_fractions, refined_fraction

LOSS_TYPES = ('batch', 'sample', 'group', 'total')


def mask_density(mask: torch.Tensor, size: Optional[Sequence[int]] = None,
                 cell_size: Optional[int] = None) -> torch.Tensor:
    """Per-sample density r_b of one mask, the fraction of the map it refines.

    Args:
        mask (Tensor): (B, G, K_h, K_w).
        size (tuple[int, int], optional): (H, W) of the map, needed with ``cell_size``.
        cell_size (int, optional): c px cells, the edge cells cropped to the map and weighted by
            their area (as the realised MACs). None (a fixed grid): sum M / (G K_h K_w).

    Returns:
        Tensor: (B, ).
    """
    if cell_size is not None and size is None:
        raise ValueError(f'a mask of {cell_size} px cells needs the (H, W) of its map')
    return refined_fraction(mask, mask.shape[-2:] if size is None else size, cell_size)


def sparsity_loss(masks: Sequence[torch.Tensor], target: float, loss_type: str = 'batch',
                  sizes: Optional[Sequence[Sequence[int]]] = None,
                  cell_sizes: Optional[Sequence[Optional[int]]] = None) -> torch.Tensor:
    """Distance of the realised densities to the target, averaged over the N masks.

    Args:
        masks (Sequence[Tensor]): N hard masks (B, G, K_h, K_w) carrying the straight-through
            gradient.
        target (float): Target density t in [0, 1].
        loss_type (str): 'batch' (Eq. 10, the paper's choice): mean_n (mean_b r_{b,n} - t)^2, so each
            image may use a different budget; 'sample' (Eq. 11): mean_n mean_b (r_{b,n} - t)^2;
            'group': Eq. 10 for each of the G groups of a mask, mean_{n,g} (mean_b r_{b,n,g} - t)^2,
            so that a G > 1 mask cannot meet the target by dropping whole groups (refining all of
            one group and none of another) instead of choosing places; 'total': one budget for
            the whole network, (mean_n mean_b r_{b,n} - t)^2, so that masks may differ (e.g. two
            consecutive masks may both refine the object; not in the paper, issue #19).
        sizes (Sequence[tuple[int, int]], optional): (H, W) of the map of each mask, with
            ``cell_sizes``.
        cell_sizes (Sequence[int | None], optional): Cell size in pixels of each mask (None for a
            fixed grid). Then r_{b,n} is the area-weighted fraction of the map refined (edge cells
            count with their cropped area), the density the realised MACs follow. Default: every
            mask on a fixed grid, r_{b,n} = sum M / (G K_h K_w).

    Returns:
        Tensor: Scalar loss.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f'loss_type must be one of {LOSS_TYPES}, got {loss_type!r}')
    if not 0.0 <= target <= 1.0:
        raise ValueError(f'the target density must be in [0, 1], got {target}')
    if not masks:
        raise ValueError('sparsity_loss needs at least one mask (did the backbone run?)')
    fractions = mask_fractions(masks, sizes, cell_sizes, per_group=loss_type == 'group')
    if loss_type == 'total':
        return (torch.stack([density.mean() for density in fractions]).mean() - target)**2
    terms = []
    for density in fractions:
        if loss_type in ('batch', 'group'):
            terms.append(((density.mean(dim=0) - target)**2).mean())
        else:
            terms.append(((density - target)**2).mean())
    return torch.stack(terms).mean()
