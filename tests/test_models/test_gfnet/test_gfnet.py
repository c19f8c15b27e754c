# Copyright (c) mmdynamic contributors. All rights reserved.
"""The GFNet classifier: steps, stages, early exit with gathered states, and costs."""
import copy

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.structures import DataSample

import mmdynamic.models  # noqa: F401
from mmdynamic.models.utils.early_exit import EarlyExitExecutor

NUM_CLASSES = 5


def tiny_cfg(**kwargs):
    cfg = dict(
        type='GFNet', num_classes=NUM_CLASSES, patch_size=32, num_steps=3,
        global_encoder=dict(backbone=dict(type='ResNet', depth=18, stem_channels=8,
                                          base_channels=8, out_indices=(3, )), in_channels=64),
        classifier=dict(type='recurrent', hidden_channels=16),
        policy=dict(variant='fc', fc_channels=32, hidden_channels=16),
        glance_interp='bilinear')
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**kwargs))
    model.init_weights()
    return model


def batch(n=6, size=64):
    torch.manual_seed(1)
    inputs = torch.randn(n, 3, size, size)
    samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)]
    return inputs, samples


def test_registered_and_bad_values():
    model = build()
    assert type(model).__name__ == 'GFNet' and model.num_exits == 3
    assert model.global_encoder.backbone is not model.local_encoder.backbone  # separate weights
    for bad, match in [(dict(train_stage=4), 'train_stage'), (dict(reward='x'), 'reward'),
                       (dict(classifier=dict(type='cascade')), 'glance_head'),
                       (dict(glance_head='fc'), 'glance_head'),
                       (dict(test_locations='centre'), 'test_locations')]:
        with pytest.raises(ValueError, match=match):
            build(**bad)


def test_rollout_shapes_and_locations():
    model = build(train_stage=3).eval()
    inputs, _ = batch()
    out = model.rollout(inputs)
    assert out.logits.shape == (3, 6, NUM_CLASSES)
    assert out.aux_logits.shape == (3, 6, NUM_CLASSES)
    assert out.locations.shape == (6, 2, 2)
    assert out.fmaps.shape == (6, 2, 64, 1, 1)
    # evaluation uses the mean action: deterministic
    again = model.rollout(inputs)
    assert torch.equal(out.locations, again.locations) and torch.equal(out.logits, again.logits)
    assert torch.equal(model.forward_exits(inputs), out.logits)
    # stage 1 evaluates with random locations unless told otherwise
    assert build(train_stage=1).eval().location_mode() == 'random'
    assert build(train_stage=1, test_locations='mean').eval().location_mode() == 'mean'


def test_cascade_model_uses_the_glance_encoder_head():
    model = build(classifier=dict(type='cascade'), glance_head='encoder',
                  policy=dict(variant='conv', hidden_channels=8), train_stage=3).eval()
    inputs, _ = batch()
    out = model.rollout(inputs)
    assert torch.equal(out.logits[0], out.aux_logits[0])
    assert [fc.in_features for fc in model.classifier.fcs] == [128, 192]


@pytest.mark.parametrize('stage', [1, 2, 3])
def test_stage_freezing(stage):
    model = build(train_stage=stage, freeze_global_encoder=stage != 2, reward='contrastive')
    model.train()
    trained = {'policy'} if stage == 2 else {'local_encoder', 'classifier'}
    frozen = {'global_encoder', 'local_encoder', 'classifier', 'policy'} - trained
    for name in trained:
        module = getattr(model, name)
        assert all(p.requires_grad for p in module.parameters()) and module.training, name
    for name in frozen:
        module = getattr(model, name)
        assert not any(p.requires_grad for p in module.parameters()), name
        assert not module.training and not any(m.training for m in module.modules()), name
    before = copy.deepcopy(model.state_dict())
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    optim.step()
    after = model.state_dict()
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        if key.startswith(tuple(frozen)):
            assert not changed, key  # weights and BN statistics of frozen parts
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith(tuple(trained)) and 'weight' in k)
    if stage == 2:
        assert set(losses) >= {'loss_policy', 'loss_value', 'loss_entropy', 'reward'}
    else:
        assert set(losses) >= {'loss_cls', 'loss_dsn', 'acc_exit1'}


def test_stage1_loss_is_eq6():
    model = build(train_stage=1, dsn_ratio=5.0)
    model.train()
    inputs, samples = batch()
    torch.manual_seed(3)
    losses = model.loss(inputs, samples)
    torch.manual_seed(3)
    out = model.rollout(inputs)
    labels = torch.tensor([s.gt_label.item() for s in samples])
    ce = torch.nn.functional.cross_entropy
    assert losses['loss_cls'].item() == pytest.approx(
        sum(ce(lg, labels) for lg in out.logits).item() / 3, rel=1e-5)
    assert losses['loss_dsn'].item() == pytest.approx(
        5 * sum(ce(lg, labels) for lg in out.aux_logits).item() / 3, rel=1e-5)


def test_contrastive_branch_does_not_change_the_main_path():
    model = build(train_stage=3).eval()
    inputs, _ = batch()
    plain = model.rollout(inputs, mode='mean')
    branched = model.rollout(inputs, mode='mean', random_branch=True)
    assert torch.equal(plain.logits, branched.logits)
    assert branched.random_logits.shape == (2, 6, NUM_CLASSES)


def test_early_exit_gathers_the_states():
    """Survivors of the batched early exit get exactly the logits of the full run."""
    model = build(train_stage=3).eval()
    inputs, _ = batch(n=8)
    full = model.forward_exits(inputs)  # (T, B, C)
    conf = full.softmax(-1).max(-1).values
    thresholds = [conf[0].median().item(), conf[1].median().item(), 0.0]
    result = EarlyExitExecutor(thresholds).run(model, inputs)
    assert result.batch_sizes[0] == 8 and result.batch_sizes[1] < 8
    for i in range(8):
        k = int(result.exits[i])
        assert torch.allclose(result.logits[i], full[k, i], atol=1e-5)


def test_predict_sets_exit_outputs():
    model = build(train_stage=3).eval()
    inputs, samples = batch()
    out = model.predict(inputs, samples)
    assert out[0].exit_logits.shape == (3, NUM_CLASSES)
    macs = out[0].exit_macs
    assert len(macs) == 3 and macs[0] < macs[1] < macs[2]


def test_gf_resnet50_costs_match_the_paper():
    """GF-R50 (P=96, T=5, 1000 classes, 224 input): policy 46.1 M MACs per focus step, classifier
    10.46 M, cumulative 0.76/1.57/2.37/3.18/3.99 G with the policy counted at steps 2..T (T-1
    times; the analyser also counts BN and pooling, +4 M per encoder pass)."""
    from mmdynamic.utils.flops import count_macs
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='GFNet', num_classes=1000, patch_size=96, num_steps=5, train_stage=3,
        global_encoder=dict(backbone=dict(type='ResNet', depth=50), in_channels=2048)))
    model.eval()
    policy = count_macs(model.policy, (torch.zeros(1, 2048, 3, 3), torch.zeros(1, 1024)),
                        with_value=False)  # the critic runs in the PPO update only
    assert policy / 1e6 == pytest.approx(46.1, abs=0.05)
    fc = count_macs(model.classifier, (torch.zeros(1, 2048), torch.zeros(1, 1024)),
                    fn=lambda f, s: model.classifier(0, f, s))
    assert fc / 1e6 == pytest.approx(10.46, abs=0.01)
    encoder = count_macs(model.global_encoder, (torch.zeros(1, 3, 96, 96), ))
    costs = model.exit_macs((3, 224, 224))
    expected = [t * (encoder + fc) + (t - 1) * policy for t in range(1, 6)]
    assert costs == pytest.approx(expected, rel=1e-9)  # neither the critic nor the DSN heads run
    # the authors' count (conv and linear only): 0.761/1.568/2.376/3.183/3.990 G
    assert [c / 1e9 for c in costs] == pytest.approx([0.761, 1.568, 2.376, 3.183, 3.990], rel=6e-3)
    assert encoder / 1e6 == pytest.approx(750.7, rel=6e-3)
