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
