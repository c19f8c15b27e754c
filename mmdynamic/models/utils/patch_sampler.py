# Copyright (c) mmdynamic contributors. All rights reserved.
"""Glances, patches and glimpses: the one sampling module every model uses.

Coordinates: ``locations`` are (row, col) pairs in [0, 1]^2 (the GFNet / AdaFocus order: index 0 is y);
pixel coordinates address pixel centres (pixel ``i`` is at ``i``). Every crop lies inside the image.

- :func:`glance`: the whole image resized to P (GFNet x~_1).
- :func:`crop_patches`: a fixed P x P patch at a location, by integer slicing (non-differentiable, GFNet
  parity) or by bilinear sampling (differentiable in the location, AdaFocusV2).
- :func:`crop_boxes`: boxes (centre, height, width) resized to P x P (Uni-AdaFocus).
- :func:`affine_glimpse`: scale-and-translate glimpses (MGNet).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

Size = Union[int, Tuple[int, int]]
_ALIGNABLE = ('linear', 'bilinear', 'bicubic', 'trilinear')


def _pair(size: Size) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def glance(images: torch.Tensor, size: Size, mode: str = 'bicubic',
           align_corners: Optional[bool] = True) -> torch.Tensor:
    """The whole image resized to ``size`` (no antialiasing, as in the official GFNet code).

    Args:
        images (Tensor): (B, C, H, W).
        size (int | tuple): P or (P_h, P_w).
        mode (str): Interpolation mode of :func:`F.interpolate`. Defaults to 'bicubic'.
        align_corners (bool, optional): Ignored for modes that do not take it. Defaults to True.

    Returns:
        Tensor: (B, C, P_h, P_w).
    """
    return F.interpolate(images, size=_pair(size), mode=mode,
                         align_corners=align_corners if mode in _ALIGNABLE else None)


def sample_bilinear(images: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bilinear samples on the separable grid ``ys`` x ``xs`` (pixel-centre coordinates).

    Args:
        images (Tensor): (B, C, H, W).
        ys (Tensor): (B, P_h) row coordinates in [0, H - 1].
        xs (Tensor): (B, P_w) column coordinates in [0, W - 1].

    Returns:
        Tensor: (B, C, P_h, P_w), differentiable w.r.t. images, ys and xs.
    """
    height, width = images.shape[-2:]
    gy = ys * (2.0 / max(height - 1, 1)) - 1
    gx = xs * (2.0 / max(width - 1, 1)) - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(images, grid.to(images.dtype), mode='bilinear', padding_mode='border',
                         align_corners=True)


def patch_corners(locations: torch.Tensor, image_size: Tuple[int, int], patch_size: Tuple[int, int],
                  anchor: str = 'topleft') -> torch.Tensor:
    """Top-left pixel (float) of each patch.

    Args:
        locations (Tensor): (B, 2) (row, col) in [0, 1].
        anchor (str): 'topleft': ``l * (H - P)`` (the official codes); 'centre': the patch is centred
            at ``l * H``, clamped so that it stays inside the image.

    Returns:
        Tensor: (B, 2) (top, left) in [0, H - P] x [0, W - P].
    """
    if locations.dim() != 2 or locations.shape[1] != 2:
        raise ValueError(f'locations must be (B, 2), got {tuple(locations.shape)}')
    extent = locations.new_tensor(image_size)
    patch = locations.new_tensor(patch_size)
    if (patch > extent).any():
        raise ValueError(f'patch size {patch_size} is larger than the image {image_size}')
    if anchor == 'topleft':
        corners = locations.clamp(0, 1) * (extent - patch)
    elif anchor == 'centre':
        corners = locations * extent - patch / 2
    else:
        raise ValueError(f"anchor must be 'topleft' or 'centre', got {anchor!r}")
    return torch.minimum(corners.clamp(min=0), extent - patch)


def crop_patches(images: torch.Tensor, locations: torch.Tensor, size: Size,
                 backend: str = 'slice', anchor: str = 'topleft') -> torch.Tensor:
    """Fixed-size patches at native resolution.

    Args:
        images (Tensor): (B, C, H, W).
        locations (Tensor): (B, 2) (row, col) in [0, 1].
        size (int | tuple): P or (P_h, P_w).
        backend (str): 'slice' floors the corner to whole pixels and slices (GFNet; no gradient to
            the locations); 'bilinear' samples at the fractional corner (AdaFocusV2; differentiable in
            the locations).
        anchor (str): See :func:`patch_corners`.

    Returns:
        Tensor: (B, C, P_h, P_w).
    """
    patch = _pair(size)
    corners = patch_corners(locations, tuple(images.shape[-2:]), patch, anchor)
    offsets = [torch.arange(p, device=images.device, dtype=corners.dtype) for p in patch]
    if backend == 'bilinear':
        return sample_bilinear(images, corners[:, :1] + offsets[0], corners[:, 1:] + offsets[1])
    if backend != 'slice':
        raise ValueError(f"backend must be 'slice' or 'bilinear', got {backend!r}")
    top_left = corners.detach().floor().long()
    rows = top_left[:, :1] + offsets[0].long()  # (B, P_h)
    cols = top_left[:, 1:] + offsets[1].long()  # (B, P_w)
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None]
    patches = images[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, P_h, P_w, C)
    return patches.permute(0, 3, 1, 2).contiguous()


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, size: Size) -> torch.Tensor:
    """Boxes of any size resized to ``size`` by bilinear sampling (Uni-AdaFocus).

    Output pixel ``i`` samples ``top + (i + 0.5) * h / P - 0.5``, the convention of ``affine_grid``
    with ``align_corners=False`` used by the official code.

    Args:
        images (Tensor): (B, C, H, W).
        boxes (Tensor): (B, 4) (centre_y, centre_x, height, width) in pixels. Sides are clamped to
            [1, image side] and centres so that the box lies inside the image.
        size (int | tuple): P or (P_h, P_w).

    Returns:
        Tensor: (B, C, P_h, P_w), differentiable w.r.t. the boxes.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f'boxes must be (B, 4) as (cy, cx, h, w), got {tuple(boxes.shape)}')
    out_h, out_w = _pair(size)
    height, width = images.shape[-2:]
    h = boxes[:, 2:3].clamp(1, height)
    w = boxes[:, 3:4].clamp(1, width)
    top = torch.minimum((boxes[:, 0:1] - h / 2).clamp(min=0), height - h)
    left = torch.minimum((boxes[:, 1:2] - w / 2).clamp(min=0), width - w)
    steps_h = torch.arange(out_h, device=images.device, dtype=boxes.dtype) + 0.5
    steps_w = torch.arange(out_w, device=images.device, dtype=boxes.dtype) + 0.5
    ys = (top + steps_h * h / out_h - 0.5).clamp(0, height - 1)
    xs = (left + steps_w * w / out_w - 0.5).clamp(0, width - 1)
    return sample_bilinear(images, ys, xs)


def affine_glimpse(images: torch.Tensor, scale: torch.Tensor, translate: torch.Tensor, size: Size,
                   align_corners: bool = True, inside: bool = True) -> torch.Tensor:
    """Scale-and-translate glimpses (MGNet): ``affine_grid`` + ``grid_sample`` (bilinear).

    Args:
        images (Tensor): (B, C, H, W).
        scale (Tensor): (B, ) glimpse side as a fraction of the image side, in (0, 1].
        translate (Tensor): (B, 2) (tx, ty) centre in normalised [-1, 1] coordinates.
        size (int | tuple): Glimpse side g (or (g_h, g_w)).
        align_corners (bool): Of ``affine_grid``/``grid_sample``. Defaults to True (MGNet).
        inside (bool): Clamp the centre so that the glimpse stays inside the image.

    Returns:
        Tensor: (B, C, g_h, g_w). With scale 1 and translation 0 it equals
        ``F.interpolate(images, size, mode='bilinear', align_corners=align_corners)``.
    """
    out_h, out_w = _pair(size)
    scale = scale.reshape(-1)
    if inside:
        limit = (1 - scale).clamp(min=0)[:, None]
        translate = torch.maximum(torch.minimum(translate, limit), -limit)
    zeros = torch.zeros_like(scale)
    theta = torch.stack([
        torch.stack([scale, zeros, translate[:, 0]], dim=-1),
        torch.stack([zeros, scale, translate[:, 1]], dim=-1),
    ], dim=1)
    grid = F.affine_grid(theta.to(images.dtype), [images.shape[0], images.shape[1], out_h, out_w],
                         align_corners=align_corners)
    return F.grid_sample(images, grid, mode='bilinear', padding_mode='border',
                         align_corners=align_corners)
