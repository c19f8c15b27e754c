# Copyright (c) mmdynamic contributors. All rights reserved.
"""Sparse (patch-level) inference of the SAR refine blocks (``shared/specs/sar.md`` §2.6, §2.7).

"Sampling-convolution-rearranging", exact mode. For every group g of a refine block, the selected
(H/K) x (W/K) patches of that group's channel slice are gathered over (batch, i, j) into one
mini-batch, convolved with the group's slice of each conv (BN folded in as an affine from its
running statistics) and scattered back. The result equals the dense masked forward of
:class:`~mmdynamic.models.layers.sar_blocks.RefineBottleneck` and
:class:`~mmdynamic.models.layers.sar_blocks.RefineBasicBlock` in eval mode (up to float rounding).

Two implementations, chosen per block by its ``sparse_impl`` (:func:`set_sparse_impl` sets it on
a whole model); both are tested against the dense path:

- ``'halo'`` (default, :mod:`.sar_sparse_halo`): all groups in one pass (the groups' cells paired
  slot by slot in one grouped conv), each k x k conv on the cells gathered once with their halo,
  every conv through oneDNN (:mod:`.sar_sparse_ops`) when autograd is off. On the development VM
  (AMD EPYC, 1 thread) a refine block of SAR-R50 at density 0.5 runs 0-25 % faster than with
  ``'gemm'`` (configs/sar/README.md, "Speed").
- ``'gemm'``, the reference described below: per group, the 1x1 convs as matrix products and the
  k x k convs as matrix products on im2col rows gathered tap by tap.

Computation of ``'gemm'`` (standard PyTorch ops, vectorised over patches; Python loops only over
the groups and the 2-3 convs):

- The mini-batch of patches is held as a pixel matrix with one row per pixel of a selected patch
  (N patches x ph x pw rows, C/G columns), gathered with ``index_select``. A 1x1 conv on the
  patches is one matrix product with the group's folded weight slice.
- A 3x3 conv (dilation d, padding d) must see the *masked* map: the previous layer's output on the
  selected patches, zeros elsewhere and zero padding at the image border. The patch rows are
  scattered into a zero canvas of the map padded by d; for every output pixel its 9 taps are
  gathered back from the canvas (each patch with its d-pixel halo, which reaches into the
  neighbouring patches, selected or not), and the conv is one matrix product of these im2col rows
  with the weight, i.e. a conv with padding 0 on the haloed patches. The first conv of the
  BasicBlock sees ``x * mask`` this way.
- Output, following the decision logged in sar.md §2.6 (option (a), the default, faithful to the
  authors' code): with ``mask_output=False`` the last BN output is **not** re-masked. The output
  map starts as ``shortcut(x) + BN_last(0)`` everywhere (BN_last(0) is the per-channel constant
  ``beta - gamma * mean / sqrt(var + eps)``) and the last conv's output (without that constant) is
  added on the computed patches. For the Bottleneck (last conv 1x1) the unselected positions
  therefore hold exactly ``shortcut(x) + BN_last(0)``. For the BasicBlock the last conv is a 3x3
  whose dense output also differs from BN_last(0) within d pixels of a selected patch; to stay
  exact, that conv is also computed on the unselected patches next to selected ones (the mask
  dilated by ceil(d / patch size) cells). With ``mask_output=True`` unselected positions receive
  ``shortcut(x) + 0``. Then the optional final ReLU. The shortcut (1x1 conv + BN when the width
  changes) is dense and unmasked.

Memory layouts: channels-last inputs (any batch) are gathered from and scattered to without
copies, and so are contiguous NCHW inputs of batch 1 in ``'gemm'``; other contiguous NCHW inputs
go through a channels-last copy (one copy in, one out).

BN is folded into the conv weights on every call (cheap element-wise ops) while autograd is on.
With autograd off (``torch.no_grad`` / ``torch.inference_mode``) the folded weights are cached on
the block and rebuilt whenever a conv/BN module or tensor is replaced or changed in place (see
:func:`_folded_steps`). Blocks whose norms cannot be folded (e.g. GroupNorm) run the dense path.

MACs are accounted exactly as in the dense path: ``density x dense grouped MACs`` of the masked
convs (the 3x3 halo overhead is not counted, sar.md §5; with cells in pixels the density weights
every cell by its area cropped to the map, so the internal padding is not counted either), plus
the shortcut's own MACs.
"""
from functools import partial
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .sar_layers import MacsMeter, mask_grid_of, refined_fraction


class _Step(NamedTuple):
    """One masked conv with its BN folded in.

    weight_t: per group, (k * k * C_in / G, C_out / G), rows ordered (tap, input channel); weight:
    (C_out, C_in / G, k, k) channels-last (the grouped conv's weight); bias_g: per group,
    (C_out / G, ); bias: (C_out, ).
    """
    weight_t: List[torch.Tensor]
    weight: torch.Tensor
    bias_g: List[torch.Tensor]
    bias: torch.Tensor
    kernel: int
    dilation: int
    pad: int
    relu: bool


def _steps_of(block: nn.Module) -> List[Tuple[nn.Conv2d, nn.Module, bool]]:
    """(conv, norm, relu after it) of the block's masked convs, in order."""
    convs = list(block.masked_convs())
    names = [block.norm1_name, block.norm2_name, getattr(block, 'norm3_name', None)]
    norms = [getattr(block, name) for name in names[:len(convs)]]
    return [(conv, norm, k < len(convs) - 1) for k, (conv, norm) in enumerate(zip(convs, norms))]


def _foldable(block: nn.Module) -> bool:
    """True when every masked conv is a stride-1 'same' square conv followed by a BN with running
    statistics (or an ``nn.Identity`` left by a conv-BN fusion)."""
    for conv, norm, _ in _steps_of(block):
        if isinstance(norm, _BatchNorm):
            if norm.running_mean is None:
                return False
        elif not isinstance(norm, nn.Identity):
            return False
        k = conv.kernel_size[0]
        if (conv.kernel_size != (k, k) or k % 2 == 0 or conv.stride != (1, 1)
                or conv.dilation[0] != conv.dilation[1]
                or conv.padding != (conv.dilation[0] * (k // 2), ) * 2
                or conv.padding_mode != 'zeros'):
            return False
    return True


def _fold(conv: nn.Conv2d, norm: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN (or an ``nn.Identity``) into the preceding conv.

    Returns:
        tuple: weight (C_out, C_in / G, k, k) and bias (C_out, ) with
        ``F.conv2d(x, weight, bias) == norm(conv(x))``.
    """
    if isinstance(norm, nn.Identity):
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
        return conv.weight, bias
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    return conv.weight * scale.view(-1, 1, 1, 1), shift


def _make_steps(block: nn.Module, groups: int) -> List[_Step]:
    steps = []
    for conv, norm, relu in _steps_of(block):
        weight, bias = _fold(conv, norm)
        k = conv.kernel_size[0]
        # (C_out, C_in / G, k, k) -> (k * k * C_in / G, C_out), rows ordered (tap, channel) like
        # the im2col columns
        weight_t = weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0])
        steps.append(_Step([w.contiguous() for w in weight_t.chunk(groups, dim=1)],
                           # channels-last: what oneDNN takes without a copy
                           weight.contiguous(memory_format=torch.channels_last),
                           list(bias.chunk(groups)), bias, k, conv.dilation[0], conv.padding[0],
                           relu))
    return steps


def _dependencies(pairs: List[Tuple[nn.Conv2d, nn.Module, bool]]) -> List[Optional[torch.Tensor]]:
    """Every tensor the folded weights depend on."""
    tensors = []
    for conv, norm, _ in pairs:
        tensors += [conv.weight, conv.bias]
        if isinstance(norm, _BatchNorm):
            tensors += [norm.weight, norm.bias, norm.running_mean, norm.running_var]
    return tensors


@torch.compiler.disable
def _folded_steps(block: nn.Module, groups: int) -> Optional[List[_Step]]:
    """Folded steps of the block's masked convs (None if they cannot be folded, see
    :func:`_foldable`), cached on the block while autograd is off.

    The cache is keyed on the conv and norm modules, the BN eps and each tensor the steps were
    computed from: the tensor object, its version counter (bumped by every in-place change:
    optimizer steps, ``load_state_dict`` copies, BN statistics updates in train mode) and its data
    pointer (``.to()``/``.half()`` swap the data of a parameter without bumping its version). The
    cache pins the storages it was built from, so a data pointer cannot be reused by another storage
    while the entry lives. Inference tensors have no version counter and are never cached. Not
    traced by ``torch.compile`` (its key reads data pointers): the steps enter a compiled caller
    as inputs.
    """
    pairs = _steps_of(block)
    if torch.is_grad_enabled():
        return _make_steps(block, groups) if _foldable(block) else None
    tensors = _dependencies(pairs)
    try:
        key = [None if t is None else (t._version, t.data_ptr()) for t in tensors]
    except RuntimeError:  # inference tensors
        return _make_steps(block, groups) if _foldable(block) else None
    key += [getattr(norm, 'eps', None) for _, norm, _ in pairs]
    modules = [m for conv, norm, _ in pairs for m in (conv, norm)]
    cache = block.__dict__.get('_sparse_fold_cache')
    if (cache is None or cache['key'] != key or len(cache['objects']) != len(modules) + len(tensors)
            or any(a is not b for a, b in zip(cache['objects'], modules + tensors))):
        steps = _make_steps(block, groups) if _foldable(block) else None
        # A plain attribute (not a buffer or parameter): never saved in checkpoints.
        cache = dict(key=key, objects=modules + tensors, steps=steps,
                     storages=[t.untyped_storage() for t in tensors if t is not None])
        block.__dict__['_sparse_fold_cache'] = cache
    return cache['steps']


SPARSE_IMPLS = ('halo', 'gemm', 'halo_cpp')


class Geometry(NamedTuple):
    """What the per-group computations of one block call share.

    batch: B; size: (H, W) of the map padded to whole cells; grid: (K_h, K_w); valid:
    (B * H * W, 1) with 1 inside the unpadded map, None without padding; pixel_table:
    (B * K_h * K_w, ph * pw) flat pixel indices of every cell (:func:`_table`); mask_output: the
    block's ``mask_output``.
    """
    batch: int
    size: Tuple[int, int]
    grid: Tuple[int, int]
    valid: Optional[torch.Tensor]
    pixel_table: torch.Tensor
    mask_output: bool


def set_sparse_impl(model: nn.Module, impl: str) -> None:
    """Choose the implementation of the sparse path of every refine block of ``model``.

    Args:
        model (nn.Module): A SAR backbone (or any module holding refine blocks).
        impl (str): ``'halo'`` (default: cells gathered with their halo, oneDNN convolutions, see
            :mod:`.sar_sparse_halo`) or ``'gemm'`` (the reference: matrix products, 3x3 im2col
            rows gathered tap by tap).
    """
    if impl not in SPARSE_IMPLS:
        raise ValueError(f'sparse_impl must be one of {SPARSE_IMPLS}, got {impl!r}')
    if impl == 'halo_cpp':  # build (first use) or load the operator now: fail here, not later
        from mmdynamic.ops.sar_cells import sar_cells_op
        sar_cells_op()
    for m in model.modules():
        if hasattr(m, 'sparse_impl') and hasattr(m, 'masked_convs'):
            m.sparse_impl = impl


_TABLES: Dict[tuple, torch.Tensor] = {}


def _table(batch: int, size: Tuple[int, int], grid: Tuple[int, int], pad: int, kernel: int,
           dilation: int, device: torch.device) -> torch.Tensor:
    """Flat pixel indices of every patch, cached per geometry.

    ``size`` (H, W) is a multiple of ``grid`` (K_h, K_w); patches are ph x pw = (H / K_h) x
    (W / K_w). With ``kernel == 1``: (B * K_h * K_w, ph * pw) indices of each patch's pixels in the
    flattened (B, H + 2 pad, W + 2 pad) map, row-major inside the patch. Otherwise:
    (B * K_h * K_w, ph * pw * k * k) indices, in that padded map, of the k x k taps (dilation
    ``dilation``) of each pixel of the patch in the unpadded map, ordered (pixel, tap). Patch
    ``b * K_h * K_w + i * K_w + j``.
    """
    key = (batch, tuple(size), tuple(grid), pad, kernel, dilation, str(device))
    table = _TABLES.get(key)
    if table is None:
        table = _make_table(batch, size, grid, pad, kernel, dilation, device)
        if len(_TABLES) > 256:
            _TABLES.clear()
        _TABLES[key] = table
    return table


@torch.inference_mode(False)
def _make_table(batch: int, size: Tuple[int, int], grid: Tuple[int, int], pad: int, kernel: int,
                dilation: int, device: torch.device) -> torch.Tensor:
    # a normal (not inference) tensor, so that it may be saved for backward later
    with torch.no_grad():
        h, w = size[0] + 2 * pad, size[1] + 2 * pad
        ph, pw = size[0] // grid[0], size[1] // grid[1]
        ar = partial(torch.arange, device=device)
        corner = (ar(batch)[:, None, None] * (h * w) + ar(grid[0])[:, None] * (ph * w) +
                  ar(grid[1]) * pw).flatten()
        inner = (ar(ph)[:, None] * w + ar(pw)).flatten()
        if kernel == 1:
            table = corner[:, None] + (inner + pad * (w + 1))
        else:
            offsets = ar(kernel) * dilation
            taps = (offsets[:, None] * w + offsets).flatten()
            table = (corner[:, None, None] + inner[:, None] + taps).flatten(1)
    return table


def _patch_ids(mask: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Ones of mask (B, G, K_h, K_w) per group: G tensors (N_g, ) of patch ids
    b * K_h * K_w + i * K_w + j."""
    flat = mask.transpose(0, 1).reshape(mask.shape[1], -1)
    nz = flat.nonzero()
    counts = torch.count_nonzero(flat, dim=1).tolist()
    return nz[:, 1].split(counts)


def sparse_refine_forward(block: nn.Module, x: torch.Tensor, mask: torch.Tensor,
                          meter: Optional[MacsMeter] = None) -> torch.Tensor:
    """Patch-sparse eval forward of a refine block, equal to its dense masked forward.

    With a fixed grid (``block.mask_cell_size`` None) the cells are (H / K_h) x (W / K_w) pixels
    and must tile the map. With cells of c px (``block.mask_cell_size = c``, K_h = ceil(H / c),
    K_w = ceil(W / c)) the map is zero-padded at the bottom / right to whole cells
    (K_h c x K_w c), the intermediate activations are zeroed outside the H x W map before every
    k x k conv (the dense path's zero padding at the image border) and the output is cropped: the
    same as the dense path, whose edge cells are cropped to the map.

    Args:
        block (nn.Module): A :class:`RefineBottleneck` or :class:`RefineBasicBlock` in eval mode.
        x (Tensor): (B, C_in, H, W); with a fixed grid H and W divisible by K_h and K_w.
        mask (Tensor): (B, G, K_h, K_w) in {0, 1}; mask g gates channel block g of every grouped
            conv.
        meter (MacsMeter, optional): Receives the realised MACs (as the dense path counts them).

    Returns:
        Tensor: (B, C_out, H, W), the block output.
    """
    impl = getattr(block, 'sparse_impl', 'halo')
    if impl not in SPARSE_IMPLS:
        raise ValueError(f'sparse_impl must be one of {SPARSE_IMPLS}, got {impl!r}')
    if torch.compiler.is_compiling():
        # traced from the parameters: Inductor's freezing folds and prepacks them once
        steps = _make_steps(block, block.groups) if _foldable(block) else None
    else:
        steps = _folded_steps(block, block.groups)
    if steps is None:
        # e.g. norms without running statistics: they cannot be applied patch by patch
        previous = block.sparse_infer
        block.sparse_infer = False
        try:
            return block(x, mask, meter)
        finally:
            block.sparse_infer = previous
    batch, in_channels, height, width = x.shape
    groups, grid = mask.shape[1], tuple(mask.shape[-2:])
    cell_size = getattr(block, 'mask_cell_size', None)
    if cell_size is None:
        fits = height % grid[0] == 0 and width % grid[1] == 0
        size = (height, width)
    else:
        fits = grid == mask_grid_of((height, width), cell_size)
        size = (grid[0] * cell_size, grid[1] * cell_size)  # padded to whole cells
    if mask.shape[0] != batch or groups != block.groups or not fits:
        raise ValueError(f'mask of shape {tuple(mask.shape)} does not fit x {tuple(x.shape)}, '
                         f'{block.groups} groups and mask_cell_size={cell_size}')
    last = steps[-1]
    out_channels = last.bias.shape[0]
    channels_last_in = x.is_contiguous(memory_format=torch.channels_last)

    res = x if block.shortcut is None else block.shortcut(x, meter)
    valid = None  # (B * H_pad * W_pad, 1): 1 inside the H x W map, 0 in the padding
    if size != (height, width):
        pad = (0, size[1] - width, 0, size[0] - height)
        res = F.pad(x, pad) if res is x else F.pad(res, pad)
        x = res if block.shortcut is None else F.pad(x, pad)
        valid = F.pad(x.new_ones(batch, 1, height, width), pad).view(-1, 1)

    # Pixel matrices: channel-major (C, H * W) for a contiguous NCHW batch of 1 in the 'gemm'
    # implementation, otherwise pixel-major (B * H * W, C) on a channels-last tensor.
    channel_major = batch == 1 and x.is_contiguous() and impl == 'gemm'
    fmt = torch.contiguous_format if channel_major else torch.channels_last
    # a fresh shortcut output in the right layout may be updated in place (without autograd)
    fresh = (res is not x and not torch.is_grad_enabled()
             and res.is_contiguous(memory_format=fmt))
    if block.mask_output:
        out = res if fresh else res.clone(memory_format=fmt)
    elif fresh:  # every position starts at shortcut(x) + BN_last(0) = shortcut(x) + folded bias
        out = res.add_(last.bias.view(1, -1, 1, 1))
    else:
        out = (res + last.bias.view(1, -1, 1, 1)).contiguous(memory_format=fmt)
    if channel_major:
        x_mat, out_mat = x.view(in_channels, -1), out.view(out_channels, -1)
    else:
        x_mat = x.permute(0, 2, 3, 1).reshape(-1, in_channels)  # a view when channels-last
        out_mat = out.permute(0, 2, 3, 1).view(-1, out_channels)

    mask_in = mask_out = mask
    if last.pad and not block.mask_output:
        # A k x k last conv reaches ``pad`` pixels into the neighbouring patches.
        reach = -(-last.pad // min(size[0] // grid[0], size[1] // grid[1]))
        mask_out = F.max_pool2d(mask.to(torch.float32), 2 * reach + 1, 1, reach)
    geo = Geometry(batch, size, grid, valid, _table(batch, size, grid, 0, 1, 1, x.device),
                   block.mask_output)
    if impl == 'halo':
        from .sar_sparse_halo import refine_halo  # it imports this module
        refine_halo(steps, x_mat, out_mat, mask_in, mask_out, geo)
    elif impl == 'halo_cpp':  # the same in one C++ call, built on first use (mmdynamic.ops)
        from mmdynamic.ops.sar_cells import refine_cells
        refine_cells(steps, x_mat, out_mat, mask_in, mask_out, geo)
    else:
        ids_in = _patch_ids(mask_in)
        ids_out = ids_in if mask_out is mask_in else _patch_ids(mask_out)
        for g in range(groups):
            if ids_in[g].shape[0]:
                _refine_group_gemm(steps, g, x_mat, out_mat, ids_in[g], ids_out[g], geo,
                                   channel_major)
    if meter is not None:
        meter.add_masked(block.dense_macs((height, width)),
                         refined_fraction(mask, (height, width), cell_size))
    if block.last_relu:
        out = out.relu_()
    if valid is not None:
        out = out[:, :, :height, :width]
        if channels_last_in:
            return out.contiguous(memory_format=torch.channels_last)
    if not channels_last_in:
        out = out.contiguous()
    return out


def _refine_group_gemm(steps: List[_Step], g: int, x_mat: torch.Tensor, out_mat: torch.Tensor,
                       ids_in: torch.Tensor, ids_out: torch.Tensor, geo: 'Geometry',
                       channel_major: bool) -> None:
    """The reference computation of group g (``sparse_impl='gemm'``): every conv one matrix
    product, the k x k convs on im2col rows gathered tap by tap (9 rows per pixel for a 3x3) from a
    zero canvas; the last conv's output is added to ``out_mat`` in place.

    Args:
        steps (list[_Step]): The folded convs.
        g (int): The group.
        x_mat (Tensor): Block input, (C_in, B * H * W) if ``channel_major`` else (B * H * W, C_in)
            (H x W padded to whole cells).
        out_mat (Tensor): Block output being built, laid out like ``x_mat`` with C_out channels.
        ids_in (Tensor): (N, ) ids of the cells selected in group g.
        ids_out (Tensor): (N', ) ids of the cells the last conv is computed on (a superset of
            ``ids_in`` when the last conv is k x k and the output is not masked).
        geo (Geometry): The block's geometry.
        channel_major (bool): Layout of ``x_mat`` / ``out_mat``.
    """
    batch, size, grid, valid = geo.batch, geo.size, geo.grid, geo.valid
    pixel_table = geo.pixel_table
    device = x_mat.device
    in_per_group = x_mat.shape[0 if channel_major else 1] // len(steps[0].weight_t)
    out_per_group = steps[-1].bias.shape[0] // len(steps[-1].weight_t)
    ids = ids_in
    pixels = pixel_table.index_select(0, ids).view(-1)
    cin = slice(g * in_per_group, (g + 1) * in_per_group)
    # (P, C_in / G) rows of the selected pixels (a transposed (C, P) gather if channel-major)
    h = (x_mat[cin].index_select(1, pixels).t() if channel_major else
         x_mat[:, cin].index_select(0, pixels))
    for k, step in enumerate(steps):
        if step.kernel > 1:  # im2col rows of the conv on the masked map
            target = ids_out if k == len(steps) - 1 else ids
            if valid is not None and k > 0:  # zeros outside the map, like the border padding
                h = h * valid.index_select(0, pixel_table.index_select(0, ids).view(-1))
            pad, channels = step.pad, h.shape[1]
            canvas = h.new_zeros(batch * (size[0] + 2 * pad) * (size[1] + 2 * pad), channels)
            canvas.index_copy_(
                0, _table(batch, size, grid, pad, 1, 1, device).index_select(0, ids).view(-1), h)
            taps = _table(batch, size, grid, pad, step.kernel, step.dilation, device)
            h = canvas.index_select(0, taps.index_select(0, target).view(-1))
            h = h.view(-1, step.kernel * step.kernel * channels)
            ids = target
        weight_t, bias = step.weight_t[g], step.bias_g[g]
        if k < len(steps) - 1:
            h = torch.addmm(bias, h, weight_t)
            if step.relu:
                h = h.relu_()
            continue
        # last conv: add its output on the computed patches to out, which already holds the
        # BN_last(0) shift (unless mask_output)
        if ids is not ids_in:
            pixels = pixel_table.index_select(0, ids).view(-1)
        cout = slice(g * out_per_group, (g + 1) * out_per_group)
        if channel_major:  # (C_out / G, P)
            y = (torch.addmm(bias[:, None], weight_t.t(), h.t()) if geo.mask_output else
                 torch.mm(weight_t.t(), h.t()))
            out_mat[cout].index_add_(1, pixels, y)
        else:  # (P, C_out / G)
            target = out_mat[:, cout]
            y = target.index_select(0, pixels).addmm_(h, weight_t)
            if geo.mask_output:
                y = y.add_(bias)
            target.index_copy_(0, pixels, y)
