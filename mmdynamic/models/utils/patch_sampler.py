# Copyright (c) mmdynamic contributors. All rights reserved.
"""Glances, patches and glimpses: the one sampling module every model uses.

Coordinates: ``locations`` are (row, col) pairs in [0, 1]^2 (the GFNet / AdaFocus order: index 0 is y);
pixel coordinates address pixel centres (pixel ``i`` is at ``i``, so the image spans [-0.5, W - 0.5]).

- :func:`glance`: the whole image resized to P (GFNet x~_1).
- :func:`crop_patches`: a fixed P x P patch at a location, by integer slicing (non-differentiable, GFNet
  parity) or by bilinear sampling (differentiable in the location, AdaFocusV2). The patch lies inside
  the image.
- :func:`crop_boxes`: boxes (centre, height, width) resized to P x P (Uni-AdaFocus). A box may spill
  past the image; the part outside samples zeros, as in the official code.
- :func:`affine_glimpse`: scale-and-translate glimpses (MGNet), zero padding outside the image.

The differentiable crops run the authors' op sequence: a (B, 2, 3) ``theta`` built from the crop,
then ``F.affine_grid`` and ``F.grid_sample`` (bilinear). Building the sample points in another order
gives the same crops in float64 but not in float32: a patch of a 224 px frame is sampled at coordinates
near 100 px, where one rounding more moves a sample by ~1e-5 px and the patch by up to ~4e-5.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

Size = Union[int, Tuple[int, int]]
_ALIGNABLE = ('linear', 'bilinear', 'bicubic', 'trilinear')
_PADDING_MODES = ('zeros', 'border', 'reflection')


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


def _check_padding_mode(padding_mode: str) -> None:
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f'padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}')


def _affine_theta(scale_x: torch.Tensor, shift_x: torch.Tensor, scale_y: torch.Tensor,
                  shift_y: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) ``[[scale_x, 0, shift_x], [0, scale_y, shift_y]]`` from four (B, ) tensors."""
    zeros = torch.zeros_like(shift_x)
    return torch.stack([
        torch.stack([scale_x, zeros, shift_x], dim=-1),
        torch.stack([zeros, scale_y, shift_y], dim=-1),
    ], dim=1)


def affine_sample(images: torch.Tensor, theta: torch.Tensor, size: Size,
                  padding_mode: str = 'zeros', align_corners: bool = False) -> torch.Tensor:
    """``F.grid_sample(images, F.affine_grid(theta, (B, C, *size)))``, bilinear.

    The grid is computed in the dtype of ``theta`` and then cast to that of ``images`` (the official
    codes build a float32 ``theta``).

    Args:
        images (Tensor): (B, C, H, W).
        theta (Tensor): (B, 2, 3) maps normalised output coordinates (x, y, 1) to normalised input
            coordinates (x first: the width).
        size (int | tuple): P or (P_h, P_w).
        padding_mode (str): Of ``grid_sample``. Defaults to 'zeros' (the ``grid_sample`` default).
        align_corners (bool): Of ``affine_grid`` and ``grid_sample``. Defaults to False (their default).

    Returns:
        Tensor: (B, C, P_h, P_w), differentiable w.r.t. images and theta.
    """
    _check_padding_mode(padding_mode)
    if theta.dim() != 3 or theta.shape[1:] != (2, 3) or theta.shape[0] != images.shape[0]:
        raise ValueError(f'theta must be (B, 2, 3) with B = {images.shape[0]} (the images), '
                         f'got {tuple(theta.shape)}')
    out_h, out_w = _pair(size)
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], out_h, out_w],
                         align_corners=align_corners)
    return F.grid_sample(images, grid.to(images.dtype), mode='bilinear', padding_mode=padding_mode,
                         align_corners=align_corners)


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
    # checked on the Python sizes: a check on tensors would wait for the device every call
    if any(int(p) > int(e) for p, e in zip(patch_size, image_size)):
        raise ValueError(f'patch size {patch_size} is larger than the image {image_size}')
    extent = locations.new_tensor(image_size)
    patch = locations.new_tensor(patch_size)
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
            the locations) with the official op sequence: top-left ``(y1, x1)``, ``x2 = x1 + P_w``,
            ``theta = [[P_w / W, 0, -1 + (x1 + x2) / W], [0, P_h / H, -1 + (y1 + y2) / H]]``, then
            ``affine_grid`` + ``grid_sample`` with their defaults (bilinear, zero padding,
            ``align_corners=False``). Output pixel ``(i, j)`` samples pixel ``(y1 + i, x1 + j)``.
        anchor (str): See :func:`patch_corners`.

    Returns:
        Tensor: (B, C, P_h, P_w).
    """
    patch = _pair(size)
    height, width = images.shape[-2:]
    corners = patch_corners(locations, (height, width), patch, anchor)
    if backend == 'bilinear':
        top, left = corners[:, 0], corners[:, 1]
        theta = _affine_theta(torch.full_like(left, patch[1] / width),
                              -1 + (left + (left + patch[1])) / width,
                              torch.full_like(top, patch[0] / height),
                              -1 + (top + (top + patch[0])) / height)
        return affine_sample(images, theta, patch)
    if backend != 'slice':
        raise ValueError(f"backend must be 'slice' or 'bilinear', got {backend!r}")
    offsets = [torch.arange(p, device=images.device, dtype=torch.long) for p in patch]
    top_left = corners.detach().floor().long()
    rows = top_left[:, :1] + offsets[0]  # (B, P_h)
    cols = top_left[:, 1:] + offsets[1]  # (B, P_w)
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None]
    patches = images[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, P_h, P_w, C)
    return patches.permute(0, 3, 1, 2).contiguous()


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, size: Size,
               clamp_inside: bool = False) -> torch.Tensor:
    """Boxes of any size resized to ``size`` by bilinear sampling (Uni-AdaFocus).

    The official op sequence (Uni-AdaFocus ``get_patch_grid_scalexy``): for a box of size (h, w)
    centred at (cy, cx), ``theta = [[w / W, 0, 2 cx / W - 1], [0, h / H, 2 cy / H - 1]]``, then
    ``F.affine_grid`` and ``F.grid_sample`` with their defaults (bilinear, zero padding,
    ``align_corners=False``). Output pixel ``i`` samples ``top + (i + 0.5) h / P - 0.5``. The box is not
    clamped: where it spills past the image (e.g. the X3D spatial-loss box, up to 5.25 cells on a 5 x 5
    map) the samples blend in zeros, and so do the outermost samples of a box narrower than the output
    that touches the frame edge. The official translation is ``-1 + (x1 + x2) / W`` with
    ``x2 = x1 + w``; ``2 cx / W - 1`` is bit-identical to it when ``cx`` is computed as
    ``(x1 + x2) / 2`` (halving is exact), so callers that convert official actions should do so.

    Args:
        images (Tensor): (B, C, H, W).
        boxes (Tensor): (B, 4) (centre_y, centre_x, height, width) in pixels (or feature-map cells):
            the box spans [cy - h / 2, cy + h / 2] in the coordinates where pixel ``i`` covers
            [i - 0.5, i + 0.5].
        size (int | tuple): P or (P_h, P_w).
        clamp_inside (bool): The project's sampler before issue #16 instead of the official one:
            sides clamped to [1, image side], the box moved inside the image, sample coordinates
            clamped and border padding (built in pixel coordinates, so float32 crops differ from the
            official ones by ~4e-5 even inside the image). Defaults to False.

    Returns:
        Tensor: (B, C, P_h, P_w), differentiable w.r.t. the images and the boxes.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f'boxes must be (B, 4) as (cy, cx, h, w), got {tuple(boxes.shape)}')
    if boxes.shape[0] != images.shape[0]:
        raise ValueError(f'got {boxes.shape[0]} boxes for {images.shape[0]} images')
    height, width = images.shape[-2:]
    if clamp_inside:
        return _crop_boxes_clamped(images, boxes, _pair(size))
    centre_y, centre_x, box_h, box_w = boxes.unbind(dim=1)
    theta = _affine_theta(box_w / width, -1 + (2 * centre_x) / width,
                          box_h / height, -1 + (2 * centre_y) / height)
    return affine_sample(images, theta, size)


def _crop_boxes_clamped(images: torch.Tensor, boxes: torch.Tensor,
                        size: Tuple[int, int]) -> torch.Tensor:
    """``crop_boxes(..., clamp_inside=True)``: the box kept inside the image, border padding."""
    out_h, out_w = size
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
                   align_corners: bool = True, padding_mode: str = 'zeros',
                   inside: bool = False) -> torch.Tensor:
    """Scale-and-translate glimpses (MGNet): ``theta = [[s, 0, tx], [0, s, ty]]``, ``affine_grid`` +
    ``grid_sample`` (bilinear), as the official ``GlimpseGenerator``: zero padding and no clamp.

    The official localisation ("tight crop", ``|t| <= 1 - s``) keeps every glimpse inside the image;
    with ``align_corners=True`` its outermost samples then fall on the edge pixel centres, so the padding
    mode only matters for glimpses that leave the image (other parametrisations, ``align_corners=False``
    or hand-made parameters).

    Args:
        images (Tensor): (B, C, H, W).
        scale (Tensor): (B, ) glimpse side as a fraction of the image side, in (0, 1].
        translate (Tensor): (B, 2) (tx, ty) centre in normalised [-1, 1] coordinates.
        size (int | tuple): Glimpse side g (or (g_h, g_w)).
        align_corners (bool): Of ``affine_grid``/``grid_sample``. Defaults to True (MGNet).
        padding_mode (str): Of ``grid_sample``: 'zeros' (the official code), 'border' or
            'reflection'. Defaults to 'zeros'.
        inside (bool): Clamp the centre so that the glimpse stays inside the image (``|t| <= 1 - s``);
            the official code does not. Defaults to False.

    Returns:
        Tensor: (B, C, g_h, g_w). With scale 1 and translation 0 it equals
        ``F.interpolate(images, size, mode='bilinear', align_corners=align_corners)``.
    """
    _check_padding_mode(padding_mode)
    scale = scale.reshape(-1)
    if translate.shape != (scale.shape[0], 2):
        raise ValueError(f'translate must be (B, 2) with B = {scale.shape[0]}, '
                         f'got {tuple(translate.shape)}')
    if inside:
        limit = (1 - scale).clamp(min=0)[:, None]
        translate = torch.maximum(torch.minimum(translate, limit), -limit)
    theta = _affine_theta(scale, translate[:, 0], scale, translate[:, 1])
    return affine_sample(images, theta, size, padding_mode=padding_mode,
                         align_corners=align_corners)
