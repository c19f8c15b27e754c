# Copyright (c) mmdynamic contributors. All rights reserved.
import copy

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401

TG, T0, TL, NUM_CLASSES = 4, 9, 3, 5
TINY = dict(
    type='UniAdaFocusTSM',
    backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=4, return_tuple=False),
    local_backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=3, out_indices=(2, ),
                        return_tuple=False),
    num_classes=NUM_CLASSES, global_channels=32, local_channels=16, feature_size=4,
    num_candidates=T0, num_glance=TG, num_focus=TL, patch_size=24, min_box_size=16,
    spatial_hidden=8, temporal_hidden=8, num_mc_samples=16)


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
    return torch.randn(batch, TG + T0, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def samples(labels):
    return [ActionDataSample().set_gt_label(int(y)) for y in labels]


def _grads(module):
    return [p for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0]


def test_one_box_per_video_two_exits_and_losses():
    model = build()
    model.train()
    x = videos()
    out = model.forward_steps(x)
    assert out['actions'].shape == (4, 1, 4)  # one box per video
    assert torch.equal(out['boxes'], out['boxes'][:, :1].expand(-1, TL, -1))
    assert out['focus_index'].shape == (4, TL) and out['focus_index'].max() < T0
    assert out['steps'].shape == (4, 2, NUM_CLASSES)
    losses = model(x, samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_global', 'loss_local', 'loss_spatial',
                           'loss_temporal', 'loss_size', 'acc_final'}
    (losses['loss_cls'] + losses['loss_local'] + losses['loss_global']).backward(
        retain_graph=True)
    assert not _grads(model.spatial_policy) and not _grads(model.temporal_policy)
    (losses['loss_spatial'] + losses['loss_temporal']).backward()
    assert _grads(model.spatial_policy) and _grads(model.temporal_policy)


def test_exits_and_focus_frames_come_from_the_candidate_clip():
    model = build().eval()
    x = videos()
    with torch.no_grad():
        steps = model.forward_steps(x)['steps']
        exits = model.forward_exits(x)
        # the glance exit does not look at the candidates; the final exit does
        changed = x.clone()
        changed[:, TG:] = 0
        exits_changed = model.forward_exits(changed)
    assert model.num_exits == 2
    assert torch.allclose(exits, steps.transpose(0, 1), atol=1e-5)
    assert torch.allclose(exits[0], exits_changed[0]) and not torch.allclose(exits[1],
                                                                             exits_changed[1])
    out = model(x, samples([0, 1, 2, 3]), mode='predict')
    assert out[0].exit_logits.shape == (2, NUM_CLASSES)
    with pytest.raises(ValueError, match='T_G \\+ T_0'):
        model.forward_steps(torch.zeros(1, T0, 3, 64, 64))


@pytest.mark.parametrize('setting', [(8, 96, 8.8), (16, 128, 24.2)])
def test_gflops_reproduce_table4(setting):
    """8 x TSM-MobileNet-V2 + T_L x TSM-ResNet-50 patches + policy: 8.8 (8+8, 96²) ... 24.2 (8+16,
    128²) GFLOPs; the glance exit costs 8 MobileNet-V2 frames."""
    torch.set_num_threads(1)
    focus, patch, total = setting
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    model = MODELS.build(dict(
        type='UniAdaFocusTSM',
        backbone=dict(type='MobileNetV2TSM', num_segments=8, shift_div=8),
        local_backbone=dict(type='ResNetTSM', depth=50, num_segments=focus, shift_div=8,
                            shift_place='blockres'),
        num_classes=174, num_candidates=3 * focus, num_glance=8, num_focus=focus,
        patch_size=patch))
    gflops = [m / 1e9 for m in model.exit_macs((8 + 3 * focus, 3, 224, 224))]
    assert gflops[-1] == pytest.approx(total, abs=0.05)
    assert gflops[0] == pytest.approx(8 * 0.2995, abs=0.01)


def _set_head(head, weight, bias):
    linear = head[-1]
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)


def test_two_heads_per_encoder_exit0_frame_heads_exit1_prediction_heads():
    """Item 7 of issue 16: as the official code, each encoder has a prediction head (``new_fc``:
    ``fc_global`` / ``fc_local``) and a frame head (``new_new_fc``: ``fc_global_frame`` /
    ``fc_local_frame``). Exit 0 = avg_t fc_global_frame(g_t), exit 1 = avg_t fc_global(g_t) +
    avg_t fc_local(l_t); checked with hand-set weights (each head its own constant)."""
    model = build()
    names = ('fc_global', 'fc_global_frame', 'fc_local', 'fc_local_frame')
    for k, name in enumerate(names):
        head = getattr(model, name)
        assert isinstance(head[-1], torch.nn.Linear)
        _set_head(head, torch.full_like(head[-1].weight, 0.01 * (k + 1)),
                  torch.full_like(head[-1].bias, 10.0 ** k))
    model.eval()
    x = videos()
    with torch.no_grad():
        out = model.forward_steps(x)
        exits = model.forward_exits(x)
    g, l = out['feats'], out['local_feats']
    exit0 = 0.02 * g.sum(-1).mean(1, keepdim=True) + 10.0
    exit1 = 0.01 * g.sum(-1).mean(1, keepdim=True) + 1.0 + 0.03 * l.sum(-1).mean(1, keepdim=True) \
        + 100.0
    assert torch.allclose(out['steps'][:, 0], exit0.expand(-1, NUM_CLASSES), rtol=1e-5)
    assert torch.allclose(out['steps'][:, 1], exit1.expand(-1, NUM_CLASSES), rtol=1e-5)
    assert torch.allclose(exits, out['steps'].transpose(0, 1), rtol=1e-5)  # step-wise path too
    # the old exit 0 (the glance part of the prediction) stays an option
    model.glance_exit = 'prediction_heads'
    with torch.no_grad():
        old = model.forward_steps(x)['steps'][:, 0]
    assert torch.allclose(old, (exit0 - 10.0) / 2 + 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match='glance_exit'):
        build(glance_exit='mean')


def test_prediction_heads_read_detached_features_frame_heads_train_the_encoders():
    """The official prediction heads read the detached pooled features: the prediction loss trains
    them only; loss_global / loss_local (the frame heads) train the encoders; the temporal loss reads
    the frame head's logits (detached)."""
    model = build()
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    losses['loss_cls'].backward(retain_graph=True)
    assert _grads(model.fc_global) and _grads(model.fc_local)
    for name in ('backbone', 'local_backbone', 'fc_global_frame', 'fc_local_frame'):
        assert not _grads(getattr(model, name)), name
    model.zero_grad(set_to_none=True)
    (losses['loss_global'] + losses['loss_local']).backward(retain_graph=True)
    for name in ('backbone', 'local_backbone', 'fc_global_frame', 'fc_local_frame'):
        assert _grads(getattr(model, name)), name
    assert not _grads(model.fc_global) and not _grads(model.fc_local)
    model.zero_grad(set_to_none=True)
    losses['loss_temporal'].backward()
    assert _grads(model.temporal_policy) and not _grads(model.fc_global_frame)


def test_joint_local_batch_random_clips_first(monkeypatch):
    """Item 3 of issue 16 for TSM: one f_L call on 2 B clips of T_L patches (the random-box clips
    first, then the policy's), unless joint_local_batch=False."""
    from mmdynamic.models.action import uni_adafocus
    from mmdynamic.models.utils import crop_boxes
    random = torch.tensor([[[30.0, 20.0, 24.0, 24.0]]]).expand(2, 1, 4)
    monkeypatch.setattr(uni_adafocus, 'random_boxes', lambda *a, **k: random.clone())
    for joint in (True, False):
        model = build(joint_local_batch=joint)
        calls = []
        model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0]))
        model.train()
        x = videos(2)
        out = model.forward_steps(x, random_branch=True)
        if not joint:
            assert [c.shape[0] for c in calls] == [2 * TL, 2 * TL]
            continue
        (batch, ) = calls
        assert batch.shape[0] == 4 * TL
        frames = torch.stack([x[v, TG + out['focus_index'][v]] for v in range(2)]).flatten(0, 1)
        expected = crop_boxes(frames, random.expand(2, TL, 4).reshape(-1, 4), 24)
        assert torch.allclose(batch[:2 * TL], expected)
        assert torch.allclose(batch[2 * TL:], crop_boxes(frames, out['boxes'].reshape(-1, 4), 24))
