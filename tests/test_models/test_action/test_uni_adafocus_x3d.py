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
    # X3D-S, 16 x 160² (2.0 for 13 frames), + the frame head (432 -> 2048 -> 400) on 16 frames
    frame_head = 16 * (432 * 2048 + 2048 * 400) / 1e9
    assert gflops[0] == pytest.approx(2.42 + frame_head, abs=0.02)


def small(**kwargs):
    cfg = dict(backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
               local_backbone=dict(type='X3D', gamma_w=0.5, gamma_b=1, gamma_d=0.5),
               num_classes=5, global_channels=128, local_channels=128, feature_size=2,
               glance_size=64, num_glance=4, num_candidates=12, num_focus=4, patch_size=32,
               min_box_size=32, head_channels=16, spatial_hidden=8, temporal_hidden=8,
               num_mc_samples=8)
    cfg.update(kwargs)
    model = build(**cfg)
    model.init_weights()
    return model


def test_exit0_averages_the_per_frame_head_and_exit1_uses_the_prediction_heads():
    """Item 8 of issue 16: as the official code, exit 0 is the frame head (``global_CNN_head``) on
    every glance frame, logits averaged over the frames (not the head of the averaged feature); the
    prediction (exit 1) is X3D-S's + X3D-L's prediction heads (``head.lin_5/projection``) on the
    clip-pooled features. The frame heads start as copies of the prediction heads."""
    model = small()
    for pred, frame in (('fc_global', 'fc_global_frame'), ('fc_local', 'fc_local_frame')):
        a, b = getattr(model, pred).state_dict(), getattr(model, frame).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():  # trained heads differ: make the frame heads their own
        for p in list(model.fc_global_frame.parameters()) + list(model.fc_local_frame.parameters()):
            p.mul_(1.5).add_(0.01)
    model.eval()
    x = torch.randn(2, 16, 3, 64, 64)
    with torch.no_grad():
        out = model.forward_steps(x)
        exits = model.forward_exits(x)
        g, l = out['feats'], out['local_feats']
        exit0 = model.fc_global_frame(g).mean(dim=1)
        exit1 = model.fc_global(g.mean(dim=1)) + model.fc_local(l.mean(dim=1))
        old = model.fc_global_frame(g.mean(dim=1))
    assert torch.allclose(out['steps'][:, 0], exit0, atol=1e-6)
    assert torch.allclose(out['steps'][:, 1], exit1, atol=1e-6)
    assert torch.allclose(exits, out['steps'].transpose(0, 1), atol=1e-6)
    assert (exit0 - old).abs().max() > 1e-4  # the non-linear head does not commute with the mean
    model.glance_exit = 'prediction_heads'  # the old exit 0: the head of the averaged feature
    with torch.no_grad():
        assert torch.allclose(model.forward_steps(x)['steps'][:, 0], model.fc_global(g.mean(1)),
                              atol=1e-6)


def test_losses_read_the_frame_heads_clip_averaged():
    """Official X3D losses: loss_global / loss_local = CE of the frame heads' logits averaged over the
    frames; the prediction loss trains only the prediction heads (detached features)."""
    model = small(dropout=0.0)
    model.train()
    x = torch.randn(2, 16, 3, 64, 64)
    labels = torch.tensor([1, 3])
    out = model.forward_steps(x, random_branch=True)
    losses = model.classifier_losses(out, labels)
    losses.update(model.policy_losses(out, labels, (64, 64)))
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(losses['loss_global'],
                          ce(model.fc_global_frame(out['feats']).mean(1), labels))
    local = [ce(model.fc_local_frame(f).mean(1), labels)
             for f in (out['local_feats'], out['random_local_feats'])]
    assert torch.allclose(losses['loss_local'], sum(local) / 2)
    losses['loss_cls'].backward()
    assert model.fc_global[0].weight.grad is not None and model.fc_local[3].weight.grad is not None
    for param in (model.backbone.conv1_s.conv.weight, model.local_backbone.conv1_s.conv.weight,
                  model.fc_global_frame[0].weight):
        assert param.grad is None or not param.grad.any()


def _official_feature_box_pool(maps, actions, map_size, patch, frame=224, min_side=96):
    """The official spatial-loss crop (Uni-AdaFocus get_patch_grid_scalexy on the feature maps):
    output side round(map * P / 224), box side out * ((224 - 96) a / P + 96 / P) cells, top-left
    a * (map - side), theta -> affine_grid -> grid_sample (zero padding); mean over frames and cells.
    maps (B, T, C, h, h), actions (B, 4) (one box per video)."""
    import torch.nn.functional as F
    batch, frames, channels = maps.shape[:3]
    out = round(map_size * patch / frame)
    scale = actions[:, 2:4] * (frame - min_side) / patch + min_side / patch
    coord = actions[:, :2] * (map_size - out * scale)
    x1, x2 = coord[:, 1], coord[:, 1] + out * scale[:, 1]
    y1, y2 = coord[:, 0], coord[:, 0] + out * scale[:, 0]
    theta = torch.zeros(batch, 2, 3, dtype=maps.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = out * scale[:, 1] / map_size, out * scale[:, 0] / map_size
    theta[:, 0, 2], theta[:, 1, 2] = -1 + (x1 + x2) / map_size, -1 + (y1 + y2) / map_size
    grid = F.affine_grid(theta, [batch, frames * channels, out, out], align_corners=False)
    crops = F.grid_sample(maps.flatten(1, 2), grid, align_corners=False)
    return crops.view(batch, frames, channels, out, out).mean(dim=(1, 3, 4))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_spatial_loss_box_on_the_5x5_map_is_official(dtype):
    """Item 11 of issue 16: on X3D's 5 x 5 map (224 frames, P = 128) the official box side is
    round(5 * 128 / 224) = 3 cells times (96 + 128 a) / 128, i.e. 2.25 + 3 a (up to 5.25: it can spill
    past the map, sampled as zero), top-left a * (5 - side); not the image box scaled by 5 / 224
    (2.14 + 2.86 a)."""
    model = small(patch_size=128, min_box_size=96)
    model.fc_aux = torch.nn.Identity()  # read the pooled crop features directly
    maps = torch.randn(3, 4, 128, 5, 5, dtype=dtype)
    actions = torch.tensor([[0.3, 0.6, 0.2, 0.7], [1.0, 0.0, 1.0, 1.0], [0.9, 0.1, 0.95, 0.05]],
                           dtype=dtype)
    ours = model.spatial_aux_logits(maps, actions[:, None], (224, 224))
    official = _official_feature_box_pool(maps, actions, 5, 128)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert (ours - official).abs().max() < tol
    # the project's former box (the image box scaled to the map, clamped inside) differs
    from mmdynamic.models.action import actions_to_boxes
    from mmdynamic.models.utils import crop_boxes
    old = actions_to_boxes(actions, (224, 224), 96) * 5 / 224
    old_crops = crop_boxes(maps.flatten(0, 1), old[:, None].expand(3, 4, 4).reshape(-1, 4), 3)
    old_pool = old_crops.view(3, 4, 128, 3, 3).mean(dim=(1, 3, 4))
    assert (old_pool - official).abs().max() > 1e-3
