# Copyright (c) mmdynamic contributors. All rights reserved.
"""oneDNN convolutions and the haloed-cell tables of the sparse SAR path."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.models.layers import sar_sparse_ops
from mmdynamic.models.layers.sar_blocks import RefineBottleneck
from mmdynamic.models.layers.sar_sparse import set_sparse_impl, sparse_refine_forward
from mmdynamic.models.layers.sar_sparse_halo import cell_set, window_table
from mmdynamic.models.layers.sar_sparse_ops import (OneDNNConv2d, _rows_matmul, conv2d,
                                                    conv_rows, conv_windows, onednn_usable,
                                                    use_onednn_convs)


pytestmark = pytest.mark.usefixtures('single_thread')  # tests/conftest.py


@pytest.mark.parametrize('groups', [1, 2, 4])
def test_conv_rows_is_a_grouped_1x1_conv(groups):
    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(37, 16, generator=gen)
    weight = torch.randn(24, 16 // groups, 1, 1, generator=gen)
    bias = torch.randn(24, generator=gen)
    expected = F.conv2d(rows.t().reshape(1, 16, 37, 1), weight, bias, groups=groups)
    with torch.no_grad():
        out = conv_rows(rows, weight, bias, groups)
    assert out.shape == (37, 24) and out.is_contiguous()
    torch.testing.assert_close(out, expected[0, :, :, 0].t(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv_rows(rows, weight, None, groups),
                               (expected - bias.view(1, -1, 1, 1))[0, :, :, 0].t(), atol=1e-5,
                               rtol=1e-5)
    # the matrix-product form conv_rows takes under torch.compile
    for b in (bias, None):
        shift = 0 if b is not None else bias.view(1, -1, 1, 1)
        torch.testing.assert_close(_rows_matmul(rows, weight, b, groups),
                                   (expected - shift)[0, :, :, 0].t(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('dilation', [1, 2])
def test_conv_windows_is_a_valid_conv_on_the_windows(groups, dilation):
    gen = torch.Generator().manual_seed(1)
    halo = dilation
    windows = torch.randn(5, 4 + 2 * halo, 3 + 2 * halo, 8, generator=gen)  # (N, h, w, C)
    weight = torch.randn(6, 8 // groups, 3, 3, generator=gen)
    bias = torch.randn(6, generator=gen)
    expected = F.conv2d(windows.permute(0, 3, 1, 2).contiguous(), weight, bias,
                        dilation=dilation, groups=groups)  # (5, 6, 4, 3)
    with torch.no_grad():
        out = conv_windows(windows, weight, bias, dilation, groups)
    assert out.shape == (5 * 4 * 3, 6)
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1).reshape(-1, 6), atol=1e-5,
                               rtol=1e-5)


def test_onednn_only_without_autograd_and_in_float32():
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    weight = torch.randn(4, 4, 1, 1)
    with torch.no_grad():
        assert onednn_usable(x, weight) == torch.backends.mkldnn.is_available()
    assert not onednn_usable(x, weight)  # autograd records: F.conv2d
    assert not onednn_usable(x.detach().double(), weight.double())
    out = conv2d(x, weight, None)
    out.sum().backward()  # the fallback keeps the graph
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize('stride, padding, dilation, groups', [(1, 0, 1, 1), (2, 1, 1, 2),
                                                               (1, 2, 2, 4), (2, 3, 1, 1)])
def test_use_onednn_convs_keeps_the_outputs(stride, padding, dilation, groups):
    gen = torch.Generator().manual_seed(2)
    model = nn.Sequential(nn.Conv2d(8, 16, 3 if padding else 1, stride, padding, dilation,
                                    groups=groups), nn.ReLU(), nn.Conv2d(16, 8, 1, bias=False))
    x = torch.randn(2, 8, 15, 13, generator=gen).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = model(x)
        assert use_onednn_convs(model) is model
        assert all(type(m) is OneDNNConv2d for m in (model[0], model[2]))
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(x.contiguous()), expected, atol=1e-5, rtol=1e-5)
    # training still works (autograd: the usual path)
    model(x).sum().backward()
    assert model[0].weight.grad is not None


def test_onednn_conv_keeps_string_padding_and_padding_modes():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 9, 9, generator=gen)
    for conv in (nn.Conv2d(4, 4, 3, padding='same'), nn.Conv2d(4, 4, 3, padding=1,
                                                                 padding_mode='reflect')):
        with torch.no_grad():
            expected = conv(x)
            use_onednn_convs(conv)
            torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)


def test_cell_set_pads_groups_with_fewer_cells():
    mask = torch.zeros(2, 2, 2, 2)  # (B, G, K, K): cells b * 4 + i * 2 + j
    mask[0, 0, 0, 1] = mask[1, 0, 1, 1] = 1  # group 0: cells 1 and 7
    mask[1, 1, 0, 0] = 1  # group 1: cell 4
    cells = cell_set(mask)
    assert cells.cells.shape == (2, 2)
    assert cells.cells[:, 0].tolist() == [1, 7]
    assert cells.cells[0, 1].item() == 4  # then an unselected cell as padding
    assert cells.valid.tolist() == [[True, True], [True, False]]
    assert cell_set(torch.zeros(1, 2, 3, 3)) is None
    full = cell_set(torch.ones(1, 2, 2, 2))
    assert full.valid is None and full.cells[:, 1].tolist() == [0, 1, 2, 3]


def test_window_table_cuts_haloed_windows():
    # 1 image, a 4 x 6 map in 2 x 3 px cells (grid 2 x 2), halo 1: padded map 6 x 8
    table = window_table(1, (4, 6), (2, 2), 1, torch.device('cpu'))
    assert table.shape == (4, 4 * 5)
    padded = torch.arange(6 * 8).view(6, 8)
    assert torch.equal(table[3].view(4, 5), padded[2:6, 3:8])  # cell (1, 1): rows 2-3, cols 3-5
    assert torch.equal(table[0].view(4, 5), padded[0:4, 0:5])


def test_unknown_sparse_impl_is_refused():
    block = RefineBottleneck(16, 4, groups=2).eval()
    with pytest.raises(ValueError, match="sparse_impl must be one of \\('halo', 'gemm'"):
        set_sparse_impl(block, 'fast')
    block.sparse_impl = 'fast'
    with torch.no_grad(), pytest.raises(ValueError, match='sparse_impl must be one of'):
        sparse_refine_forward(block, torch.randn(1, 16, 8, 8), torch.ones(1, 2, 2, 2))


def test_sparse_path_without_onednn_equals_dense(monkeypatch):
    # a PyTorch without oneDNN (or with it disabled): the halo path runs on F.conv2d
    monkeypatch.setattr(sar_sparse_ops, 'onednn_usable', lambda x, w: False)
    block = RefineBottleneck(16, 4, groups=2).eval()
    x = torch.randn(2, 16, 12, 12)
    mask = (torch.rand(2, 2, 3, 3, generator=torch.Generator().manual_seed(4)) < 0.5).float()
    with torch.no_grad():
        expected = block(x, mask)
        torch.testing.assert_close(sparse_refine_forward(block, x, mask), expected, atol=1e-5,
                                   rtol=1e-5)
