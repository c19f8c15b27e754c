# Copyright (c) mmdynamic contributors. All rights reserved.
import torch
import torch.nn as nn

from mmdynamic.utils.flops import count_macs, count_params, format_macs

from ..conftest import run_tool


def test_conv_and_linear_macs_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_macs(conv, torch.rand(1, 3, 10, 12)) == 3 * 8 * 9 * 10 * 12
    fc = nn.Linear(16, 4)
    assert count_macs(fc, torch.rand(5, 16)) == 5 * 16 * 4


def test_recurrent_layers_are_counted():
    """nn.GRU is a fused op the stock counter skips; ours counts it like the GRUCell it unrolls to."""
    cell = count_macs(nn.GRUCell(8, 16), (torch.rand(2, 8), torch.rand(2, 16)))
    assert cell == 2 * 3 * (8 * 16 + 16 * 16)
    assert count_macs(nn.GRU(8, 16), torch.rand(1, 2, 8)) == cell
    assert count_macs(nn.GRU(8, 16, batch_first=True), torch.rand(2, 5, 8)) == 5 * cell
    two_layers = 2 * 3 * ((8 * 16 + 16 * 16) + (16 * 16 + 16 * 16))
    assert count_macs(nn.GRU(8, 16, num_layers=2), torch.rand(1, 2, 8)) == two_layers
    assert count_macs(nn.LSTM(8, 16), torch.rand(1, 2, 8)) == 2 * 4 * (8 * 16 + 16 * 16)


def test_resnet50_is_4_09_gmacs():
    """The convention of the papers: ResNet-50 at 224 x 224 is about 4.09 G multiply-adds."""
    from mmpretrain.models import ResNet
    model = ResNet(depth=50)
    macs = count_macs(model, torch.rand(1, 3, 224, 224))
    assert abs(macs / 1e9 - 4.09) < 0.02, macs
    assert abs(count_params(model) / 1e6 - 23.51) < 0.01  # without the 1000-way fc (2.05 M)


def test_count_restores_train_mode_and_calls_fn():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout())
    model.train()
    assert count_macs(model, torch.rand(2, 4), fn=lambda x: model[0](x)) == 2 * 16
    assert model.training


def test_modules_whose_outputs_are_unused_are_counted():
    """The tracer drops dead code; count_macs still counts every module that runs (issue #16)."""
    used, unused = nn.Linear(4, 3), nn.Linear(4, 5)
    model = nn.ModuleDict(dict(used=used, unused=unused))

    def fn(x):
        unused(x)  # runs, its output is thrown away
        torch.tanh(unused(x))  # feeds nothing returned
        return used(x)

    x = torch.rand(2, 4)
    assert count_macs(model, (x, ), fn=fn) == 2 * (4 * 3 + 2 * 4 * 5)
    assert count_macs(model, (x, ), fn=fn, count_all_modules=False) == 2 * 4 * 3
    # nested modules and tuple / dict outputs
    gru = nn.GRUCell(4, 6)
    nested = nn.ModuleDict(dict(block=nn.Sequential(nn.Linear(4, 4), nn.ReLU()), gru=gru))

    def fn2(x):
        nested['gru'](nested['block'](x))
        return x.sum()

    assert count_macs(nested, (x, ), fn=fn2) == 2 * (4 * 4 + 3 * (4 * 6 + 6 * 6))
    assert not any(m._forward_hooks for m in nested.modules())  # the hooks are removed


def test_format():
    assert format_macs(4089184256) == '4.089 G'
    assert format_macs(46_100_000) == '46.100 M'
    assert format_macs(12) == '12'


def test_get_flops_tool():
    proc = run_tool(['tools/analysis_tools/get_flops.py', 'tests/data/configs/toy_mmpretrain.py',
                     '--shape', '64', '64'])
    assert 'params: 0.025 M' in proc.stdout
    assert 'input shape: (3, 64, 64)' in proc.stdout
    assert 'exit  cumulative MACs' in proc.stdout  # a static model has one exit
    proc = run_tool(['tools/analysis_tools/get_flops.py',
                     'configs/sar/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py', '--shape', '224', '224'])
    assert 'dynamic backbone: realised MACs' in proc.stdout
