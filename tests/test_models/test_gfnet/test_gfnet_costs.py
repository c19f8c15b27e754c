# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet exit costs count what runs, and inference runs only what it needs (issue #16, items 15-17).

- With ``glance_head='encoder'`` (the official RegNet inference, the cascade models) the glance step
  still runs fC's GRU (its state feeds step 2): exit 1 counts it.
- In eval, the DSN heads (except fG's head when it predicts the glance), fC's linear layer at such a
  glance and the PPO critic do not run, and the costs do not include them.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmdynamic.models  # noqa: F401
from mmdynamic.utils.flops import count_macs

from .test_gfnet import NUM_CLASSES, batch, build

HIDDEN = 16  # classifier and policy GRU width of the tiny model
FEATURE = 64  # pooled width of the tiny ResNet-18 encoders


def _calls(model):
    """Count the calls of the modules inference should not need."""
    calls = {}
    handles = []
    for name in ('global_encoder.head', 'local_encoder.head', 'policy.critic', 'classifier.fc',
                 'classifier.rnn'):
        module = model.get_submodule(name)
        calls[name] = 0

        def hook(mod, args, out, name=name):
            calls[name] += 1

        handles.append(module.register_forward_hook(hook))
    return calls, handles


@pytest.mark.parametrize('glance_head', ['classifier', 'encoder'])
def test_eval_skips_dsn_heads_and_critic_with_identical_outputs(glance_head):
    model = build(train_stage=3, glance_head=glance_head).eval()
    inputs, samples = batch()
    model.exit_macs_for(inputs.shape[1:])  # the cost trace, before counting the calls
    calls, handles = _calls(model)
    with torch.no_grad():
        exits = model.forward_exits(inputs)
        model.predict(inputs, samples)
    for handle in handles:
        handle.remove()
    # two passes (forward_exits, predict) of 3 steps
    assert calls['local_encoder.head'] == 0 and calls['policy.critic'] == 0
    if glance_head == 'encoder':
        # fG's head predicts the glance; fC's linear layer runs at the focus steps only
        assert calls['global_encoder.head'] == 2
        assert calls['classifier.fc'] == 4 and calls['classifier.rnn'] == 6
    else:
        assert calls['global_encoder.head'] == 0
        assert calls['classifier.fc'] == calls['classifier.rnn'] == 6
    # the same logits as a rollout that runs every head
    with torch.no_grad():
        full = model.rollout(inputs, with_aux=True)
    assert torch.equal(exits, full.logits)
    assert full.aux_logits.shape == (3, inputs.shape[0], NUM_CLASSES)
    if glance_head == 'encoder':
        assert torch.equal(exits[0], full.aux_logits[0])


def test_eval_costs_exclude_the_skipped_heads():
    """Exit MACs = what a pass with every head counts, minus T DSN heads and T - 1 critics."""
    model = build(train_stage=3).eval()
    x = torch.zeros(1, 3, 64, 64)
    costs = model.exit_macs((3, 64, 64))
    with_aux = count_macs(model, (x, ), fn=lambda v: model.rollout(v, with_aux=True).logits)
    head = FEATURE * NUM_CLASSES
    assert with_aux - costs[-1] == 3 * head
    fmap, state = torch.zeros(1, 64, 1, 1), torch.zeros(1, HIDDEN)
    critic = (count_macs(model.policy, (fmap, state)) -
              count_macs(model.policy, (fmap, state), with_value=False))
    assert critic == HIDDEN
    # the critic is not in the costs: a focus step costs the policy without it
    policy = count_macs(model.policy, (fmap, state), with_value=False)
    encoder = count_macs(model.local_encoder, (torch.zeros(1, 3, 32, 32), ))
    classifier = count_macs(model.classifier, (torch.zeros(1, FEATURE), state),
                            fn=lambda f, s: model.classifier(1, f, s))
    assert costs[2] - costs[1] == policy + encoder + classifier


def test_training_still_runs_the_dsn_heads():
    model = build(train_stage=1).train()
    inputs, samples = batch()
    calls, handles = _calls(model)
    losses = model.loss(inputs, samples)
    for handle in handles:
        handle.remove()
    assert 'loss_dsn' in losses and calls['local_encoder.head'] == 2
    assert calls['global_encoder.head'] == 1 and calls['policy.critic'] == 0
    no_dsn = build(train_stage=1, dsn_ratio=0.0).train()
    calls, handles = _calls(no_dsn)
    assert 'loss_dsn' not in no_dsn.loss(inputs, samples)
    assert calls['local_encoder.head'] == 0 and calls['global_encoder.head'] == 0
    for handle in handles:
        handle.remove()


def test_encoder_glance_counts_the_gru_of_the_glance_step():
    """With fG's head predicting the glance, exit 1 runs (and counts) the glance, fG, fG's head and
    the GRU update of fC, whose state feeds step 2; fC's linear layer does not run there."""
    by_classifier = build(train_stage=3).eval()
    by_encoder = build(train_stage=3, glance_head='encoder').eval()
    by_encoder.load_state_dict(by_classifier.state_dict())
    a, b = by_classifier.exit_macs((3, 64, 64)), by_encoder.exit_macs((3, 64, 64))
    head, fc = FEATURE * NUM_CLASSES, HIDDEN * NUM_CLASSES
    gru = 3 * (FEATURE * HIDDEN + HIDDEN * HIDDEN)
    # exit by exit: fG's head instead of fC's linear layer at the glance (the old count dropped
    # the GRU at exit 1: b[0] was a[0] - fc + head - gru)
    assert [y - x for x, y in zip(a, b)] == [head - fc] * 3
    glance = count_macs(by_encoder, (torch.zeros(1, 3, 64, 64), ),
                        fn=lambda v: by_encoder.global_encoder(by_encoder_glance(by_encoder, v))[0])
    assert b[0] == glance + head + gru


def by_encoder_glance(model, inputs):
    from mmdynamic.models.utils.patch_sampler import glance
    return glance(inputs, model.glance_size, mode=model.glance_interp, align_corners=True)


def test_train_glance_head_follows_the_official_regnet_code():
    """RegNet (official): fC's step-1 logits in training, fG's head at inference."""
    model = build(train_stage=1, glance_head='encoder', train_glance_head='classifier')
    inputs, _ = batch()
    model.train()
    out = model.rollout(inputs)
    assert not torch.equal(out.logits[0], out.aux_logits[0])  # fC at the glance
    model.eval()
    with torch.no_grad():
        exits = model.forward_exits(inputs)
        full = model.rollout(inputs)
    assert torch.equal(exits[0], full.aux_logits[0])  # fG's head at the glance
    with pytest.raises(ValueError, match='train_glance_head'):
        build(train_glance_head='fc')
    with pytest.raises(ValueError, match='glance_head'):
        build(classifier=dict(type='cascade'), glance_head='encoder',
              train_glance_head='classifier')


def test_regnet_config_predicts_the_glance_with_fg_head():
    cfg = Config.fromfile('configs/gfnet/gfnet-regnety-600mf-p96-t5_stage3_4xb64-60e_in1k.py')
    assert cfg.model.glance_head == 'encoder'
    assert cfg.model.train_glance_head == 'classifier'
    init_default_scope('mmpretrain')
    for name in ('configs/gfnet/gfnet-r50-p96-t5_stage3_4xb64-60e_in1k.py',
                 'configs/gfnet/gfnet-densenet121-p96-t5_stage3_4xb64-60e_in1k.py'):
        assert Config.fromfile(name).model.glance_head == 'classifier'
    assert MODELS.get('GFNet') is not None
