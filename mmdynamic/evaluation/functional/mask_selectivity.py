# Copyright (c) mmdynamic contributors. All rights reserved.
"""Where do spatial masks refine? Object cells against background cells (SAR, ``sar.md`` §2.4).

A mask cell (i, j) of a K x K grid over an H x W image covers the pixel rectangle
``[j W / K, (j + 1) W / K) x [i H / K, (i + 1) H / K)``. It is an *object cell* of an image when its
centre lies inside one of the image's object boxes (detection, classification with boxes) or on a
foreground pixel (segmentation), a *background cell* otherwise. The selectivity of
a set of masks is the mean mask value (the fraction refined) over object cells and over background
cells, pooled over the images, groups and masks given.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch


def object_cells(boxes: Sequence[torch.Tensor], grid: int, image_size: Sequence[int]
                 ) -> torch.Tensor:
    """Which cells of a K x K grid have their centre inside an object box.

    Args:
        boxes (Sequence[Tensor]): Per image, (N_i, 4) boxes (x1, y1, x2, y2) in pixels of the image
            the masks were computed on (N_i may be 0).
        grid (int): K.
        image_size (Sequence[int]): (H, W) of that image.

    Returns:
        Tensor: (B, K, K) bool.
    """
    height, width = image_size
    centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    cy, cx = centres * height, centres * width
    out = torch.zeros(len(boxes), grid, grid, dtype=torch.bool)
    for b, image_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in torch.as_tensor(image_boxes, dtype=torch.float32).view(-1, 4).tolist():
            rows = (cy >= y1) & (cy < y2)
            cols = (cx >= x1) & (cx < x2)
            out[b] |= rows[:, None] & cols[None, :]
    return out


def foreground_cells(foreground: torch.Tensor, grid: int) -> torch.Tensor:
    """Which cells of a K x K grid have their centre pixel on the foreground.

    Args:
        foreground (Tensor): (B, H, W) bool, True on object pixels.
        grid (int): K.

    Returns:
        Tensor: (B, K, K) bool.
    """
    height, width = foreground.shape[-2:]
    centres = torch.arange(grid, device=foreground.device) + 0.5
    rows = (centres * height / grid).long().clamp_max(height - 1)
    cols = (centres * width / grid).long().clamp_max(width - 1)
    return foreground[:, rows][:, :, cols].bool().cpu()


@dataclass
class MaskSelectivity:
    """Mean mask value on object and background cells.

    Args:
        object_rate (float): Fraction of object cells refined.
        background_rate (float): Fraction of background cells refined.
        num_object_cells (int): Object cells counted (over images, groups and masks).
        num_background_cells (int): Background cells counted.
    """
    object_rate: float
    background_rate: float
    num_object_cells: int
    num_background_cells: int

    @property
    def ratio(self) -> float:
        """object_rate / background_rate (inf when no background cell is refined)."""
        return (self.object_rate / self.background_rate if self.background_rate > 0 else
                float('inf'))


def mask_selectivity(masks: Sequence[torch.Tensor], boxes: Optional[Sequence[torch.Tensor]] = None,
                     image_size: Optional[Sequence[int]] = None,
                     foreground: Optional[torch.Tensor] = None) -> MaskSelectivity:
    """Selectivity of spatial masks for the objects of their images.

    Args:
        masks (Sequence[Tensor]): Masks of one batch, each (B, G, K, K) in [0, 1] (K may differ
            between masks), or any other per-cell values of that shape (e.g. the task loss
            gradient with respect to the masks), whose means are then returned as the "rates".
        boxes (Sequence[Tensor], optional): Per image, (N_i, 4) object boxes (x1, y1, x2, y2) in
            pixels of the network input, whose (H, W) is ``image_size``.
        image_size (Sequence[int], optional): (H, W), with ``boxes``.
        foreground (Tensor, optional): (B, H, W) bool object pixels, instead of boxes.

    Returns:
        MaskSelectivity: Pooled over every image, group and mask.
    """
    if not masks:
        raise ValueError('no masks given')
    if (boxes is None) == (foreground is None):
        raise ValueError('give either boxes (with image_size) or a foreground map')
    if boxes is not None and image_size is None:
        raise ValueError('boxes need the image_size they refer to')
    batch = len(boxes) if boxes is not None else foreground.shape[0]
    obj_sum = bg_sum = 0.0
    obj_n = bg_n = 0
    for mask in masks:
        if mask.dim() != 4 or mask.shape[-1] != mask.shape[-2] or mask.shape[0] != batch:
            raise ValueError(f'masks must be (B={batch}, G, K, K), got {tuple(mask.shape)}')
        inside = (object_cells(boxes, mask.shape[-1], image_size) if boxes is not None else
                  foreground_cells(foreground, mask.shape[-1])).to(mask.device)
        inside = inside[:, None].expand_as(mask)
        values = mask.detach().float()
        obj_sum += values[inside].sum().item()
        bg_sum += values[~inside].sum().item()
        obj_n += int(inside.sum())
        bg_n += int((~inside).sum())
    return MaskSelectivity(obj_sum / max(obj_n, 1), bg_sum / max(bg_n, 1), obj_n, bg_n)


def merge_selectivity(parts: Sequence[MaskSelectivity]) -> MaskSelectivity:
    """Pool the selectivities of several batches (weighted by their cell counts)."""
    obj_n = sum(p.num_object_cells for p in parts)
    bg_n = sum(p.num_background_cells for p in parts)
    obj = sum(p.object_rate * p.num_object_cells for p in parts) / max(obj_n, 1)
    bg = sum(p.background_rate * p.num_background_cells for p in parts) / max(bg_n, 1)
    return MaskSelectivity(obj, bg, obj_n, bg_n)
