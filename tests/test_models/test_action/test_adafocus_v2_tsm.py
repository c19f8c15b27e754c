# Copyright (c) mmdynamic contributors. All rights reserved.
"""AdaFocusV2-TSM: the official layout, one patch place per video shared by the focus clip, the two heads
per encoder, the official training objective, the step-wise exits and a Runner run of the demo config."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401
from mmdynamic.models.utils import EarlyExitExecutor, neg_entropy
from tests.conftest import REPO

CONFIGS = osp.join(REPO, 'configs', 'uniadafocus')
TG, TL, NUM_CLASSES, P = 3, 4, 5, 24
TINY = dict(
    type='AdaFocusV2TSM',
    backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=4, return_tuple=False),
    local_backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=3, out_indices=(2, ),
                        return_tuple=False),
    num_classes=NUM_CLASSES, global_channels=32, local_channels=16, feature_size=4,
    num_glance=TG, num_focus=TL, patch_size=P, policy_hidden=(8, 6), policy_mid_channels=4,
    head_init_std=0.1)


def build(**overrides):
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def videos(batch=4, seed=0, dtype=torch.float32):
    return torch.randn(batch, TG + TL, 3, 64, 64, generator=torch.Generator().manual_seed(seed),
                       dtype=dtype)


def samples(labels):
    return [ActionDataSample().set_gt_label(int(y)) for y in labels]


def official_crop(frames, action, patch):
    """The official ``get_patch_grid`` op sequence on the channel-stacked focus clip (B, T*3, H, W):
    top-left a * (H - P), theta -> affine_grid -> grid_sample (defaults: bilinear, zero padding,
    align_corners=False). Returns (B * T, 3, P, P)."""
    batch, size = frames.shape[0], frames.shape[2]
    coords = action * (size - patch)
    x1, y1 = coords[:, 1], coords[:, 0]
    theta = frames.new_zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = patch / size
    theta[:, 0, 2] = -1 + (2 * x1 + patch) / size
    theta[:, 1, 2] = -1 + (2 * y1 + patch) / size
    grid = F.affine_grid(theta, [batch, 3, patch, patch], align_corners=False)
    return F.grid_sample(frames, grid, align_corners=False).reshape(-1, 3, patch, patch)


def _has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_official_layout():
    """The official Sth-Sth V1 P128 model: 660 keys, 31.29 M parameters; the policy layout of
    ``policy_stn``; two heads per encoder; TSM encoders with 8 and 12 segments."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py'))
    cfg.model.backbone.pretrained = None
    cfg.model.local_backbone.pretrained = None
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert len(state) == 660
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 31.29
    assert shapes['policy.embed.0.weight'] == (64, 10240, 1, 1)
    assert shapes['policy.embed.1.weight'] == (64, )
    assert shapes['policy.embed.4.weight'] == (1024, 3136)
    assert shapes['policy.embed.5.weight'] == (1024, )
    assert shapes['policy.hidden.0.weight'] == (512, 1024)
    assert shapes['policy.hidden.1.weight'] == (512, )
    assert shapes['policy.out.weight'] == (2, 512)
    assert sum(k.startswith('policy.') for k in state) == 22
    for name, channels in (('fc_global', 1280), ('fc_global_frame', 1280), ('fc_local', 2048),
                           ('fc_local_frame', 2048)):
        assert shapes[f'{name}.1.weight'] == (174, channels)
    assert sum(k.startswith('backbone.') for k in state) == 312
    assert sum(k.startswith('local_backbone.') for k in state) == 318
    assert model.backbone.num_segments == 8 and model.local_backbone.num_segments == 12
    assert (model.num_glance, model.num_focus, model.patch_size) == (8, 12, 128)
    # the README command: lr 0.01, f_G and its heads x0.5, policy x0.01, f_L and its heads x1
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of = {names[id(p)].split('.')[0]: group['lr'] for group in wrapper.optimizer.param_groups
             for p in group['params']}
    assert lr_of == pytest.approx(dict(backbone=0.005, fc_global=0.005, fc_global_frame=0.005,
                                       local_backbone=0.01, fc_local=0.01, fc_local_frame=0.01,
                                       policy=0.0001))
    assert {g['weight_decay'] for g in wrapper.optimizer.param_groups} == {5e-4}
    assert cfg.optim_wrapper.clip_grad.max_norm == 20
    # the released table: 18.5 GFLOPs at P = 128 (8 TSM-MN2 frames + policy + 12 TSM-R50 patches)
    torch.set_num_threads(1)
    gmacs = [m / 1e9 for m in model.exit_macs((20, 3, 224, 224))]
    assert gmacs[-1] == pytest.approx(18.5, abs=0.05) and gmacs[0] == pytest.approx(2.40, abs=0.01)


@pytest.mark.parametrize('name, classes, patch', [
    ('p144-8+12_4xb8-50e_sthv1', 174, 144), ('p160-8+12_4xb8-50e_sthv1', 174, 160),
    ('p176-8+12_4xb8-50e_sthv1', 174, 176), ('p128-8+12_4xb8-50e_sthv2', 174, 128),
    ('p144-8+12_4xb8-50e_sthv2', 174, 144), ('p160-8+12_4xb8-50e_sthv2', 174, 160),
    ('p176-8+12_4xb8-50e_sthv2', 174, 176), ('p128-8+12_4xb8-50e_jester', 27, 128),
    ('p176-8+12_4xb8-50e_jester', 27, 176)])
def test_released_settings(name, classes, patch):
    cfg = Config.fromfile(osp.join(CONFIGS, f'adafocusv2-tsm_mn2-r50-{name}-rgb.py'))
    assert cfg.model.type == 'AdaFocusV2TSM'
    assert (cfg.model.num_classes, cfg.model.patch_size) == (classes, patch)
    assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.optim_wrapper.optimizer.weight_decay == 5e-4
    assert cfg.train_dataloader.batch_size == 8
    sampler = cfg.train_dataloader.dataset.pipeline[0]
    assert (sampler.type, sampler.num_glance, sampler.num_candidates) == (
        'SampleGlanceAndFocusFrames', 8, 12)
    dataset = name.rsplit('_', 1)[-1]
    assert cfg.train_dataloader.dataset.ann_file == f'data/{dataset}/train_list.txt'
    assert cfg.val_dataloader.dataset.filename_tmpl == ('{:06d}.jpg' if dataset == 'sthv2'
                                                        else '{:05d}.jpg')


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_one_patch_place_per_video_on_every_focus_frame(dtype):
    """One (a_y, a_x) per video from the policy over all T_G glance maps; the same P x P patch is
    cropped from the T_L focus frames (not the glance frames) as the official op sequence does."""
    model = build().to(dtype).eval()
    x = videos(dtype=dtype)
    seen = {}
    model.local_backbone.register_forward_hook(lambda m, i, o: seen.update(patches=i[0]))
    model.policy.register_forward_hook(lambda m, i, o: seen.update(policy_in=i[0]))
    with torch.no_grad():
        out = model.forward_steps(x)
    assert out['locations'].shape == (4, 2) and out['steps'].shape == (4, 2, NUM_CLASSES)
    assert seen['policy_in'].shape == (4, TG, 32, 4, 4)  # all glance maps of a video at once
    ref = official_crop(x[:, TG:].flatten(1, 2), out['locations'], P)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert seen['patches'].shape == (4 * TL, 3, P, P)
    assert torch.allclose(seen['patches'], ref, atol=tol)
    # the policy reads the glance clip: another glance clip moves the patch
    changed = x.clone()
    changed[:, :TG] = torch.randn_like(changed[:, :TG])
    with torch.no_grad():
        moved = model.forward_steps(changed)['locations']
    assert not torch.allclose(moved, out['locations'])


def test_heads_and_exits():
    """Exit 1 = avg fc_global(g) + avg fc_local(l) on detached features (official ``logit``); exit 0
    = avg fc_global_frame(g) (the official early-exit convention) or the glance prediction."""
    model = build().eval()
    x = videos()
    with torch.no_grad():
        out = model.forward_steps(x)
        feats, local = out['feats'], out['local_feats']
        prediction = model.fc_global(feats).mean(1) + model.fc_local(local).mean(1)
        assert torch.allclose(out['steps'][:, 1], prediction, atol=1e-6)
        assert torch.allclose(out['steps'][:, 0], model.fc_global_frame(feats).mean(1), atol=1e-6)
        exits = model.forward_exits(x)
        assert torch.allclose(exits, out['steps'].transpose(0, 1), atol=1e-5)
        # exit 0 does not look at the focus clip
        changed = x.clone()
        changed[:, TG:] = 0
        exits_changed = model.forward_exits(changed)
        assert torch.allclose(exits[0], exits_changed[0])
        assert not torch.allclose(exits[1], exits_changed[1])
        model.glance_exit = 'prediction_heads'
        assert torch.allclose(model.forward_steps(x)['steps'][:, 0], model.fc_global(feats).mean(1),
                              atol=1e-6)
    result = model(x, samples([0, 1, 2, 3]), mode='predict')
    assert result[0].exit_logits.shape == (2, NUM_CLASSES)


@pytest.mark.parametrize('random_branch', [True, False])
def test_loss_follows_the_official_objective(random_branch):
    """(L_random + L_policy) / 2, L = CE(prediction) + CE(avg fc_global_frame) + CE(avg fc_local_frame),
    the random pass first, each pass its own f_L batch; written out here from the official main.py."""
    model = build(dropout=0.0, random_patch_branch=random_branch).double().train()
    x = videos(dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3])
    calls = []
    model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0]))
    losses = model(x, samples(labels), mode='loss', generator=torch.Generator().manual_seed(7))
    assert set(losses) == {'loss_cls', 'loss_global', 'loss_local', 'acc_final'}

    # reference with the same modules (train mode: batch statistics of each call)
    with torch.no_grad():
        maps = model.backbone(x[:, :TG].flatten(0, 1))
        maps = maps.view(4, TG, *maps.shape[1:])
        g = maps.mean(dim=(-2, -1))
        stacked = maps.flatten(1, 2)  # channel t * C + c
        action = model.policy.out(model.policy.hidden(model.policy.embed(stacked))).sigmoid()
        actions = [action]
        if random_branch:
            actions.insert(0, torch.rand(4, 2, generator=torch.Generator().manual_seed(7),
                                         dtype=torch.float64))
        glance_logit = model.fc_global[1](g).mean(1)
        glance_reg = model.fc_global_frame[1](g).mean(1)
        total = 0
        for k, a in enumerate(actions):
            patches = official_crop(x[:, TG:].flatten(1, 2), a, P)
            assert torch.allclose(calls[k], patches, atol=1e-10)
            local = model.local_backbone(patches).mean(dim=(-2, -1)).view(4, TL, -1)
            logit = glance_logit + model.fc_local[1](local).mean(1)
            total = total + (F.cross_entropy(logit, labels) + F.cross_entropy(glance_reg, labels)
                             + F.cross_entropy(model.fc_local_frame[1](local).mean(1), labels))
        total = total / len(actions)
    assert len(calls) == len(actions) + len(actions)  # the model's passes, then the reference's
    ours = losses['loss_cls'] + losses['loss_global'] + losses['loss_local']
    assert torch.allclose(ours, total, rtol=1e-10, atol=1e-12)

    # gradient reach: the prediction trains only its heads; the policy learns through the crop
    # from the focus frame head; f_G only from its frame head
    losses['loss_cls'].backward(retain_graph=True)
    assert _has_grad(model.fc_global) and _has_grad(model.fc_local)
    assert not any(_has_grad(m) for m in (model.backbone, model.local_backbone, model.policy,
                                          model.fc_global_frame, model.fc_local_frame))
    model.zero_grad(set_to_none=True)
    losses['loss_local'].backward(retain_graph=True)
    assert _has_grad(model.policy) and _has_grad(model.local_backbone)
    assert not _has_grad(model.backbone) and not _has_grad(model.fc_local)
    model.zero_grad(set_to_none=True)
    losses['loss_global'].backward()
    assert _has_grad(model.backbone) and _has_grad(model.fc_global_frame)
    assert not _has_grad(model.policy)


def test_early_exit_skips_the_local_encoder_and_costs():
    model = build().eval()
    x = videos(8, seed=2)
    with torch.no_grad():
        exits = model.forward_exits(x)
    scores = neg_entropy(exits)
    threshold = float(scores[0].median())
    calls = []
    model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    result = EarlyExitExecutor([threshold, -float('inf')], neg_entropy).run(model, x)
    first = (scores[0] < threshold).long()
    assert torch.equal(result.exits, first)
    assert torch.allclose(result.logits, exits[first, torch.arange(8)], atol=1e-5)
    assert calls == [int(first.sum()) * TL]
    costs = model.exit_macs((TG + TL, 3, 64, 64))
    assert len(costs) == 2 and 0 < costs[0] < costs[1]


def test_bad_inputs():
    model = build()
    with pytest.raises(ValueError, match='T_G \\+ T_L'):
        model.forward_steps(torch.zeros(1, TG + TL + 1, 3, 64, 64))
    with pytest.raises(ValueError, match='patch_size'):
        build(patch_size=80).forward_steps(videos(1))
    with pytest.raises(ValueError, match='glance_exit'):
        build(glance_exit='mean')
    with pytest.raises(ValueError, match='num_focus'):
        build(num_focus=0)
    with pytest.raises(ValueError, match='feature_size'):
        build(feature_size=3).forward_steps(videos(1))


def test_demo_config_trains_through_the_runner(demo_root, tmp_path):
    """The demo config (real decord decoding of the demo videos) trains two iterations in MMEngine's
    Runner and predicts both exits for the validation videos."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(CONFIGS, 'adafocusv2-tsm_mn2-r18-tiny_1xb8-30e_demo-video.py'))
    video = osp.join(demo_root, 'video')
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.dataset.ann_file = osp.join(video, f'{split}_list.txt')
        loader.dataset.data_prefix = dict(video=video)
        loader.batch_size = 2
    val_loader = copy.deepcopy(cfg.val_dataloader)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = None
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.val_dataloader, cfg.val_cfg, cfg.val_evaluator = None, None, None
    cfg.test_dataloader, cfg.test_cfg, cfg.test_evaluator = None, None, None
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))
    model = runner.model.eval()
    data = next(iter(runner.build_dataloader(val_loader)))
    assert data['inputs'][0].shape == (8, 3, 112, 112)  # 4 glance + 4 focus frames
    with torch.no_grad():
        out = model.test_step(data)
    assert len(out) == 2 and out[0].exit_logits.shape == (2, 10)
    assert all(torch.isfinite(o.exit_logits).all() for o in out)
