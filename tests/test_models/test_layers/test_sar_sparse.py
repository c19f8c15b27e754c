# Copyright (c) mmdynamic contributors. All rights reserved.
"""The patch-sparse refine path equals the dense masked path (sar.md §2.7, exact mode)."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from mmdynamic.models.backbones.sar_resnet import SARResNet, SARResNetCifar
from mmdynamic.models.layers import sar_sparse
from mmdynamic.models.layers.sar_blocks import RefineBasicBlock, RefineBottleneck
from mmdynamic.models.layers.sar_layers import (MacsMeter, MaskGenerator, expand_group_mask,
                                              mask_grid_of, refined_fraction)
from mmdynamic.models.layers.sar_sparse import (SPARSE_IMPLS, set_sparse_impl,
                                                sparse_refine_forward)
from mmdynamic.ops.build import compiler

# the C++ operator ('halo_cpp') needs a compiler; tests/test_ops checks it and its build errors
IMPLS = tuple(impl for impl in SPARSE_IMPLS if impl != 'halo_cpp' or compiler() is not None)

# fp32: 1e-5 absolute plus 1e-6 relative (the trained-like blocks reach output magnitudes ~30,
# where one float32 ulp is ~2e-6)
ATOL, RTOL = 1e-5, 1e-6


pytestmark = pytest.mark.usefixtures('single_thread')  # tests/conftest.py


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Trained-like weights: random convs, BN running stats and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in)**0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
    return module


def _block(cls, groups: int, dilation: int, mask_output: bool, shortcut: bool, seed: int = 0):
    # Bottleneck: 8 planes -> 32 output channels; BasicBlock: 16 -> 16
    out_channels = 32 if cls is RefineBottleneck else 16
    planes = out_channels // cls.expansion
    in_channels = out_channels // 2 if shortcut else out_channels
    block = cls(in_channels, planes, groups=groups, dilation=dilation, mask_output=mask_output)
    assert (block.shortcut is not None) == shortcut
    return _randomise(block, seed).eval()


def _masks(batch: int, groups: int, grid: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, groups, grid, grid)
    return {
        'random': (torch.rand(shape, generator=gen) < 0.5).float(),
        'sparse': (torch.rand(shape, generator=gen) < 0.15).float(),
        'zeros': torch.zeros(shape),
        'ones': torch.ones(shape),
    }


def _check(block: nn.Module, x: torch.Tensor, mask: torch.Tensor, atol: float = ATOL,
           rtol: float = RTOL) -> None:
    """Every implementation of the sparse path equals the dense path (outputs and MACs)."""
    dense_meter = MacsMeter(x.shape[0], x.device)
    dense = block(x, mask, dense_meter)
    previous = block.sparse_impl
    try:
        for impl in IMPLS:
            block.sparse_impl = impl
            sparse_meter = MacsMeter(x.shape[0], x.device)
            sparse = sparse_refine_forward(block, x, mask, sparse_meter)
            assert sparse.shape == dense.shape
            torch.testing.assert_close(sparse, dense, atol=atol, rtol=rtol,
                                       msg=lambda m: f'{impl}: {m}')
            assert sparse_meter.static == dense_meter.static
            assert torch.equal(sparse_meter.dynamic, dense_meter.dynamic)
    finally:
        block.sparse_impl = previous


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2, 4])
@pytest.mark.parametrize('grid', [2, 4, 7])
@pytest.mark.parametrize('dilation', [1, 2])
@pytest.mark.parametrize('mask_output', [False, True])
@pytest.mark.parametrize('shortcut', [False, True])
def test_sparse_equals_dense(cls, groups, grid, dilation, mask_output, shortcut):
    block = _block(cls, groups, dilation, mask_output, shortcut)
    x = torch.randn(3, block.conv1.in_channels, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for mask in _masks(3, groups, grid).values():
            _check(block, x, mask)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('dilation', [1, 2, 4])
@pytest.mark.parametrize('mask_output', [False, True])
def test_halo_wider_than_patch(cls, dilation, mask_output):
    # 2x2 patches: with dilation 4 the 3x3 taps reach two patches away
    block = _block(cls, 2, dilation, mask_output, False)
    x = torch.randn(2, block.conv1.in_channels, 28, 28)
    with torch.no_grad():
        for mask in _masks(2, 2, 14).values():
            _check(block, x, mask)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('layout', ['nchw_batch1', 'channels_last', 'channels_last_batch1'])
@pytest.mark.parametrize('mask_output', [False, True])
@pytest.mark.parametrize('groups', [1, 2])
def test_memory_layouts(cls, layout, mask_output, groups):
    block = _block(cls, groups, 1, mask_output, True)
    batch = 1 if layout.endswith('batch1') else 3
    x = torch.randn(batch, block.conv1.in_channels, 28, 28)
    if layout.startswith('channels_last'):
        x = x.contiguous(memory_format=torch.channels_last)
        block = block.to(memory_format=torch.channels_last)
    with torch.no_grad():
        for mask in _masks(batch, groups, 7).values():
            _check(block, x, mask)
            out = sparse_refine_forward(block, x, mask)
            channels_last = layout.startswith('channels_last')
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            assert out.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
def test_grad_mode_and_inference_mode(cls):
    block = _block(cls, 2, 1, False, True)
    x = torch.randn(2, block.conv1.in_channels, 28, 28, requires_grad=True)
    mask = _masks(2, 2, 4)['random']
    dense = block(x, mask)
    sparse = sparse_refine_forward(block, x, mask)  # autograd on: folded on the fly, no cache
    torch.testing.assert_close(sparse, dense, atol=ATOL, rtol=RTOL)
    grad_dense, = torch.autograd.grad(dense.square().sum(), x)
    grad_sparse, = torch.autograd.grad(sparse.square().sum(), x)
    torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-4, rtol=1e-4)
    with torch.inference_mode():
        torch.testing.assert_close(sparse_refine_forward(block, x, mask), dense.detach(),
                                   atol=ATOL, rtol=RTOL)


def test_fold_cache_follows_parameter_changes():
    block = _block(RefineBottleneck, 2, 1, False, False)
    x = torch.randn(2, 32, 28, 28)
    mask = _masks(2, 2, 7)['random']
    with torch.no_grad():
        _check(block, x, mask)
        steps = block._sparse_fold_cache['steps']
        _check(block, x, mask)
        assert block._sparse_fold_cache['steps'] is steps  # reused
        block.conv2.weight.mul_(1.5)  # in-place update (version bump)
        _check(block, x, mask)
        block.bn3.running_var.mul_(2)
        _check(block, x, mask)
        block.load_state_dict(_randomise(_block(RefineBottleneck, 2, 1, False, False), 3)
                              .state_dict())
        _check(block, x, mask)
        block.bn1.eps = 1e-3
        _check(block, x, mask)
        block.double()  # swaps the parameters' data without bumping their versions
        _check(block, x.double(), mask.double(), atol=1e-10, rtol=1e-12)
    # training moves the BN statistics; back in eval the cache must be rebuilt
    block.float().train()
    block(torch.randn(2, 32, 28, 28), mask).sum().backward()
    block.eval()
    with torch.no_grad():
        _check(block, x, mask)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('mask_output', [False, True])
def test_fused_conv_bn(cls, mask_output):
    # after mmcv's fuse_conv_bn the norms are nn.Identity and the convs carry the biases
    block = _block(cls, 2, 1, mask_output, True)
    x = torch.randn(2, block.conv1.in_channels, 28, 28)
    masks = _masks(2, 2, 7)
    with torch.no_grad():
        reference = [block(x, m) for m in masks.values()]
        fuse_conv_bn(block)
        for ref, mask in zip(reference, masks.values()):
            torch.testing.assert_close(sparse_refine_forward(block, x, mask), ref, atol=1e-4,
                                       rtol=1e-5)


def test_norm_without_running_stats_falls_back():
    block = RefineBottleneck(16, 8, groups=2, norm_cfg=dict(type='GN', num_groups=2)).eval()
    block.sparse_infer = True
    x = torch.randn(2, 16, 28, 28)
    mask = _masks(2, 2, 7)['random']
    with torch.no_grad():
        out = sparse_refine_forward(block, x, mask)
        block.sparse_infer = False
        assert torch.equal(out, block(x, mask))
    assert not block.sparse_infer


def test_blocks_dispatch_to_sparse_path(monkeypatch):
    block = _block(RefineBottleneck, 2, 1, False, False)
    block.sparse_infer = True
    calls = []
    original = sparse_refine_forward

    def spy(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(sar_sparse, 'sparse_refine_forward', spy)
    mask = _masks(1, 2, 7)['random']
    with torch.no_grad():
        block(torch.randn(1, 32, 28, 28), mask)
        assert len(calls) == 1
        with pytest.raises(ValueError, match='not divisible'):
            block(torch.randn(1, 32, 30, 30), mask)  # 30 is not divisible by 7
        assert len(calls) == 1
        block.train()
        block(torch.randn(1, 32, 28, 28), mask)  # training: dense
        assert len(calls) == 1


def _mixed_masks(model: nn.Module, x: torch.Tensor, seed: int = 0) -> None:
    """Random mask-generator heads and biases under which about 20-80 % of the positions of each
    group are refined, varying over positions, groups and images.

    The refine bias of every generator is set from the median logit gap of a dense forward (stage by
    stage, so one pass per SAR stage), plus a random offset, so no position sits on the threshold.
    """
    gen = torch.Generator().manual_seed(seed)
    generators = [m for m in model.modules() if isinstance(m, MaskGenerator)]
    with torch.no_grad():
        for m in generators:
            m.fc.weight.copy_(torch.randn(m.fc.weight.shape, generator=gen))
            m.fc.bias.zero_()
        model.eval().set_sparse_infer(False)
        for _ in range(len(model.stages)):
            logits = {}
            hooks = [m.register_forward_hook(
                lambda mod, args, out: logits.__setitem__(mod, out)) for m in generators]
            model(x)
            for hook in hooks:
                hook.remove()
            for m in generators:
                gap = logits[m][:, :, 1] - logits[m][:, :, 0]  # (B, G, K, K)
                gap = gap.transpose(0, 1).flatten(1)
                shift = gap.median(dim=1).values
                jitter = (torch.rand(m.groups, generator=gen) - 0.5) * gap.std(dim=1)
                m.fc.bias[1::2] -= shift + jitter


def _compare_backbone(model: nn.Module, x: torch.Tensor, rel_tol: float,
                      density_range: tuple = (0.1, 0.9)) -> None:
    model.eval()
    with torch.no_grad():
        model.set_sparse_infer(False)
        dense = model(x)
        dense_masks = [m.clone() for m in model.last_masks]
        dense_flops = model.last_flops.clone()
        model.set_sparse_infer(True)
        sparse = model(x)
    densities = torch.stack([m.mean() for m in dense_masks])
    low, high = density_range
    assert ((densities > low) & (densities < high)).all(), densities
    for a, b in zip(dense_masks, model.last_masks):
        assert torch.equal(a, b)
    assert torch.equal(model.last_flops, dense_flops)
    assert len(sparse) == len(dense)
    for a, b in zip(sparse, dense):
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= rel_tol * max(scale, 1.0), (scale, (a - b).abs().max())


@pytest.mark.parametrize('impl', IMPLS)
def test_sar_resnet50_sparse_equals_dense(impl):
    # tolerance: 1e-5 relative to the largest output magnitude (fp32 through 16 blocks; ~1e-6 seen)
    model = _randomise(SARResNet(depth=50, groups=2, out_indices=(0, 1, 2, 3)), 0)
    set_sparse_impl(model, impl)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-5)


def test_sar_resnet_cifar_sparse_equals_dense():
    model = _randomise(SARResNetCifar(depth=20), 0)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-5)


def test_non_divisible_input_is_refused_in_sparse_mode():
    # 200x200: refine maps of 50, 25 and 13 pixels, none divisible by the grids (14, 7, 2)
    model = _randomise(SARResNet(depth=50, groups=2, out_indices=(0, 1, 2, 3)), 0).eval()
    x = torch.randn(1, 3, 200, 200)
    with torch.no_grad():
        model.set_sparse_infer(False)
        model(x)  # the dense path takes any size
        model.set_sparse_infer(True)
        with pytest.raises(ValueError, match='50x50 feature map .* not divisible by its 14x14 mask'):
            model(x)



# Mask cells in pixels (``mask_cell_size``): grids (ceil(H / c), ceil(W / c)), edge cells cropped.


def _cell_masks(batch: int, groups: int, size, cell: int, seed: int = 0):
    grid = mask_grid_of(size, cell)
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch, groups, *grid, generator=gen) < p).float() for p in (0.15, 0.5)]


def test_expand_group_mask_with_cells_crops_the_edge_cells():
    mask = torch.tensor([[[[1., 0., 1.], [0., 1., 0.]]]])  # (1, 1, 2, 3): 4 px cells on 7 x 9
    expanded = expand_group_mask(mask, 2, (7, 9), cell_size=4)
    assert expanded.shape == (1, 2, 7, 9)
    reference = mask[0, 0].repeat_interleave(4, 0).repeat_interleave(4, 1)[:7, :9]
    assert torch.equal(expanded[0, 0], reference) and torch.equal(expanded[0, 1], reference)
    # divisible maps: the same as the fixed grid's nearest upsampling
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 2, 3, 4, generator=gen) < 0.5).float()
    assert torch.equal(expand_group_mask(mask, 4, (12, 16), 4),
                       expand_group_mask(mask, 4, (12, 16)))
    with pytest.raises(ValueError, match='does not fit 4 px cells'):
        expand_group_mask(mask, 4, (13, 16), 4)
    # MACs density: the refined fraction of the map, edge cells counted with their cropped area
    mask = (torch.rand(2, 2, 4, 5, generator=gen) < 0.5).float()
    expected = expand_group_mask(mask, 2, (13, 18), 4).flatten(1).mean(dim=1)
    torch.testing.assert_close(refined_fraction(mask, (13, 18), 4), expected)
    # a fixed grid: the mean over the groups of each group's mean (equal up to rounding)
    torch.testing.assert_close(refined_fraction(mask, (8, 10), None), mask.flatten(1).mean(dim=1))


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2, 4])
@pytest.mark.parametrize('dilation', [1, 2])
@pytest.mark.parametrize('mask_output', [False, True])
def test_cell_size_sparse_equals_dense_at_odd_sizes(cls, groups, dilation, mask_output):
    block = _block(cls, groups, dilation, mask_output, shortcut=groups != 4)
    gen = torch.Generator().manual_seed(4)
    for size, cell in (((13, 18), 4), ((9, 7), 2), ((11, 11), 3), ((12, 8), 4), ((5, 6), 7)):
        x = torch.randn(2, block.conv1.in_channels, *size, generator=gen)
        block.mask_cell_size = cell
        with torch.no_grad():
            for mask in _cell_masks(2, groups, size, cell):
                _check(block, x, mask)


@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('layout', ['nchw_batch1', 'channels_last', 'channels_last_batch1'])
def test_cell_size_memory_layouts(cls, layout):
    block = _block(cls, 2, 1, False, True)
    block.mask_cell_size = 4
    batch = 1 if layout.endswith('batch1') else 3
    x = torch.randn(batch, block.conv1.in_channels, 15, 10)
    if layout.startswith('channels_last'):
        x = x.contiguous(memory_format=torch.channels_last)
        block = block.to(memory_format=torch.channels_last)
    fmt = torch.channels_last if layout.startswith('channels_last') else torch.contiguous_format
    with torch.no_grad():
        for mask in _cell_masks(batch, 2, (15, 10), 4):
            _check(block, x, mask)
            assert sparse_refine_forward(block, x, mask).is_contiguous(memory_format=fmt)


def test_cell_size_grad_mode():
    block = _block(RefineBasicBlock, 2, 2, False, True)
    block.mask_cell_size = 3
    x = torch.randn(2, block.conv1.in_channels, 10, 11)
    mask = _cell_masks(2, 2, (10, 11), 3)[1]
    torch.testing.assert_close(sparse_refine_forward(block, x, mask), block(x, mask), atol=ATOL,
                               rtol=RTOL)


@pytest.mark.parametrize('size', [(97, 131), (160, 224)])
@pytest.mark.parametrize('groups', [1, 2, 4])
@pytest.mark.parametrize('os8', [False, True])
def test_cell_size_backbone_sparse_equals_dense_at_any_size(size, groups, os8):
    # small widths; maps of 25x33 / 13x17 / 7x9 px (97x131) with 4 / 3 / 3 px cells: partial cells
    # at the bottom / right edges (3 px at stride 16: enough cells for mixed masks)
    extra = dict(strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4)) if os8 else {}
    model = _randomise(SARResNet(depth=50, base_channels=8, stem_channels=16, groups=groups,
                                 mask_cell_size=(4, 3, 3), out_indices=(0, 1, 2, 3), **extra), 0)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(5))
    _mixed_masks(model, x)
    # few cells at stride 16 (18 per group): every mask mixed, not necessarily 10-90 %
    _compare_backbone(model, x, rel_tol=1e-5, density_range=(0.0, 1.0))
    grids = [tuple(m.shape[-2:]) for m in model.last_masks]
    maps = [(-(-size[0] // s), -(-size[1] // s)) for s in ((4, 8, 8) if os8 else (4, 8, 16))]
    expected = [mask_grid_of(maps[0], 4)] * 2 + [mask_grid_of(maps[1], 3)] * 3 + \
        [mask_grid_of(maps[2], 3)] * 5
    assert grids == expected


def test_cell_size_backbone_is_exact_in_float64():
    model = _randomise(SARResNet(depth=50, base_channels=8, stem_channels=16, groups=2,
                                 mask_cell_size=(4, 3, 5), out_indices=(0, 1, 2, 3),
                                 strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4)), 0).double()
    x = torch.randn(3, 3, 97, 131, generator=torch.Generator().manual_seed(6)).double()
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-12, density_range=(0.0, 1.0))


def test_fixed_grid_still_refuses_non_divisible_maps_in_sparse_mode():
    block = _block(RefineBottleneck, 2, 1, False, False).eval()
    block.sparse_infer = True
    with torch.no_grad(), pytest.raises(ValueError, match='30x30 feature map .* 7x7 mask grid'):
        block(torch.randn(1, 32, 30, 30), torch.ones(1, 2, 7, 7))
    block.mask_cell_size = 5  # 30 / 5 = 6 cells; 30 / 7 -> 5 cells of 7 px, the last one cropped
    with torch.no_grad():
        block(torch.randn(1, 32, 30, 30), torch.ones(1, 2, 6, 6))
        block.mask_cell_size = 7
        block(torch.randn(1, 32, 30, 30), torch.ones(1, 2, 5, 5))
