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


def _windows(rows: torch.Tensor, cells: CellSet, target: CellSet, halo: int,
             geo: Geometry) -> torch.Tensor:
    """The masked map of ``rows`` (the pixels of ``cells``, zeros elsewhere), zero-padded by
    ``halo``, cut into the haloed windows of ``target``.

    Args:
        rows (Tensor): (N * ph * pw, C) pixels of ``cells``, ordered (cell slot, pixel), the G
            groups' channels side by side.
        cells (CellSet): N cells per group.
        target (CellSet): N' cells per group: the windows.
        halo (int): p.
        geo (Geometry): The block's geometry.

    Returns:
        Tensor: (N', ph + 2 p, pw + 2 p, C).
    """
    batch, size, grid = geo.batch, geo.size, geo.grid
    groups = cells.cells.shape[1]
    padded = batch * (size[0] + 2 * halo) * (size[1] + 2 * halo)
    channels = rows.shape[1] // groups
    # one more pixel: where the padding cells are written
    canvas = rows.new_zeros((padded + 1) * groups, channels)
    inside = _table(batch, size, grid, halo, 1, 1, rows.device)  # cell pixels in the padded map
    canvas.index_copy_(0, _rows(inside, cells, trash=padded), rows.reshape(-1, channels))
    table = window_table(batch, size, grid, halo, rows.device)
    windows = canvas.index_select(0, _rows(table, target))
    ph, pw = size[0] // grid[0], size[1] // grid[1]
    return windows.view(target.cells.shape[0], ph + 2 * halo, pw + 2 * halo, rows.shape[1])


def refine_halo(steps: List, x_mat: torch.Tensor, out_mat: torch.Tensor, mask_in: torch.Tensor,
                mask_out: torch.Tensor, geo: Geometry) -> None:
    """All groups of a refine block in one pass on haloed cells; adds the last conv's output to
    ``out_mat`` in place.

    The G groups' cells are paired slot by slot (the n-th selected cell of every group side by
    side in one sample of a grouped conv: the groups do not mix), so every conv is one grouped
    conv whatever G; a group that selects fewer cells is padded with unselected ones, computed and
    dropped.

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
    cells = cell_set(mask_in)
    if cells is None:
        return
    target_last = cells if mask_out is mask_in else cell_set(mask_out)
    groups = cells.cells.shape[1]
    pixel_table, valid = geo.pixel_table, geo.valid
    total = x_mat.shape[0]
    h = x_mat.reshape(total * groups, -1).index_select(0, _rows(pixel_table, cells))
    h = h.view(-1, x_mat.shape[1])  # (N * ph * pw, C_in)
    for k, step in enumerate(steps):
        last = k == len(steps) - 1
        # the last conv's shift is already in out_mat unless the output is masked
        bias = step.bias if not last or geo.mask_output else None
        if step.kernel > 1:
            if valid is not None and k > 0:  # zeros outside the map, like the border padding
                inside = valid.view(-1)[pixel_table[cells.cells]]  # (N, G, ph * pw)
                h = (h.view(inside.shape[0], -1, groups, h.shape[1] // groups) *
                     inside.transpose(1, 2)[..., None]).view(h.shape)
            target = target_last if last else cells
            windows = _windows(h, cells, target, step.pad, geo)
            h = conv_windows(windows, step.weight, bias, step.dilation, groups)
            cells = target
        else:
            h = conv_rows(h, step.weight, bias, groups)
        if not last:
            if step.relu:
                h = h.relu_()
            continue
        h = h.reshape(-1, out_mat.shape[1] // groups)  # (N * ph * pw * G, C_out / G)
        if cells.valid is not None:  # drop the padding cells' output
            n = cells.cells.shape[0]
            h = h.view(n, -1, groups, h.shape[1]).mul_(
                cells.valid.view(n, 1, groups, 1)).view(h.shape)
        out_mat.view(total * groups, -1).index_add_(0, _rows(pixel_table, cells), h)
