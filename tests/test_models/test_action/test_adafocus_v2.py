# Copyright (c) mmdynamic contributors. All rights reserved.
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401
from mmdynamic.models.action.adafocus_v2 import bisection_frame_order
from mmdynamic.models.utils import EarlyExitExecutor, neg_entropy
from tests.conftest import REPO

CONFIGS = osp.join(REPO, 'configs', 'uniadafocus')
# the order of every released AdaFocusV2 command (`--sample`, main_v2.py)
OFFICIAL_ORDER_16 = [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14]

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


@pytest.mark.parametrize('frame_order', ['temporal', 'bisection', [2, 3, 0, 1]])
def test_stepwise_equals_batched_and_causal(frame_order):
    model = build(frame_order=frame_order).eval()
    x = videos()
    with torch.no_grad():
        steps = model.forward_steps(x)['steps']
        exits = model.forward_exits(x)
        # exit k does not depend on frames processed later (online recognition)
        changed = x.clone()
        changed[:, model.frame_order[-1]] = 0
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


def _reference_order(num_frames):
    """The ``--sample`` rule written out independently: middle, first, last, then the new midpoints of
    floor(linspace(0, T - 1, q + 1)) for q = 2, 4, ... (float64, as numpy)."""
    taken = [float(np.floor((num_frames - 1) / 2)), 0.0, float(num_frames - 1)]
    q = 2
    while len(taken) < num_frames:
        grid = np.floor(np.linspace(0, num_frames - 1, q + 1))
        for i in range(q):
            mid = float(np.floor((grid[i] + grid[i + 1]) / 2))
            if mid not in taken:
                taken.append(mid)
        q *= 2
    return [int(t) for t in taken]


def test_bisection_frame_order():
    assert bisection_frame_order(16) == OFFICIAL_ORDER_16
    assert bisection_frame_order(8) == [3, 0, 7, 1, 5, 2, 4, 6]
    for t in range(3, 65):
        order = bisection_frame_order(t)
        assert order == _reference_order(t)
        assert sorted(order) == list(range(t))  # a permutation: every frame exactly once
    for bad in (1, 2, 0, 2.5):
        with pytest.raises(ValueError, match='num_frames >= 3'):
            bisection_frame_order(bad)
    with pytest.raises(ValueError, match='frame_order'):
        build(frame_order='random')
    with pytest.raises(ValueError, match='permutation'):
        build(frame_order=[0, 1, 1, 2])


def test_frame_order_feeds_the_official_order_to_every_module():
    """With frame_order='bisection' f_G (and so the GRU), f_L and every exit read the 16 frames in
    the `--sample` order: the same as a temporal-order model fed the manually permuted clip."""
    model = build(num_frames=16, frame_order='bisection').eval()
    temporal = build(num_frames=16).eval()
    temporal.load_state_dict(model.state_dict())
    x = torch.randn(2, 16, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        out = model.forward_steps(x)
        ref = temporal.forward_steps(x[:, OFFICIAL_ORDER_16])
        plain = temporal.forward_steps(x)
        exits = model.forward_exits(x)
    assert torch.equal(seen[0], x[:, OFFICIAL_ORDER_16].flatten(0, 1))
    # the step-wise path reads frame OFFICIAL_ORDER_16[k] at step k
    assert all(torch.equal(f[:, 0] if f.dim() == 5 else f, x[:, j])
               for f, j in zip(seen[1:], OFFICIAL_ORDER_16))
    assert torch.allclose(out['steps'], ref['steps'], atol=1e-6)
    assert torch.allclose(out['locations'], ref['locations'], atol=1e-6)
    assert torch.allclose(exits, ref['steps'].transpose(0, 1), atol=1e-5)
    # the order matters (the old behaviour fed temporal order): patches and exits change
    assert not torch.allclose(out['locations'], plain['locations'], atol=1e-4)
    assert not torch.allclose(out['steps'][:, :-1], plain['steps'][:, :-1], atol=1e-4)


def test_official_recipe_configs_use_the_official_order():
    from mmengine.config import Config
    names = ['adafocusv2_mn2-r50-p96_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_mn2-r50-p160_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_mn2-r50-p128_4xb8-50e_fcvid-rgb.py',
             'adafocusv2_mn2-r50-p128_4xb12-50e_minikinetics-rgb.py',
             'adafocusv2_r50-r50-p96_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_r50-r50-p160_4xb8-50e_activitynet-rgb.py',
             'adafocusv2_r50-r50-p128_4xb8-50e_fcvid-rgb.py',
             'adafocusv2_r50-r50-p128_4xb12-50e_minikinetics-rgb.py']
    for name in names:
        cfg = Config.fromfile(osp.join(CONFIGS, name))
        assert cfg.model.frame_order == 'bisection' and cfg.model.num_frames == 16, name
        # the released commands: --patch_size, classes, batch 32 (Mini-K 48, lr x1.5), res50 glance 96
        assert cfg.model.patch_size == int(name.split('-p')[1].split('_')[0]), name
        classes = 239 if 'fcvid' in name else 200
        assert cfg.model.num_classes == classes, name
        minik = 'minikinetics' in name
        assert cfg.train_dataloader.batch_size == (12 if minik else 8), name
        assert cfg.optim_wrapper.optimizer.lr == (0.003 if minik else 0.002), name
        assert cfg.model.get('glance_size') == (96 if '_r50-r50' in name else None), name
        assert cfg.model.feature_size == (3 if '_r50-r50' in name else 7), name
    demo = Config.fromfile(osp.join(CONFIGS, 'adafocusv2_mn2-r18-tiny_1xb8-30e_demo-video.py'))
    assert demo.model.get('frame_order', 'temporal') == 'temporal'


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_glance_resize_align_corners(dtype):
    """glance_size: f_G reads F.interpolate(frames, (S, S), bilinear, align_corners=True) (the
    official res50 glance); f_L's patches still come from the full frames."""
    model = build(glance_size=32, feature_size=2).to(dtype).eval()
    x = videos(2).to(dtype)
    seen = {}
    model.backbone.register_forward_hook(lambda m, i, o: seen.update(glance=i[0]))
    model.local_backbone.register_forward_hook(lambda m, i, o: seen.update(local=i[0]))
    with torch.no_grad():
        model.forward_steps(x)
    frames = x.flatten(0, 1)
    # reference in float64: bilinear weights with align_corners=True written out (output pixel i
    # samples input position i * (H - 1) / (S - 1))
    pos = torch.arange(32, dtype=torch.float64) * (64 - 1) / (32 - 1)
    low = pos.floor().long().clamp(max=62)
    frac = pos - low
    exact = frames.double()
    rows = exact[:, :, low] * (1 - frac)[:, None] + exact[:, :, low + 1] * frac[:, None]
    ref = (rows[..., low] * (1 - frac) + rows[..., low + 1] * frac).to(dtype)
    tol = 1e-12 if dtype == torch.float64 else 5e-5
    assert seen['glance'].shape == (2 * T, 3, 32, 32)
    assert torch.allclose(seen['glance'], ref, atol=tol)
    assert not torch.allclose(seen['glance'], F.interpolate(frames, (32, 32), mode='bilinear',
                                                            align_corners=False), atol=1e-3)
    assert seen['local'].shape[-2:] == (24, 24)  # P from the 64 px frames
    with pytest.raises(ValueError, match='glance_size'):
        build(glance_size=0)


def test_res50_glance_builds_with_the_official_shapes():
    """The released res50 settings: ResNet-50 on 96 px frames (3 x 3 x 2048 maps), policy embedding
    Linear 64*3*3 = 576 -> 2048, f_C MLP input 2048 + 2048 = 4096."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CONFIGS, 'adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py'))
    cfg.model.backbone.pretrained = None
    cfg.model.local_backbone.pretrained = None
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    model = MODELS.build(cfg.model).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes['policy.embed.0.weight'] == (64, 2048, 1, 1)
    assert shapes['policy.embed.4.weight'] == (2048, 576)
    assert shapes['policy.gru.weight_ih_l0'] == (6144, 2048)
    assert shapes['fusion_head.mlp.0.weight'] == (4096, 4096)
    assert shapes['fc_global.1.weight'] == (200, 2048) and shapes['fc_local.1.weight'] == (200, 2048)
    assert model.glance_size == 96 and model.frame_order == OFFICIAL_ORDER_16
    with torch.no_grad():
        maps, feats = model.glance_features(torch.randn(1, 2, 3, 224, 224))
        locations, _ = model.policy(maps)
    assert maps.shape == (1, 2, 2048, 3, 3) and feats.shape == (1, 2, 2048)
    assert locations.shape == (1, 2, 2)
    # the official early-exit table: 2.13 GFLOPs per frame (res50 glance, P = 128), 34.1 in total
    torch.set_num_threads(1)
    gflops = [m / 1e9 for m in model.exit_macs((16, 3, 224, 224))]
    assert gflops[0] == pytest.approx(2.13, abs=0.01)
    assert gflops[-1] == pytest.approx(34.1, abs=0.05)
