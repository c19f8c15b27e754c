# Copyright (c) mmdynamic contributors. All rights reserved.
"""Fitting the test-time density of SAR's masks to the target after training (issue #19).

The sparsity loss meets the target with the sampled training masks, but the test-time masks are the
argmax of the eval-mode logits: a cell near the decision boundary that a sample refines with
probability 0.4 is never refined by the argmax, and batch norm uses its running statistics instead
of the batch's. The two densities differ: in the demo runs the samples met 0.5 while the argmax
refined 0.38-0.57 of the map. Which cells a mask prefers is learnt; how many it refines is a budget.
:func:`calibrate_mask_density` keeps each mask's order of cells (its 1x1 weights) and moves only its
refine bias, so that the argmax refines the target fraction of the calibration data, as the
early-exit thresholds are fitted to a FLOPs budget.
"""
from typing import Callable, Iterable, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import all_reduce

from mmdynamic.models.layers.sar_layers import MaskGenerator, cell_areas

Batches = Callable[[], Iterable[torch.Tensor]]  # a new iterator over preprocessed inputs per call


def _reduced(value: torch.Tensor, op: str) -> torch.Tensor:
    """``value`` reduced over the ranks (unchanged without distributed training)."""
    value = value.clone()
    all_reduce(value, op=op)
    return value


def _refined_share(gaps: torch.Tensor, weights: torch.Tensor, thr, total: torch.Tensor
                   ) -> torch.Tensor:
    """Weighted fraction of the cells of all ranks with ``gap > thr`` (``total``: their weight)."""
    return _reduced(weights[gaps > thr].sum(), 'sum') / total


def fit_refine_threshold(gaps: torch.Tensor, weights: torch.Tensor, target: float,
                         iters: int = 64) -> float:
    """The threshold thr such that refining the cells with ``gap > thr`` refines (weighted) the
    smallest fraction that is at least ``target``, placed midway between the neighbouring gaps.

    Summed over all ranks of a distributed run (each rank passes its own cells), so every rank
    returns the same threshold.

    Args:
        gaps (Tensor): (N, ) refine - skip logit of every cell.
        weights (Tensor): (N, ) weight of every cell (its share of its image's map), >= 0.
        target (float): Target fraction in [0, 1].
        iters (int): Bisection steps. Defaults to 64.

    Returns:
        float: thr (refine iff gap > thr).
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f'the target density must be in [0, 1], got {target}')
    if gaps.shape != weights.shape or gaps.dim() != 1:
        raise ValueError(f'gaps and weights must be (N, ) alike, got {tuple(gaps.shape)} and '
                         f'{tuple(weights.shape)}')
    gaps, weights = gaps.double(), weights.double()
    total = _reduced(weights.sum(), 'sum')
    if total <= 0:
        raise ValueError('no calibration cells (did the data loader yield any batch?)')
    inf = gaps.new_tensor(float('inf'))
    low = _reduced(gaps.min() if gaps.numel() else inf, 'min') - 1.0  # refines everything
    high = _reduced(gaps.max() if gaps.numel() else -inf, 'max')  # refines nothing
    if _refined_share(gaps, weights, high, total) >= target:  # target 0: refine nothing
        low = high
    for _ in range(iters if low < high else 0):  # invariant: share at low >= target > at high
        mid = (low + high) / 2
        if _refined_share(gaps, weights, mid, total) >= target:
            low = mid
        else:
            high = mid
    # the refined set is {gap > low}: put the threshold halfway to its neighbours
    below = gaps[gaps <= low]
    above = gaps[gaps > low]
    left = _reduced(below.max() if below.numel() else -inf, 'max')
    right = _reduced(above.min() if above.numel() else inf, 'min')
    if torch.isfinite(left) and torch.isfinite(right):
        return float((left + right) / 2)
    return float(right - 1.0) if torch.isfinite(right) else float(left + 1.0)


def mask_generators(backbone: nn.Module) -> List[MaskGenerator]:
    """The mask generators of a SAR backbone in the order of its ``last_masks``."""
    stages = getattr(backbone, 'stages', None)
    if stages is None or not hasattr(backbone, 'last_mask_logits'):
        raise TypeError(f'expected a SAR backbone (SARResNet or SARResNetCifar), got '
                        f'{type(backbone).__name__}')
    return [generator for stage in stages for generator in stage.masks]


def _stage_slices(backbone: nn.Module) -> List[slice]:
    """The positions of each stage's masks in ``last_masks``."""
    slices, start = [], 0
    for stage in backbone.stages:
        slices.append(slice(start, start + len(stage.masks)))
        start += len(stage.masks)
    return slices


@torch.no_grad()
def calibrate_mask_density(backbone: nn.Module, batches: Union[Sequence[torch.Tensor], Batches],
                           target: float, per_group: bool = False) -> List[dict]:
    """Shift the refine bias of every mask generator so that its test-time (argmax) masks refine
    ``target`` of the maps of ``batches``, area-weighted as the realised MACs.

    The backbone is run in eval mode (its mode is restored), one pass over the data per SAR stage:
    a stage's masks change what the next stages see, so each stage is fitted on the features the
    calibrated stages before it produce. Only the refine biases change, so the order in which each
    mask ranks its cells is kept.

    Args:
        backbone (nn.Module): A SAR backbone.
        batches (Sequence[Tensor] | Callable): Preprocessed inputs (B, C, H, W) on the backbone's
            device, or a function returning a new iterator over them (called once per stage).
        target (float): Target density of every mask.
        per_group (bool): Fit every group of a mask on its own (as ``loss_type='group'``), or one
            shift per mask. Defaults to False.

    Returns:
        list[dict]: Per mask: ``shift`` (the refine-logit shift, one per group with
        ``per_group``), ``before`` and ``after`` (the calibration density).
    """
    generators = mask_generators(backbone)
    make_batches = batches if callable(batches) else (lambda: iter(batches))
    was_training = backbone.training
    backbone.eval()
    report: List[dict] = []
    try:
        for stage_masks in _stage_slices(backbone):
            gaps, weights = _collect_gaps(backbone, make_batches(), stage_masks, len(generators))
            for generator, gap, weight in zip(generators[stage_masks], gaps, weights):
                report.append(_shift_generator(generator, gap, weight, target, per_group))
    finally:
        backbone.train(was_training)
    return report


def _collect_gaps(backbone: nn.Module, batches: Iterable[torch.Tensor], masks: slice,
                  num_masks: int) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The refine - skip logit gaps (G, N) and cell weights (N, ) of the masks at ``masks``, each
    cell weighted by its share of its image's map."""
    gaps: List[List[torch.Tensor]] = [[] for _ in range(masks.stop - masks.start)]
    weights: List[List[torch.Tensor]] = [[] for _ in gaps]
    for inputs in batches:
        backbone(inputs)
        if len(backbone.last_mask_logits) != num_masks:
            raise RuntimeError(f'{len(backbone.last_mask_logits)} masks from {num_masks} '
                               'generators')
        for i, (logits, size, cell) in enumerate(
                zip(backbone.last_mask_logits[masks], backbone.last_mask_sizes[masks],
                    backbone.last_mask_cells[masks])):
            gap = (logits[:, :, 1] - logits[:, :, 0]).float()  # (B, G, K_h, K_w)
            if cell is None:
                area = gap.new_full(gap.shape[-2:], 1.0 / gap[0, 0].numel())
            else:
                area = cell_areas(gap.shape[-2:], size, cell, gap.device) / (size[0] * size[1])
            gaps[i].append(gap.transpose(0, 1).flatten(1))  # (G, B K_h K_w)
            weights[i].append(area.flatten().repeat(gap.shape[0]))
    if not gaps or not gaps[0]:
        raise ValueError('calibrate_mask_density got no batch')
    return [torch.cat(g, dim=1) for g in gaps], [torch.cat(w) for w in weights]


def _shift_generator(generator: MaskGenerator, gap: torch.Tensor, weight: torch.Tensor,
                     target: float, per_group: bool) -> dict:
    """Fit and apply the refine-bias shift of one generator from its gaps (G, N)."""
    groups = [[g] for g in range(gap.shape[0])] if per_group else [list(range(gap.shape[0]))]
    shifts, before, after = [], [], []
    for members in groups:
        values = gap[members].flatten().double()
        w = weight.repeat(len(members)).double()
        thr = fit_refine_threshold(values, w, target)
        total = _reduced(w.sum(), 'sum')
        before.append(float(_refined_share(values, w, 0.0, total)))
        after.append(float(_refined_share(values, w, thr, total)))
        for g in members:
            generator.fc.bias[2 * g + 1] -= thr
        shifts.append(-thr)
    return dict(shift=shifts if per_group else shifts[0], before=sum(before) / len(before),
                after=sum(after) / len(after))
