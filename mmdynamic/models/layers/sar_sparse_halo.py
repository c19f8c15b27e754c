# Copyright (c) mmdynamic contributors. All rights reserved.
"""Sparse refine path on haloed cells, oneDNN convolutions (``sparse_impl='halo'``, the default).

The same computation as the reference (``sparse_impl='gemm'`` in :mod:`.sar_sparse`), organised
for fewer bytes moved and faster kernels on CPU:

- a k x k conv (dilation d) gathers every cell it computes *once with its halo*: a window of
  (ph + 2 d k//2) x (pw + 2 d k//2) pixels from the zero canvas of the masked map (1.3-2.3x the
  cell's pixels for 4-14 px cells and a 3x3, instead of the 9x of the tap-by-tap im2col rows),
  and runs one convolution with padding 0 on that batch of windows;
- the 1x1 convs run on the gathered pixel rows, viewed without a copy as a channels-last
  (1, C, P, 1) map;
- both through oneDNN (:mod:`.sar_sparse_ops`; about 1.5x the BLAS matrix products of the
  reference on the development VM), BN folded into the weights and biases, ReLU in place;
- all G groups in one pass: the groups' cells are paired slot by slot in the samples of one grouped
  conv (:func:`refine_halo`), the gathers and scatters index a (pixels * G, C / G) view of the
  maps, so the number of calls does not grow with G;
- the last conv's output is added to the output map (which already holds ``shortcut(x)`` plus the
  last BN's shift) with one ``index_add_``.

The result equals the reference and the dense masked path up to float rounding (oneDNN sums in
another order than the BLAS library).
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch

from .sar_sparse import Geometry, _table
from .sar_sparse_ops import conv_rows, conv_windows

_WINDOWS: Dict[tuple, torch.Tensor] = {}


def window_table(batch: int, size: Tuple[int, int], grid: Tuple[int, int], halo: int,
                 device: torch.device) -> torch.Tensor:
    """Flat indices of every cell's haloed window in the zero-padded map, cached per geometry.

    Args:
        batch (int): B.
        size (tuple[int]): (H, W), a multiple of ``grid``; cells of ph x pw = (H / K_h) x
            (W / K_w) pixels.
        grid (tuple[int]): (K_h, K_w).
        halo (int): Halo width p; the map is padded by p on every side, (H + 2 p) x (W + 2 p).
        device (torch.device): Device of the table.

    Returns:
        Tensor: (B * K_h * K_w, (ph + 2 p) * (pw + 2 p)) indices into the flattened
        (B, H + 2 p, W + 2 p) map, row-major inside the window; cell b * K_h * K_w + i * K_w + j.
    """
    key = (batch, tuple(size), tuple(grid), halo, str(device))
    table = _WINDOWS.get(key)
    if table is None:
        table = _make_window_table(batch, size, grid, halo, device)
        if len(_WINDOWS) > 256:
            _WINDOWS.clear()
        _WINDOWS[key] = table
    return table


@torch.inference_mode(False)
def _make_window_table(batch: int, size: Tuple[int, int], grid: Tuple[int, int], halo: int,
                       device: torch.device) -> torch.Tensor:
    # a normal (not inference) tensor, so that it may be saved for backward later
    with torch.no_grad():
        h, w = size[0] + 2 * halo, size[1] + 2 * halo
        ph, pw = size[0] // grid[0], size[1] // grid[1]
        ar = torch.arange
        # the window of cell (i, j) starts at (i ph, j pw) in the padded map
        corner = (ar(batch, device=device)[:, None, None] * (h * w) +
                  ar(grid[0], device=device)[:, None] * (ph * w) +
                  ar(grid[1], device=device) * pw).flatten()
        inner = (ar(ph + 2 * halo, device=device)[:, None] * w +
                 ar(pw + 2 * halo, device=device)).flatten()
        return corner[:, None] + inner


class CellSet(NamedTuple):
    """The cells a conv is computed on, all groups together.

    cells: (N, G) cell ids (b * K_h * K_w + i * K_w + j); column g lists the cells selected in
    group g first, then (when groups select different numbers) unselected cells as padding;
    N = the largest number selected in a group. valid: (N, G) bool, False on the padding, or None
    when every group selects N cells.
    """
    cells: torch.Tensor
    valid: Optional[torch.Tensor]


def cell_set(mask: torch.Tensor) -> Optional[CellSet]:
    """The selected cells of ``mask`` (B, G, K_h, K_w); None when no group selects any."""
    flat = mask.transpose(0, 1).reshape(mask.shape[1], -1)  # (G, B * K_h * K_w)
    counts = (flat > 0).sum(dim=1)
    n = int(counts.max())
    if n == 0:
        return None
    # stable: the selected cells in increasing order, then the unselected ones
    cells = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :n].t()
    valid = None
    if bool((counts < n).any()):
        valid = torch.arange(n, device=mask.device)[:, None] < counts
    return CellSet(cells.contiguous(), valid)


def _rows(table: torch.Tensor, cells: CellSet, trash: Optional[int] = None) -> torch.Tensor:
    """Row indices into a grouped pixel matrix (R * G, C / G) (row r * G + g: pixel r, group g).

    Args:
        table (Tensor): (B * K_h * K_w, Q) pixel indices (< R) of each cell.
        cells (CellSet): The cells, (N, G).
        trash (int, optional): A pixel index for the padding cells (else their own pixels).

    Returns:
        Tensor: (N * Q * G, ) ordered (cell slot, pixel, group): the gathered rows form an
        (N, Q, C) map with the groups' channels side by side, as a grouped conv takes them.
    """
    pixels = table[cells.cells]  # (N, G, Q)
    if trash is not None and cells.valid is not None:
        pixels = pixels.masked_fill(~cells.valid[:, :, None], trash)
    groups = pixels.shape[1]
    rows = pixels.transpose(1, 2) * groups + torch.arange(groups, device=pixels.device)
    return rows.reshape(-1)


class ConvPlan(NamedTuple):
    """The indices of one k x k conv of :func:`refine_halo`: its input (the pixels of N cells,
    zeros elsewhere) is written into a zero canvas of the map padded by p = d (k // 2), then cut
    into the haloed windows of the N' cells it computes.

    canvas_rows: (N * ph * pw * G, ) rows of the zero canvas that receive the conv's input rows
    (padding cells: a spare row). window_rows: (N' * (ph + 2 p) * (pw + 2 p) * G, ) canvas rows of
    the haloed windows of the N' cells the conv computes. inside: (N, ph * pw, G, 1), 1 where the
    input pixel lies inside the unpadded map, or None when the map needs no zeroing there.
    window: (ph + 2 p, pw + 2 p).
    """
    canvas_rows: torch.Tensor
    window_rows: torch.Tensor
    inside: Optional[torch.Tensor]
    window: Tuple[int, int]


class HaloPlan(NamedTuple):
    """Every index :func:`refine_halo` needs, built from the masks (:func:`halo_plan`).

    gather: (N * ph * pw * G, ) rows of the grouped input matrix. convs: per step, a
    :class:`ConvPlan` for a k x k conv, None for a 1x1. scatter: (N' * ph * pw * G, ) rows of the
    grouped output matrix that receive the last conv's output. keep: (N', 1, G, 1), 0 on the
    padding cells of the last conv, or None. canvas: rows of the zero canvas per group (the padded
    map plus the spare row), per step (0 for a 1x1).
    """
    gather: torch.Tensor
    convs: List[Optional[ConvPlan]]
    scatter: torch.Tensor
    keep: Optional[torch.Tensor]
    canvas: List[int]


@torch.compiler.disable
def halo_plan(steps: List, mask_in: torch.Tensor, mask_out: torch.Tensor,
              geo: Geometry) -> Optional[HaloPlan]:
    """The data-dependent part of :func:`refine_halo`: which cells, rows and windows it touches.

    Kept out of ``torch.compile`` (the cell count comes from the mask values), so that a compiled
    :func:`halo_compute` sees only index tensors whose length varies (a dynamic dimension).

    Args:
        steps (list[_Step]): The block's folded convs.
        mask_in (Tensor): (B, G, K_h, K_w) the selected cells.
        mask_out (Tensor): (B, G, K_h, K_w) the cells the last conv is computed on.
        geo (Geometry): The block's geometry.

    Returns:
        HaloPlan: The indices; None when no group selects a cell.
    """
    cells = cell_set(mask_in)
    if cells is None:
        return None
    target_last = cells if mask_out is mask_in else cell_set(mask_out)
    batch, size, grid = geo.batch, geo.size, geo.grid
    ph, pw = size[0] // grid[0], size[1] // grid[1]
    device = mask_in.device
    gather = _rows(geo.pixel_table, cells)
    convs, canvas = [], []
    for k, step in enumerate(steps):
        if step.kernel == 1:
            convs.append(None)
            canvas.append(0)
            continue
        inside = None
        if geo.valid is not None and k > 0:  # zeros outside the map, like the border padding
            inside = geo.valid.view(-1)[geo.pixel_table[cells.cells]].transpose(1, 2)[..., None]
        target = target_last if k == len(steps) - 1 else cells
        halo = step.pad
        padded = batch * (size[0] + 2 * halo) * (size[1] + 2 * halo)
        inner = _table(batch, size, grid, halo, 1, 1, device)  # cell pixels in the padded map
        convs.append(ConvPlan(_rows(inner, cells, trash=padded),
                              _rows(window_table(batch, size, grid, halo, device), target),
                              inside, (ph + 2 * halo, pw + 2 * halo)))
        canvas.append(padded + 1)  # one more pixel: where the padding cells are written
        cells = target
    keep = None
    if cells.valid is not None:
        keep = cells.valid.view(cells.cells.shape[0], 1, -1, 1)
    return HaloPlan(gather, convs, _rows(geo.pixel_table, cells), keep, canvas)


def halo_compute(steps: List, x_mat: torch.Tensor, out_mat: torch.Tensor, plan: HaloPlan,
                 mask_output: bool) -> None:
    """The convolutions of :func:`refine_halo` on the cells of ``plan``; adds the last conv's
    output to ``out_mat`` in place. Only tensor ops whose sizes follow the index tensors: it
    compiles with the cell count as a dynamic dimension.

    Args:
        steps (list[_Step]): The block's folded convs.
        x_mat (Tensor): (B * H * W, C_in) block input rows.
        out_mat (Tensor): (B * H * W, C_out) contiguous block output being built.
        plan (HaloPlan): The indices (:func:`halo_plan`).
        mask_output (bool): The block's ``mask_output`` (the last conv's shift is in ``out_mat``
            already unless it is set).
    """
    groups = len(steps[0].bias_g)
    total = x_mat.shape[0]
    h = x_mat.reshape(total * groups, -1).index_select(0, plan.gather)
    h = h.view(-1, x_mat.shape[1])  # (N * ph * pw, C_in)
    for k, (step, conv) in enumerate(zip(steps, plan.convs)):
        last = k == len(steps) - 1
        bias = step.bias if not last or mask_output else None
        if conv is None:
            h = conv_rows(h, step.weight, bias, groups)
        else:
            channels = h.shape[1] // groups
            if conv.inside is not None:
                h = (h.view(conv.inside.shape[0], -1, groups, channels) * conv.inside).view(h.shape)
            canvas = h.new_zeros(plan.canvas[k] * groups, channels)
            canvas.index_copy_(0, conv.canvas_rows, h.reshape(-1, channels))
            windows = canvas.index_select(0, conv.window_rows).view(-1, *conv.window, h.shape[1])
            h = conv_windows(windows, step.weight, bias, step.dilation, groups)
        if not last:
            if step.relu:
                h = h.relu_()
            continue
        h = h.reshape(-1, out_mat.shape[1] // groups)  # (N' * ph * pw * G, C_out / G)
        if plan.keep is not None:  # drop the padding cells' output
            n = plan.keep.shape[0]
            h = (h.view(n, -1, groups, h.shape[1]) * plan.keep).view(h.shape)
        out_mat.view(total * groups, -1).index_add_(0, plan.scatter, h)


def refine_halo(steps: List, x_mat: torch.Tensor, out_mat: torch.Tensor, mask_in: torch.Tensor,
                mask_out: torch.Tensor, geo: Geometry) -> None:
    """All groups of a refine block in one pass on haloed cells; adds the last conv's output to
    ``out_mat`` in place.

    The G groups' cells are paired slot by slot (the n-th selected cell of every group side by
    side in one sample of a grouped conv: the groups do not mix), so every conv is one grouped
    conv whatever G; a group that selects fewer cells is padded with unselected ones, computed and
    dropped. The indices are built by :func:`halo_plan` (data-dependent, never compiled), the
    convolutions run in :func:`halo_compute`.

    Args:
        steps (list[_Step]): The block's folded convs (:func:`.sar_sparse._folded_steps`).
        x_mat (Tensor): (B * H * W, C_in) block input, one row per pixel of the map padded to
            whole cells.
        out_mat (Tensor): (B * H * W, C_out) contiguous block output being built, holding
            ``shortcut(x)`` plus, unless ``mask_output``, the last BN's shift.
        mask_in (Tensor): (B, G, K_h, K_w) the selected cells.
        mask_out (Tensor): (B, G, K_h, K_w) the cells the last conv is computed on (``mask_in``,
            or more when a last k x k conv reaches into unselected cells).
        geo (Geometry): The block's geometry.
    """
    plan = halo_plan(steps, mask_in, mask_out, geo)
    if plan is not None:
        halo_compute(steps, x_mat, out_mat, plan, geo.mask_output)
