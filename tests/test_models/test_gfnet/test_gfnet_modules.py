# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet parts: cropping conventions, glance, classifiers, policy, rewards and PPO."""
import math

import pytest
import torch

from mmdynamic.models.cls.gfnet import (GFCascadeClassifier, GFPatchPolicy, GFRecurrentClassifier,
                                        PPOConfig, contrastive_reward, discounted_returns,
                                        increment_reward, ppo_loss)
from mmdynamic.models.utils.patch_sampler import crop_patches, glance


def test_crop_follows_the_official_indexing():
    """top-left = floor(l * (H - P)); l[:, 0] is the row, l[:, 1] the column; always inside."""
    torch.manual_seed(0)
    images = torch.randn(4, 3, 40, 40)
    size = 12
    locations = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.25, 0.9], [0.999, 0.013]])
    patches = crop_patches(images, locations, size, backend='slice', anchor='topleft')
    assert patches.shape == (4, 3, size, size)
    for i, (row, col) in enumerate(locations.tolist()):
        top, left = math.floor(row * (40 - size)), math.floor(col * (40 - size))
        assert torch.equal(patches[i], images[i, :, top:top + size, left:left + size])
    # bounds: l = 1 ends exactly at the border
    assert torch.equal(patches[1], images[1, :, -size:, -size:])


def test_glance_is_the_whole_image_resized():
    images = torch.randn(2, 3, 64, 64)
    out = glance(images, 16, mode='bilinear', align_corners=True)
    assert out.shape == (2, 3, 16, 16)
    # align_corners=True keeps the four corner pixels
    assert torch.allclose(out[..., 0, 0], images[..., 0, 0], atol=1e-5)
    assert torch.allclose(out[..., -1, -1], images[..., -1, -1], atol=1e-5)


def test_recurrent_classifier_shapes_and_zero_start():
    fc = GFRecurrentClassifier(in_channels=8, num_classes=5, hidden_channels=6)
    state = fc.init_state(3, torch.zeros(1))
    assert state.shape == (3, 6) and not state.any()
    feats = torch.randn(3, 8)
    logits, state2 = fc(0, feats, state)
    assert logits.shape == (3, 5) and state2.shape == (3, 6)
    # one GRU step from zeros, by hand (gates r, z, n)
    w_ih, w_hh = fc.rnn.weight_ih_l0, fc.rnn.weight_hh_l0
    gi = feats @ w_ih.t() + fc.rnn.bias_ih_l0
    gh = fc.rnn.bias_hh_l0.expand(3, -1)
    r = torch.sigmoid(gi[:, :6] + gh[:, :6])
    z = torch.sigmoid(gi[:, 6:12] + gh[:, 6:12])
    n = torch.tanh(gi[:, 12:] + r * gh[:, 12:])
    assert torch.allclose(state2, (1 - z) * n, atol=1e-6)
    assert torch.allclose(logits, fc.fc(state2), atol=1e-6)
    # the state is carried: a second step differs from a fresh one
    logits3, _ = fc(1, feats, state2)
    assert not torch.allclose(logits3, logits)


def test_cascade_classifier_concatenates_features():
    casc = GFCascadeClassifier(in_channels=4, num_classes=3, num_steps=3)
    assert [fc.in_features for fc in casc.fcs] == [8, 12]
    state = casc.init_state(2, torch.zeros(1))
    feats = [torch.randn(2, 4) for _ in range(3)]
    logits, state = casc(0, feats[0], state)
    assert logits is None and state.shape == (2, 4)
    logits, state = casc(1, feats[1], state)
    assert logits.shape == (2, 3) and state.shape == (2, 8)
    logits, state = casc(2, feats[2], state)
    assert torch.allclose(logits, casc.fcs[1](torch.cat(feats, 1)))
    with_glance = GFCascadeClassifier(4, 3, 3, glance_head=True)
    assert with_glance(0, feats[0], with_glance.init_state(2, feats[0]))[0].shape == (2, 3)


@pytest.mark.parametrize('variant', ['fc', 'conv'])
def test_policy_shapes_distribution_and_clipping(variant):
    torch.manual_seed(0)
    policy = GFPatchPolicy(in_channels=16, feature_size=2, variant=variant, hidden_channels=8,
                           fc_channels=12)
    fmap = torch.randn(5, 16, 2, 2)
    mean, value, state = policy(fmap, policy.init_state(5, fmap))
    assert mean.shape == (5, 2) and value.shape == (5, ) and state.shape == (5, 8)
    assert ((mean > 0) & (mean < 1)).all()
    # std 0.1 per coordinate, independent
    centre = torch.full((20000, 2), 0.5)
    actions, logps = policy.sample(centre)
    assert actions.std(0).tolist() == pytest.approx([0.1, 0.1], abs=0.005)
    # clipping: samples around a mean near the border stay in [0, 1], some land on 1 exactly
    edge = torch.full((2000, 2), 0.98)
    actions, logps = policy.sample(edge)
    assert actions.max() <= 1 and (actions == 1).any()
    # the log-probability is that of the clipped action under N(mean, 0.1^2)
    expected = (-((actions - edge) ** 2) / (2 * 0.01) - math.log(0.1 * math.sqrt(2 * math.pi)))
    assert torch.allclose(logps, expected.sum(1), atol=1e-4)
    with pytest.raises(ValueError, match='feature maps of shape'):
        policy(torch.randn(5, 16, 3, 3), state)


def test_policy_evaluate_reruns_the_gru():
    torch.manual_seed(0)
    policy = GFPatchPolicy(in_channels=4, feature_size=1, variant='conv', hidden_channels=6,
                           conv_channels=3)
    fmaps = torch.randn(3, 2, 4, 1, 1)  # B=3, N=2 decisions
    state = policy.init_state(3, fmaps)
    means, actions = [], []
    for n in range(2):
        mean, _, state = policy(fmaps[:, n], state)
        means.append(mean)
        actions.append(policy.sample(mean)[0])
    actions = torch.stack(actions, 1)
    logps, values, entropies = policy.evaluate(fmaps, actions)
    assert logps.shape == values.shape == entropies.shape == (3, 2)
    for n in range(2):
        assert torch.allclose(logps[:, n], policy.distribution(means[n]).log_prob(actions[:, n]))
    # the entropy of a fixed-std Gaussian is a constant
    assert torch.allclose(entropies, torch.full_like(entropies, 2 * (0.5 + 0.5 * math.log(
        2 * math.pi) + math.log(0.1))))


def test_rewards_and_returns():
    probs = torch.tensor([[0.2, 0.5, 0.4, 0.9]])
    inc = increment_reward(probs)
    assert torch.allclose(inc, torch.tensor([[0.3, -0.1, 0.5]]))
    # with gamma = 1 the return of the first decision telescopes to p_T - p_1
    assert discounted_returns(inc, 1.0)[0, 0].item() == pytest.approx(0.9 - 0.2)
    assert torch.allclose(discounted_returns(torch.tensor([[1.0, 0.0, 2.0]]), 0.5),
                          torch.tensor([[1.5, 1.0, 2.0]]))
    random_probs = torch.tensor([[0.5, 0.5, 0.5]])
    assert torch.allclose(contrastive_reward(probs, random_probs),
                          torch.tensor([[0.0, -0.1, 0.4]]))
    with pytest.raises(ValueError, match='random_gt_probs'):
        contrastive_reward(probs, random_probs[:, :2])


def test_ppo_loss_sign_and_values():
    """A positive advantage raises the log-probability of its action, a negative one lowers it."""
    cfg = PPOConfig(gamma=0.7, clip=0.2, value_coef=0.5, entropy_coef=0.01)
    logps = torch.zeros(2, 1, requires_grad=True)
    values = torch.zeros(2, 1, requires_grad=True)
    returns = torch.tensor([[1.0], [-1.0]])
    losses = ppo_loss(logps, logps.detach(), values, torch.zeros(2, 1), returns, cfg)
    losses['loss_policy'].backward(retain_graph=True)
    assert logps.grad[0, 0] < 0 < logps.grad[1, 0]  # gradient descent: up for +A, down for -A
    # normalised returns (std 1.414 -> +-0.707); value loss 0.5 * MSE(V, R^)
    norm = 1 / math.sqrt(2)
    assert losses['loss_policy'].item() == pytest.approx(0.0, abs=1e-6)  # ratio 1, mean(A) = 0
    assert losses['loss_value'].item() == pytest.approx(0.5 * norm ** 2, rel=1e-4)
    # the clip binds for a ratio outside [0.8, 1.2] with a positive advantage
    new = torch.log(torch.tensor([[1.5], [1.0]])).requires_grad_()
    clipped = ppo_loss(new, torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), returns,
                       PPOConfig(normalize_returns=False))
    assert clipped['loss_policy'].item() == pytest.approx(-(1.2 * 1.0 + 1.0 * -1.0) / 2)
    with pytest.raises(ValueError, match='gamma'):
        PPOConfig(gamma=1.5)


def test_demo_object_crop_contains_the_box(tmp_path):
    import json
    import os

    import numpy as np

    from mmdynamic.models.cls.gfnet import DemoObjectCrop
    os.makedirs(tmp_path / 'train' / '3')
    with open(tmp_path / 'train_boxes.json', 'w') as f:
        json.dump({'3/a.png': [40, 10, 64, 34]}, f)
    img = np.zeros((128, 128, 3), np.uint8)
    img[10:34, 40:64] = 255  # the card
    crop = DemoObjectCrop(size=32)
    for _ in range(20):
        out = crop(dict(img=img.copy(), img_path=str(tmp_path / 'train' / '3' / 'a.png')))
        assert out['img'].shape == (32, 32, 3) and out['img_shape'] == (32, 32)
        assert (out['img'] == 255).all(-1).sum() == 24 * 24  # the whole card is inside
    with pytest.raises(ValueError, match='cannot hold'):
        DemoObjectCrop(size=16)(dict(img=img, img_path=str(tmp_path / 'train' / '3' / 'a.png')))


def test_ppo_moves_the_policy_to_the_rewarded_locations():
    """The stage-II update (sample, reward, returns, re-evaluate, clipped objective) learns a
    context-dependent location: (0.2, 0.8) in context A and (0.8, 0.2) in context B."""
    torch.manual_seed(0)
    policy = GFPatchPolicy(in_channels=2, feature_size=1, variant='conv', hidden_channels=16,
                           conv_channels=4, action_std=0.1)
    optim = torch.optim.Adam(policy.parameters(), lr=3e-3)
    targets = torch.tensor([[0.8, 0.2], [0.2, 0.8]])
    for _ in range(150):
        context = torch.randint(0, 2, (64, ))
        fmaps = torch.nn.functional.one_hot(context, 2).float()[:, None, :, None, None]  # N = 1
        with torch.no_grad():
            mean, _, _ = policy(fmaps[:, 0], policy.init_state(64, fmaps))
            actions, logps = policy.sample(mean)
            rewards = -(actions - targets[context]).abs().sum(1, keepdim=True)
        new_logps, values, entropies = policy.evaluate(fmaps, actions[:, None])
        losses = ppo_loss(new_logps, logps[:, None], values, entropies,
                          discounted_returns(rewards, 0.7), PPOConfig())
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    with torch.no_grad():
        fmaps = torch.eye(2)[:, :, None, None]
        mean, _, _ = policy(fmaps, policy.init_state(2, fmaps))
    assert torch.allclose(mean, targets, atol=0.08)
