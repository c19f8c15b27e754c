# Copyright (c) mmdynamic contributors. All rights reserved.
"""Per-video GFLOPs counted from the modules reproduce the paper (spec §4.3)."""
import pytest
import torch
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401


@pytest.fixture(scope='module')
def mn2_r50():
    """Uni-AdaFocus with MobileNet-V2 + ResNet-50 (random weights), ActivityNet setting."""
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    return MODELS.build(dict(type='UniAdaFocus', backbone=dict(type='MobileNetV2'),
                             local_backbone=dict(type='ResNet', depth=50), num_classes=200))


@pytest.mark.parametrize('patch_size, total', [(128, 27.2), (96, 17.9), (160, 39.2)])
def test_gflops_per_video(mn2_r50, patch_size, total):
    torch.set_num_threads(1)
    mn2_r50.patch_size = patch_size
    gflops = [m / 1e9 for m in mn2_r50.exit_macs((48, 3, 224, 224))]
    assert len(gflops) == 17
    assert gflops[-1] == pytest.approx(total, abs=0.06)
    assert gflops[0] == pytest.approx(4.89, abs=0.02)  # exit 0: glance only, no policy, no f_L
    # every focus step adds one ResNet-50 patch (+ classifier); exit 1 also pays the policy (0.83)
    steps = [b - a for a, b in zip(gflops[1:], gflops[2:])]
    assert max(steps) - min(steps) < 1e-3
    assert gflops[1] - gflops[0] == pytest.approx(steps[0] + 0.8266, abs=0.01)


@pytest.mark.parametrize('backbone', [
    dict(type='mmpretrain.MobileNetV2', widen_factor=0.5, out_indices=(4, )),
    dict(type='MobileNetV2TSM', num_segments=4, widen_factor=0.5, out_indices=(4, ),
         pretrained2d=False),
])
def test_encoder_stages_after_the_last_output_neither_run_nor_cost(backbone):
    """mmpretrain's / mmaction2's MobileNet-V2 run every stage whatever ``out_indices`` says; the
    recognizer removes the stages after the last output, so exit 0 costs what the glance needs."""
    from mmdynamic.models.action.uni_adafocus import build_encoder, drop_unused_stages
    from mmdynamic.utils.flops import count_macs
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    full_cfg = dict(backbone, out_indices=(7, ))
    full = MODELS.build(full_cfg) if not backbone['type'].startswith('mmpretrain.') \
        else build_encoder(full_cfg)
    trimmed = build_encoder(backbone)
    assert trimmed.layers == ['layer1', 'layer2', 'layer3', 'layer4', 'layer5']
    assert not any(name.startswith(('layer6', 'layer7', 'conv2.'))
                   for name, _ in trimmed.named_parameters())
    trimmed.load_state_dict(full.state_dict(), strict=False)
    full.eval(), trimmed.eval()
    images = torch.randn(4, 3, 64, 64)
    expected = full.layer5(full.layer4(full.layer3(full.layer2(full.layer1(full.conv1(images))))))
    out = trimmed(images)
    out = out[-1] if isinstance(out, (tuple, list)) else out
    torch.testing.assert_close(out, expected)
    # the stride-16 encoder costs less than the whole one, by the removed stages' work
    assert count_macs(trimmed, (images, )) < count_macs(full, (images, ))
    # a backbone without a stage list, or one whose last stage is an output, is left as it is
    assert drop_unused_stages(full) is full and len(full.layers) == 8  # layer1-7, conv2


def test_demo_config_exit0_costs_only_the_glance_encoder_it_uses():
    from mmengine.config import Config
    from mmaction.registry import MODELS
    from tests.conftest import REPO
    init_default_scope('mmaction')
    cfg = Config.fromfile(f'{REPO}/configs/uniadafocus/uniadafocus_mn2-r18-tiny_1xb8-30e_demo-video.py')
    model = MODELS.build(cfg.model)
    assert not hasattr(model.backbone, 'conv2') and not hasattr(model.backbone, 'layer6')
    macs = model.exit_macs((16, 3, 64, 64))
    assert macs[0] < 0.03e9  # the demo budget of tests/test_tools/test_uniadafocus_tools.py
