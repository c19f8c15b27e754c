# Copyright (c) mmdynamic contributors. All rights reserved.
"""RegNet-Y (RegNet-X + SE) for the GF-RegNet models: widths, parameters and MACs of pycls."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

import mmdynamic.models  # noqa: F401
from mmdynamic.utils.flops import count_macs


@pytest.mark.parametrize('arch,width,params', [('regnety_600mf', 608, 5.45),
                                                ('regnety_800mf', 768, 5.49),
                                                ('regnety_1.6gf', 888, 10.31)])
def test_regnety_widths_and_params(arch, width, params):
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(type='RegNetY', arch=arch))
    assert model.stage_widths[-1] == width  # GFNet's F: 608 / 768 / 888
    # pycls totals (6.1 / 6.3 / 11.2 M) minus their 1000-way fc
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params, abs=0.01)
    assert all(hasattr(block, 'se') for block in model.layer1)


def test_regnety_600mf_forward_and_macs():
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(type='RegNetY', arch='regnety_600mf'))
    model.eval()  # (mmpretrain's ResNet.train returns None)
    inputs = torch.randn(1, 3, 224, 224)
    assert model(inputs)[-1].shape == (1, 608, 7, 7)
    assert count_macs(model, (inputs, )) / 1e9 == pytest.approx(0.6, rel=0.03)
    # the SE gate acts: zeroing its expand bias and weights halves the block input to conv3
    block = model.layer1[0]
    x = torch.randn(1, block.mid_channels, 8, 8)
    torch.nn.init.zeros_(block.se.expand.weight)
    torch.nn.init.zeros_(block.se.expand.bias)
    assert torch.allclose(block.se(x), x * 0.5)
    with pytest.raises(KeyError, match='regnety'):
        MODELS.build(dict(type='RegNetY', arch='regnetx_800mf'))
