# Copyright (c) mmdynamic contributors. All rights reserved.
"""MobileNetV3Wide (GF-MobileNetV3-Large 1.25): width 1.0 is mmpretrain's MobileNetV3 exactly."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

import mmdynamic.models  # noqa: F401
from mmdynamic.models.backbones.mobilenet_v3_wide import scale_settings


def test_width_one_is_mmpretrain_mobilenetv3():
    init_default_scope('mmpretrain')
    ours = MODELS.build(dict(type='MobileNetV3Wide', arch='large', widen_factor=1.0))
    ref = MODELS.build(dict(type='MobileNetV3', arch='large'))
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict())
    ours.eval()
    ref.eval()
    x = torch.randn(1, 3, 96, 96)
    assert torch.allclose(ours(x)[-1], ref(x)[-1], atol=1e-5)


def test_large_125_widths():
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(type='MobileNetV3Wide', arch='large', widen_factor=1.25))
    model.eval()
    out = model(torch.randn(1, 3, 96, 96))[-1]
    assert out.shape == (1, 1200, 3, 3)  # GFNet's C_map for mobilenetv3_large_125
    assert model.layer0.conv.out_channels == 24
    stem, rows = scale_settings([[3, 16, 16, False, 'ReLU', 1], [3, 64, 24, False, 'ReLU', 2]],
                                1.25)
    assert stem == 24 and rows == [[3, 24, 24, False, 'ReLU', 1], [3, 96, 32, False, 'ReLU', 2]]
    with pytest.raises(KeyError, match='arch'):
        MODELS.build(dict(type='MobileNetV3Wide', arch='small_075'))
