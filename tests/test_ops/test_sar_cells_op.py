# Copyright (c) mmdynamic contributors. All rights reserved.
"""The C++ refine operator (``sparse_impl='halo_cpp'``, :mod:`mmdynamic.ops.sar_cells`) equals the
PyTorch ``'halo'`` path it was written from and the dense masked path."""
import pytest
import torch

from mmdynamic.models.backbones.sar_resnet import SARResNet
from mmdynamic.models.layers.sar_blocks import RefineBasicBlock, RefineBottleneck
from mmdynamic.models.layers.sar_sparse import set_sparse_impl, sparse_refine_forward
from mmdynamic.ops import OpBuildError, load_op, sar_cells_op
from mmdynamic.ops.build import compiler
from ..test_models.test_layers.test_sar_sparse import (ATOL, RTOL, _block, _cell_masks, _masks,
                                                       _mixed_masks, _randomise)

# the first call with a shape runs the dense weights, later calls the packed ones: check both
CALLS = 3


@pytest.fixture(autouse=True, scope='module')
def _built_op():
    """Build (first run: about a minute) or load the operator; skip only without a compiler."""
    if compiler() is None:
        pytest.skip('no C++ compiler ($CXX or c++) on PATH: the halo_cpp operator cannot be built')
    sar_cells_op()  # with a compiler, a build error is a failure


pytestmark = pytest.mark.usefixtures('single_thread')


def _check(block: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> None:
    """halo_cpp == halo (1e-5) == dense masked (1e-5 plus 1e-6 relative), on every call."""
    with torch.no_grad():
        dense = block(x, mask)
        block.sparse_impl = 'halo'
        halo = sparse_refine_forward(block, x, mask)
        block.sparse_impl = 'halo_cpp'
        for call in range(CALLS):
            out = sparse_refine_forward(block, x, mask)
            assert out.shape == dense.shape
            assert out.is_contiguous(memory_format=torch.channels_last) == \
                x.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(out, halo, atol=ATOL, rtol=RTOL,
                                       msg=lambda m: f'halo_cpp vs halo, call {call}: {m}')
            torch.testing.assert_close(out, dense, atol=ATOL, rtol=RTOL,
                                       msg=lambda m: f'halo_cpp vs dense, call {call}: {m}')


def _layout(block: torch.nn.Module, x: torch.Tensor, layout: str):
    if layout == 'channels_last':
        return block.to(memory_format=torch.channels_last), \
            x.contiguous(memory_format=torch.channels_last)
    return block, x


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2, 4])
@pytest.mark.parametrize('dilation', [1, 2])
@pytest.mark.parametrize('mask_output', [False, True])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_fixed_grid(cls, groups, dilation, mask_output, layout):
    # 28 x 28 map, 7 x 7 grid of 4 px cells; batch 3; random masks select different numbers of
    # cells per group (padding slots); empty and full masks
    block = _block(cls, groups, dilation, mask_output, shortcut=groups != 4)
    x = torch.randn(3, block.conv1.in_channels, 28, 28, generator=torch.Generator().manual_seed(1))
    block, x = _layout(block, x, layout)
    for mask in _masks(3, groups, 7).values():
        _check(block, x, mask)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2, 4])
@pytest.mark.parametrize('dilation', [1, 2])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_cells_at_odd_sizes(cls, groups, dilation, layout):
    # cells in pixels: ragged edge cells, maps padded to whole cells inside the sparse path;
    # dilation 2 on 2 px cells: the halo reaches two cells away
    block = _block(cls, groups, dilation, False, shortcut=True)
    gen = torch.Generator().manual_seed(4)
    for size, cell, batch in (((13, 18), 4, 2), ((9, 7), 2, 1), ((5, 6), 7, 2)):
        block.mask_cell_size = cell
        x = torch.randn(batch, block.conv1.in_channels, *size, generator=gen)
        block, x = _layout(block, x, layout)
        masks = _cell_masks(batch, groups, size, cell)
        grid = masks[0].shape[-2:]
        for mask in masks + [torch.zeros(batch, groups, *grid), torch.ones(batch, groups, *grid)]:
            _check(block, x, mask)


def test_two_threads_equal_one():
    block = _block(RefineBottleneck, 2, 1, False, True)
    x = torch.randn(2, block.conv1.in_channels, 28, 28)
    mask = _masks(2, 2, 7)['random']
    block.sparse_impl = 'halo_cpp'
    with torch.no_grad():
        one = sparse_refine_forward(block, x, mask)
        torch.set_num_threads(2)
        for _ in range(CALLS):
            torch.testing.assert_close(sparse_refine_forward(block, x, mask), one, atol=ATOL,
                                       rtol=RTOL)


def test_autograd_and_float64_run_the_pytorch_path():
    # what the operator does not cover runs the 'halo' path: same outputs, gradients flow
    block = _block(RefineBasicBlock, 2, 1, False, True)
    block.sparse_impl = 'halo_cpp'
    x = torch.randn(2, block.conv1.in_channels, 28, 28, requires_grad=True)
    mask = _masks(2, 2, 7)['random']
    dense = block(x, mask)
    sparse = sparse_refine_forward(block, x, mask)
    torch.testing.assert_close(sparse, dense, atol=ATOL, rtol=RTOL)
    grad_dense, = torch.autograd.grad(dense.square().sum(), x)
    grad_sparse, = torch.autograd.grad(sparse.square().sum(), x)
    torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-4, rtol=1e-4)
    block = block.double()
    with torch.no_grad():
        x64 = x.detach().double()
        torch.testing.assert_close(sparse_refine_forward(block, x64, mask), block(x64, mask),
                                   atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize('os8', [False, True])
def test_backbone_equals_halo(os8):
    # a small SAR-R50 with mask cells in pixels at an odd input size, batch 2, G = 2
    extra = dict(strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4)) if os8 else {}
    model = _randomise(SARResNet(depth=50, base_channels=8, stem_channels=16, groups=2,
                                 mask_cell_size=(4, 3, 3), out_indices=(0, 1, 2, 3), **extra), 0)
    x = torch.randn(2, 3, 97, 131, generator=torch.Generator().manual_seed(5))
    _mixed_masks(model, x)
    model.eval()
    with torch.no_grad():
        model.set_sparse_infer(False)
        dense = model(x)
        model.set_sparse_infer(True)
        set_sparse_impl(model, 'halo')
        halo = model(x)
        set_sparse_impl(model, 'halo_cpp')
        for _ in range(CALLS):
            for a, b, c in zip(model(x), halo, dense):
                scale = max(c.abs().max().item(), 1.0)
                assert (a - b).abs().max().item() <= 1e-5 * scale
                assert (a - c).abs().max().item() <= 1e-5 * scale


def test_bad_arguments_are_named():
    op = sar_cells_op()
    weight = torch.randn(8, 8, 1, 1)
    with pytest.raises(RuntimeError, match='one entry per conv'):
        op.RefineCells([weight], [None, None], [1], [1], [False], 1)
    block = op.RefineCells([weight], [None], [1], [1], [False], 1)
    x, out = torch.randn(16, 8), torch.zeros(16, 8)
    with pytest.raises(RuntimeError, match=r'masks must be \(B, 1, K_h, K_w\)'):
        block.refine(x, out, torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2), None, 2, 2)
    with pytest.raises(RuntimeError, match='x must be a contiguous float32 CPU pixel matrix'):
        block.refine(x.double(), out, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), None, 2, 2)
    # a 1x1 conv of a whole 4 x 4 map (2 x 2 cells of 2 px): the plain conv
    mask = torch.ones(1, 1, 2, 2)
    block.refine(x, out, mask, mask, None, 2, 2)
    torch.testing.assert_close(out, x @ weight.view(8, 8).t(), atol=ATOL, rtol=RTOL)


def test_missing_compiler_is_named(monkeypatch):
    monkeypatch.setenv('CXX', 'no-such-c++-compiler')
    with pytest.raises(OpBuildError, match="no C\\+\\+ compiler 'no-such-c\\+\\+-compiler'"):
        load_op('mmdynamic_never_built', ['sar_cells.cpp'])
