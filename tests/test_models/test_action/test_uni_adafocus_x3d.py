# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401


def build(**kwargs):
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(type='UniAdaFocusX3D', **kwargs))


def test_small_x3d_losses_and_exits():
    model = build(backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                  local_backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
                  num_classes=5, global_channels=128, local_channels=128, feature_size=2,
                  glance_size=64, num_glance=4, num_candidates=12, num_focus=4, patch_size=32,
                  min_box_size=32, head_channels=16, spatial_hidden=8, temporal_hidden=8,
                  num_mc_samples=8)
    model.init_weights()
    x = torch.randn(2, 16, 3, 64, 64)
    model.train()
    out = model.forward_steps(x)
    assert out['maps'].shape[:2] == (2, 4) and out['local_feats'].shape[:2] == (2, 4)
    losses = model(x, [ActionDataSample().set_gt_label(y) for y in (1, 3)], mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.local_backbone.conv1_s.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        steps = model.forward_steps(x)['steps']
        exits = model.forward_exits(x)
    # the prediction is the sum of the two heads on clip-pooled features
    assert torch.allclose(exits, steps.transpose(0, 1), atol=1e-5)
    assert exits.shape == (2, 2, 5)


def test_gflops_reproduce_table5():
    """X3D-S on 16 glance frames at 160 px + X3D-L on 32 crops of 128 px + policy: 8.8 GFLOPs per
    view (Table 5); the glance exit costs X3D-S alone."""
    torch.set_num_threads(1)
    model = build(backbone=dict(type='X3D', gamma_w=1, gamma_b=2.25, gamma_d=2.2),
                  local_backbone=dict(type='X3D', gamma_w=1, gamma_b=2.25, gamma_d=5.0),
                  num_classes=400, patch_size=128)
    gflops = [m / 1e9 for m in model.exit_macs((16 + 96, 3, 224, 224))]
    assert gflops[-1] == pytest.approx(8.8, abs=0.05)
    assert gflops[0] == pytest.approx(2.42, abs=0.02)  # X3D-S, 16 x 160² (2.0 for 13 frames)
