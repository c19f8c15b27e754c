# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR refine blocks on their selected cells in one C++ call (``sparse_impl='halo_cpp'``).

The computation of :func:`mmdynamic.models.layers.sar_sparse_halo.refine_halo` (the reference it
is tested against), in ``csrc/sar_cells.cpp``: the cell lists, the gathers of pixel rows and of
haloed windows and the scatter-add of the last conv's output are C++ loops (parallel over cells)
that read the masks directly, instead of about fifteen small integer tensor ops per block building
index tensors; the convolutions are oneDNN's (``mkldnn::_convolution_pointwise``) with the ReLU
fused and each weight packed into oneDNN's blocked layout per input shape, from the second call
with that shape on (cached with the block's folded weights, :func:`_block_op`; oneDNN reorders a
dense weight on every call, and a weight packed for another shape can hit a reorder 20x slower
than the conv). On the development VM (1 thread) the ten refine blocks of SAR-R50 at density 0.5
and 224 px run 1.2x faster with the C++ gathers alone and 1.35x with the packed weights too.

The operator runs float32 CPU inference (no autograd); other calls (autograd recording, float64,
GPU tensors) run the PyTorch ``'halo'`` path, the same computation (:func:`runs_in_op`). The
operator is compiled on first use (:mod:`.build`); when it cannot be built, selecting this
implementation (``set_sparse_impl``) or running it raises :class:`~.build.OpBuildError`: no
silent fallback.
"""
from collections import OrderedDict
from types import ModuleType
from typing import List, Optional

import torch

from .build import OpBuildError, load_op

_NAME = 'mmdynamic_sar_cells'
_SOURCES = ['sar_cells.cpp']

#: Most blocks whose ``RefineCells`` are kept (least recently used dropped first).
MAX_CACHED_BLOCKS = 64
#: Pack each conv weight into oneDNN's blocked layout per input shape (False: pass the dense
#: weights, which oneDNN reorders on every call; for measurements). Read when a block's
#: ``RefineCells`` is made.
PACK_WEIGHTS = True

# id(steps) -> (steps, mask_output, their RefineCells); holding the steps keeps their id unique
_BLOCKS: 'OrderedDict[int, tuple]' = OrderedDict()


def sar_cells_op() -> ModuleType:
    """The compiled operator (built on first use).

    Raises:
        OpBuildError: It cannot be built here (no compiler, no ninja, compile error).
    """
    return load_op(_NAME, _SOURCES)


def sar_cells_available() -> bool:
    """Whether the operator can be built and loaded here (builds it on first call)."""
    try:
        sar_cells_op()
    except OpBuildError:
        return False
    return True


def _block_op(op: ModuleType, steps: List, groups: int, mask_output: bool):
    """The ``RefineCells`` of ``steps`` (their weights, biases and packed-weight cache), reused
    while the block's folded steps are: ``sar_sparse._folded_steps`` caches them on the block with
    autograd off, unless the parameters are inference tensors (then every call gets new steps, a
    new ``RefineCells`` and dense weights)."""
    entry = _BLOCKS.get(id(steps))
    if entry is not None and entry[0] is steps and entry[1] == mask_output:
        _BLOCKS.move_to_end(id(steps))
        return entry[2]
    biases: List[Optional[torch.Tensor]] = [step.bias for step in steps]
    if not mask_output:  # the last conv's shift is already in the output map
        biases[-1] = None
    block = op.RefineCells([step.weight for step in steps], biases,
                           [step.kernel for step in steps], [step.dilation for step in steps],
                           [step.relu for step in steps], groups, PACK_WEIGHTS)
    _BLOCKS[id(steps)] = (steps, mask_output, block)
    if len(_BLOCKS) > MAX_CACHED_BLOCKS:
        _BLOCKS.popitem(last=False)
    return block


def runs_in_op(x_mat: torch.Tensor, steps: List) -> bool:
    """Whether the C++ operator runs this call: float32 CPU tensors and no autograd graph to
    record (it computes no gradients)."""
    return (x_mat.device.type == 'cpu' and x_mat.dtype == torch.float32
            and all(step.weight.dtype == torch.float32 for step in steps)
            and not (torch.is_grad_enabled() and
                     (x_mat.requires_grad or any(step.weight.requires_grad for step in steps))))


@torch.compiler.disable
def refine_cells(steps: List, x_mat: torch.Tensor, out_mat: torch.Tensor, mask_in: torch.Tensor,
                 mask_out: torch.Tensor, geo) -> None:
    """All groups of a refine block on their selected cells in one C++ call; adds the last conv's
    output to ``out_mat`` in place. Same arguments and result as
    :func:`mmdynamic.models.layers.sar_sparse_halo.refine_halo`. Never traced by
    ``torch.compile``: a compiled caller runs it eagerly.

    Args:
        steps (list[_Step]): The block's folded convs (``sar_sparse._folded_steps``).
        x_mat (Tensor): (B * H * W, C_in) block input, one row per pixel of the map padded to
            whole cells.
        out_mat (Tensor): (B * H * W, C_out) contiguous block output being built, holding
            ``shortcut(x)`` plus, unless ``geo.mask_output``, the last BN's shift.
        mask_in (Tensor): (B, G, K_h, K_w) the selected cells.
        mask_out (Tensor): (B, G, K_h, K_w) the cells the last conv is computed on.
        geo (Geometry): The block's geometry (``sar_sparse.Geometry``).
    """
    if not runs_in_op(x_mat, steps):  # the same computation in PyTorch, with autograd
        from mmdynamic.models.layers.sar_sparse_halo import refine_halo
        refine_halo(steps, x_mat, out_mat, mask_in, mask_out, geo)
        return
    block = _block_op(sar_cells_op(), steps, mask_in.shape[1], geo.mask_output)
    with torch.no_grad():
        block.refine(x_mat.contiguous(), out_mat, mask_in, mask_out, geo.valid,
                     geo.size[0] // geo.grid[0], geo.size[1] // geo.grid[1])
