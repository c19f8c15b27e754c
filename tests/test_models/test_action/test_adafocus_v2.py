# Copyright (c) mmdynamic contributors. All rights reserved.
import copy

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401
from mmdynamic.models.utils import EarlyExitExecutor, neg_entropy

T, NUM_CLASSES = 4, 5
TINY = dict(
    type='AdaFocusV2',
    backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=4, return_tuple=False),
    local_backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=3, out_indices=(2, ),
                        return_tuple=False),
    num_classes=NUM_CLASSES, global_channels=32, local_channels=16, feature_size=4,
    num_frames=T, patch_size=24, policy_hidden=8, fusion_hidden=16)


def build(**overrides):
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def videos(batch=4, seed=0):
    return torch.randn(batch, T, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def samples(labels):
    return [ActionDataSample().set_gt_label(int(y)) for y in labels]


def _has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_policy_is_trained_through_the_pixels():
    """Unlike Uni-AdaFocus, V2's policy learns from the classification loss via the bilinear crop;
    its input is still stop-gradient (f_G gets nothing from the policy)."""
    model = build()
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_global', 'loss_local', 'acc_final'}
    losses['loss_cls'].backward()
    assert _has_grad(model.policy) and _has_grad(model.local_backbone)
    model.zero_grad(set_to_none=True)
    out = model.forward_steps(videos())
    grad = torch.autograd.grad(out['local_feats'].sum(), model.backbone.parameters(),
                               allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in grad)  # stop-gradient into the policy


def test_random_patch_branch_runs_local_encoder_twice():
    calls = []
    model = build()
    model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    model.train()
    model(videos(2), samples([0, 1]), mode='loss')
    assert calls == [2 * T, 2 * T]


def test_stepwise_equals_batched_and_causal():
    model = build().eval()
    x = videos()
    with torch.no_grad():
        steps = model.forward_steps(x)['steps']
        exits = model.forward_exits(x)
        # exit t does not depend on later frames (online recognition)
        changed = x.clone()
        changed[:, -1] = 0
        exits_changed = model.forward_exits(changed)
    assert torch.allclose(exits, steps.transpose(0, 1), atol=1e-5)
    assert torch.allclose(exits[:-1], exits_changed[:-1], atol=1e-6)
    assert not torch.allclose(exits[-1], exits_changed[-1])


def test_early_exit_skips_both_encoders():
    model = build().eval()
    x = videos(8, seed=2)
    with torch.no_grad():
        exits = model.forward_exits(x)
    scores = neg_entropy(exits)
    thresholds = scores.median(dim=1).values.tolist()
    thresholds[-1] = -float('inf')
    calls = {'global': [], 'local': []}
    model.backbone.register_forward_hook(lambda m, i, o: calls['global'].append(i[0].shape[0]))
    model.local_backbone.register_forward_hook(lambda m, i, o: calls['local'].append(i[0].shape[0]))
    result = EarlyExitExecutor(thresholds, neg_entropy).run(model, x)
    first = (scores >= torch.tensor(thresholds)[:, None]).float().argmax(dim=0)
    assert torch.equal(result.exits, first)
    assert torch.allclose(result.logits, exits[first, torch.arange(8)], atol=1e-5)
    alive = [int((first >= k).sum()) for k in range(T) if (first >= k).sum() > 0]
    assert calls['global'] == alive and calls['local'] == alive


def test_exit_macs_repeated_steps_and_bad_inputs():
    model = build()
    fast = model.exit_macs((T, 3, 64, 64))
    model.repeated_steps_from = None
    assert model.exit_macs((T, 3, 64, 64)) == fast
    steps = [b - a for a, b in zip(fast, fast[1:])]
    assert len(set(steps)) == 1 and fast[0] == steps[0]  # every frame costs the same
    with pytest.raises(ValueError, match='T=4'):
        model.forward_steps(torch.zeros(1, 3, 3, 64, 64))
    with pytest.raises(ValueError, match='patch_size'):
        build(patch_size=80).forward_steps(videos(1))


def test_gflops_reproduce_the_released_table():
    """AdaFocusV2 code: 1.10 / 1.68 / 2.44 GFLOPs per frame for P = 96 / 128 / 160 (MN2 + R50);
    27.0 GFLOPs for 16 frames at P = 128 (ActivityNet)."""
    torch.set_num_threads(1)
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    model = MODELS.build(dict(type='AdaFocusV2', backbone=dict(type='MobileNetV2'),
                              local_backbone=dict(type='ResNet', depth=50), num_classes=200))
    for patch, per_frame in ((96, 1.10), (160, 2.44)):
        model.patch_size = patch
        gflops = [m / 1e9 for m in model.exit_macs((16, 3, 224, 224))]
        assert gflops[0] == pytest.approx(per_frame, abs=0.01)
        assert gflops[-1] == pytest.approx(16 * per_frame, abs=0.12)
    # P = 128 (1.68 per frame, 27.0 in total) lies between; one frame suffices for the count
    model.patch_size, model.num_frames, model.num_exits = 128, 1, 1
    assert model.exit_macs((1, 3, 224, 224))[0] / 1e9 == pytest.approx(1.68, abs=0.01)
