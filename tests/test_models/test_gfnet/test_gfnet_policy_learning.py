# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet's stage II learns where to look: a small version of the demo claim that runs in seconds.

A 32 px canvas holds one 8 px card at a random place. The card is bright (the glance sees where it is)
and striped, vertically for class 0 and horizontally for class 1, at a low contrast under pixel noise
(the 8 px glance cannot read the stripes; an 8 px patch on the card can). The encoders are a fixed,
parameter-free "pretrained" feature extractor (brightness and the two stripe energies on a 4 x 4 map),
so stage I only fits the recurrent classifier; stage II then trains the patch policy with the model's
own PPO loss (contrastive reward, one PPO epoch per batch), everything else frozen. On held-out canvases
the policy's mean action must beat uniformly random patch locations at t = T by a clear margin.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.structures import DataSample

import mmdynamic.models  # noqa: F401

CANVAS, CARD, PATCH = 32, 8, 8


class CardFeatures(nn.Module):
    """A fixed feature extractor (no parameters): per 2 x 2 cell the brightness and the mean
    absolute horizontal minus vertical difference (positive on vertical stripes, negative on
    horizontal ones, about zero on noise). (B, 3, S, S) -> a tuple with one (B, 2, S / 2, S / 2)
    map, like an mmpretrain backbone."""

    def forward(self, x):
        gray = x.mean(1, keepdim=True)
        dx = F.pad((gray[..., :, 1:] - gray[..., :, :-1]).abs(), (0, 1, 0, 0))
        dy = F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1))
        return (F.avg_pool2d(torch.cat([gray, 4 * (dx - dy)], 1), 2), )

    def init_weights(self):
        pass


def canvases(num, generator):
    """(num, 3, 32, 32) images and their labels: noise, and a bright card whose stripes give the
    class."""
    labels = torch.randint(0, 2, (num, ), generator=generator)
    images = 0.3 * torch.randn(num, 1, CANVAS, CANVAS, generator=generator)
    stripes = (torch.arange(CARD) % 2 * 2 - 1).float() * 0.3  # +-0.3: under the noise per pixel
    corners = torch.randint(0, CANVAS - CARD + 1, (num, 2), generator=generator)
    for i in range(num):
        top, left = corners[i].tolist()
        pattern = stripes[None, :].expand(CARD, CARD) if labels[i] == 0 else \
            stripes[:, None].expand(CARD, CARD)
        images[i, 0, top:top + CARD, left:left + CARD] += 1.5 + pattern
    return images.expand(-1, 3, -1, -1).contiguous(), labels


def build(stage, **kwargs):
    init_default_scope('mmpretrain')
    encoder = dict(backbone=dict(type=CardFeatures), in_channels=2)
    return MODELS.build(dict(
        type='GFNet', num_classes=2, patch_size=PATCH, num_steps=3, global_encoder=encoder,
        classifier=dict(type='recurrent', hidden_channels=16), glance_interp='bilinear',
        policy=dict(variant='conv', conv_channels=8, hidden_channels=32, feature_size=4,
                    action_std=0.15),
        train_stage=stage, reward='contrastive', **kwargs))


def train(model, steps, lr, generator, batch_size=64):
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(steps):
        images, labels = canvases(batch_size, generator)
        samples = [DataSample().set_gt_label(int(y)) for y in labels]
        losses = model.loss(images, samples)
        loss = sum(v for k, v in losses.items() if k.startswith('loss'))
        optim.zero_grad()
        loss.backward()
        optim.step()


def accuracies(model, images, labels, locations, seed=0):
    model.test_locations = locations
    model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        logits = model.forward_exits(images)
    return [(lg.argmax(-1) == labels).float().mean().item() * 100 for lg in logits]


def test_ppo_policy_beats_random_locations_on_held_out_canvases():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    stage1 = build(1)
    train(stage1, steps=150, lr=1e-2, generator=generator)
    stage2 = build(2)
    stage2.load_state_dict(stage1.state_dict())
    assert [n for n, p in stage2.named_parameters() if p.requires_grad] == [
        n for n, _ in stage2.named_parameters() if n.startswith('policy.')]
    frozen = {k: v.clone() for k, v in stage2.state_dict().items() if not k.startswith('policy.')}
    train(stage2, steps=150, lr=3e-3, generator=generator)
    assert all(torch.equal(v, stage2.state_dict()[k]) for k, v in frozen.items())

    images, labels = canvases(600, torch.Generator().manual_seed(123))  # held out
    learned = accuracies(stage2, images, labels, 'mean')
    random = [accuracies(stage2, images, labels, 'random', seed=s) for s in range(3)]
    random_last = sum(r[-1] for r in random) / len(random)
    # the glance cannot read the stripes, random patches seldom land on the card, the policy's do
    assert learned[0] < 65
    # (measured: 50.3 / 79.0 / 88.0 with the policy, 50.3 / 56.3 / 61.8 with random patches)
    assert learned[-1] >= random_last + 15, (learned, random)
    assert learned[-1] >= 80, (learned, random)

