# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus learns when and where to look: a small version of the demo claim
(configs/uniadafocus/README.md) that runs in seconds, on two kinds of data, three seeds and two
thread counts (the claim is a distribution, issue #19).

Tiny videos of T_0 = 8 frames of 32 px: pixel noise and one 8 px card at a fixed random place. The
card shows its "digit" in 2 consecutive frames only (so exactly one of the T_G = 4 glance frames of
the test protocol sees it): there it carries stripes (vertical for class 0, horizontal for class 1;
period 2 px, under the noise per pixel), a faint colour tint (red or green, by class) and ink
that makes it brighter (darker for a dark card). In the other frames the card is plain. Two kinds
of video, located by different cues:

- ``'bright'``: the card is brighter than the noise;
- ``'dark'``: the card is darker than the noise and two plain 6 px squares as bright as the bright
  card are clutter (in every frame), so the bright spots are exactly the wrong places to look.

The encoders are fixed, parameter-free "pretrained" feature extractors: f_G takes the brightness and
the red - green difference of 8 x 8 cells (4 x 4 maps: the tint, faint over a whole frame, is its
only class cue; the stripes average out in a cell), f_L the brightness, red - green and the stripe
energy of 2 x 2 cells of the P = 16 px patches (it reads the stripes when its patch holds the card).
The model trains through its own ``train_step`` (Adam, every loss of Eq. 22: the classifier, FC_G /
FC_L, the spatial policy by FC_Aux on the box crops of the glance maps, the temporal policy by the
Monte-Carlo loss). On held-out videos the learned policy (frame weights + boxes) must beat, with the
same classifier, uniformly spread focus frames with random P x P patches (the baseline of the demo,
``spatial_mode='random', temporal_mode='uniform'``), its frame weights must sit on the glance frame
that shows the digit, and its boxes must hold the whole card clearly more often than the same
boxes at random places, for every kind, seed and thread count.

Measured (1 thread unless said; held-out top-1 at the last exit, learned vs the mean of 3 random /
uniform draws; weight mass on the digit's glance frame; focus boxes holding the whole card; 400
held-out videos, 500 steps of batch 32):

| kind, seed | top-1 learned / random | mass (uniform 0.25) | holding: learned / same-size / PxP |
|---|---|---|---|
| bright 0 | 95.0 / 61.3 (+33.7) | 0.878 | 0.363 / 0.175 / 0.098 |
| bright 1 | 98.5 / 63.7 (+34.8) | 0.971 | 0.434 / 0.117 / 0.098 |
| bright 2 | 98.5 / 62.2 (+36.3) | 0.963 | 0.403 / 0.116 / 0.098 |
| bright 0 (2 threads) | 95.0 / 66.7 (+28.3) | 0.878 | 0.346 / 0.176 / 0.098 |
| dark 0 | 95.5 / 62.1 (+33.4) | 0.789 | 0.301 / 0.122 / 0.098 |
| dark 1 | 95.0 / 70.8 (+24.2) | 0.999 | 0.216 / 0.116 / 0.098 |
| dark 2 | 96.3 / 71.2 (+25.1) | 0.987 | 0.260 / 0.116 / 0.098 |
| dark 0 (2 threads) | 93.8 / 73.1 (+20.7) | 0.789 | 0.331 / 0.117 / 0.098 |

("same-size": the same boxes at uniformly random places; "PxP": random P x P patches.) The
thresholds (top-1 at least 10 points above random / uniform, weight mass at least 0.6, boxes holding
the card at least 1.5 times as often as same-size boxes) then have margins of 10.7+ points, 0.19 and
1.86 / 1.5 (the weakest: dark, seed 1). Without a learned policy the check fails: the policy
networks and FC_Aux at a zero learning rate (bright / dark, seed 0) give +1.6 / -1.8 points, weight
mass 0.268 / 0.271 and 0.84 / 0.99 times the holding rate of same-size boxes (the untrained boxes
are 23 px, larger than the learned 16-18 px); random boxes (``spatial_mode='random'``, the temporal
policy still learning; bright, seed 0) give +1.8 points and 0.87 times.
``test_claim_fails_without_a_learned_policy`` keeps those two cases. The spatial policy is
the weak part, as in the demo (boxes hold the card 1.9-3.7 times as often as same-size random boxes,
the demo 2.4 times): FC_Aux sees 8 px cells of the glance maps only. A run takes 6-8 s of CPU at
1 thread; 2 threads on the busy 2-core machine took 6-28 s (up to 160 s at times: the OpenMP threads
wait for a core).
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.structures import ActionDataSample
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
from mmdynamic.registry import MODELS

from ...conftest import torch_threads

FRAME, CARD, PATCH = 32, 8, 16
NUM_CANDIDATES, NUM_GLANCE, NUM_FOCUS, SHOWN = 8, 4, 2, 2
KINDS = ('bright', 'dark')
CELL = 8  # side of f_G's cells
CLUTTER = 6  # side of the plain bright squares of the 'dark' kind
TINT = 0.1  # red - green offset of the card while it shows the digit (+-, by class)
INK = 0.5  # brightness the digit adds to the card (brighter or darker, as the card)


class CellMeans(nn.Module):
    """f_G: per 8 x 8 cell the brightness and the red - green difference. (N, 3, 32, 32) -> a tuple
    with one (N, 2, 4, 4) map, like an OpenMMLab backbone. No parameters."""

    def forward(self, x):
        cells = F.avg_pool2d(x, CELL)
        return (torch.cat([cells.mean(1, keepdim=True), cells[:, :1] - cells[:, 1:2]], 1), )

    def init_weights(self):
        pass


class PatchFeatures(nn.Module):
    """f_L: per 2 x 2 cell the brightness, red - green and the mean absolute horizontal minus
    vertical difference (positive on vertical stripes, negative on horizontal ones, about zero on
    noise). (N, 3, 16, 16) -> a tuple with one (N, 3, 8, 8) map. No parameters."""

    def forward(self, x):
        gray = x.mean(1, keepdim=True)
        dx = F.pad((gray[..., :, 1:] - gray[..., :, :-1]).abs(), (0, 1, 0, 0))
        dy = F.pad((gray[..., 1:, :] - gray[..., :-1, :]).abs(), (0, 0, 0, 1))
        return (F.avg_pool2d(torch.cat([gray, x[:, :1] - x[:, 1:2], 4 * (dx - dy)], 1), 2), )

    def init_weights(self):
        pass


def videos(num, generator, kind='bright'):
    """(num, T_0, 3, 32, 32) videos, their labels, the card boxes (num, 4) as (y1, x1, y2, x2) and
    the first frame (num, ) of the SHOWN frames that show the digit (see the module)."""
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    labels = torch.randint(0, 2, (num, ), generator=generator)
    clips = 0.3 * torch.randn(num, NUM_CANDIDATES, 3, FRAME, FRAME, generator=generator)
    corners = torch.randint(0, FRAME - CARD + 1, (num, 2), generator=generator)
    starts = torch.randint(0, NUM_CANDIDATES - SHOWN + 1, (num, ), generator=generator)
    clutter = torch.randint(0, FRAME - CLUTTER + 1, (num, 2, 2), generator=generator)
    stripes = (torch.arange(CARD) % 2 * 2 - 1).float() * 0.3  # +-0.3: under the noise per pixel
    level = 1.0 if kind == 'bright' else -1.0
    for i in range(num):
        if kind == 'dark':  # drawn first: the card covers any overlap
            for top, left in clutter[i].tolist():
                clips[i, :, :, top:top + CLUTTER, left:left + CLUTTER] += 1.0
        top, left = corners[i].tolist()
        card = clips[i, :, :, top:top + CARD, left:left + CARD]
        card += level  # a view: in place
        shown = slice(int(starts[i]), int(starts[i]) + SHOWN)
        pattern = stripes[None, :].expand(CARD, CARD) if labels[i] == 0 else \
            stripes[:, None].expand(CARD, CARD)
        tint = torch.tensor([TINT, -TINT, 0.]) * (1 if labels[i] == 0 else -1)
        card[shown] += pattern + tint[:, None, None] + INK * level
    boxes = torch.cat([corners, corners + CARD], 1)
    return clips, labels, boxes, starts


def build(**kwargs):
    init_default_scope('mmaction')
    cfg = dict(
        type='UniAdaFocus', backbone=dict(type=CellMeans), local_backbone=dict(type=PatchFeatures),
        num_classes=2, global_channels=2, local_channels=3, feature_size=FRAME // CELL,
        num_candidates=NUM_CANDIDATES, num_glance=NUM_GLANCE, num_focus=NUM_FOCUS,
        patch_size=PATCH, min_box_size=PATCH, spatial_hidden=16, temporal_hidden=16,
        fusion_hidden=32, dropout=0.0, size_reg=0.0, num_mc_samples=32, random_patch_branch=False,
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCHW'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


POLICIES = ('spatial_policy', 'temporal_policy', 'fc_aux')


def train(model, steps, lr, generator, kind, batch_size=32, policy_lr=None):
    """``steps`` runner iterations of ``model.train_step`` (Adam; the policy networks and FC_Aux at
    ``policy_lr``, default ``lr``)."""
    policy = [p for n, p in model.named_parameters() if n.split('.')[0] in POLICIES]
    rest = [p for n, p in model.named_parameters() if n.split('.')[0] not in POLICIES]
    groups = [dict(params=rest)]
    if policy:
        groups.append(dict(params=policy, lr=lr if policy_lr is None else policy_lr))
    optim_wrapper = OptimWrapper(torch.optim.Adam(groups, lr=lr))
    model.train()
    for _ in range(steps):
        clips, labels, _, _ = videos(batch_size, generator, kind)
        samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
        model.train_step(dict(inputs=list(clips), data_samples=samples), optim_wrapper)


def card_area_inside(boxes, card):
    """The fraction of the card (..., 4) (y1, x1, y2, x2) inside each box (..., 4)
    (cy, cx, h, w)."""
    half = boxes[..., 2:] / 2
    lo = torch.maximum(boxes[..., :2] - half, card[..., :2])
    hi = torch.minimum(boxes[..., :2] + half, card[..., 2:])
    return (hi - lo).clamp(min=0).prod(-1) / (card[..., 2:] - card[..., :2]).prod(-1)


def holds(boxes, card):
    """Whether each box (..., 4) (cy, cx, h, w) holds the whole card (..., 4) (y1, x1, y2, x2)."""
    half = boxes[..., 2:] / 2
    lo, hi = boxes[..., :2] - half, boxes[..., :2] + half
    return ((lo <= card[..., :2] + 1e-4) & (hi >= card[..., 2:] - 1e-4)).all(-1)


def evaluate(model, clips, labels, cards, starts):
    """Held-out statistics of the learned policy (test protocol) and of random P x P patches on
    uniformly spread frames (same classifier, mean of 3 draws)."""
    model.eval()
    with torch.no_grad():
        out = model.forward_steps(clips)
        glance_shows = (out['index'] >= starts[:, None]) & (out['index'] < starts[:, None] + SHOWN)
        focus_shows = ((out['focus_index'] >= starts[:, None])
                       & (out['focus_index'] < starts[:, None] + SHOWN))
        stats = dict(
            top1=(out['steps'][:, -1].argmax(-1) == labels).float().mean().item() * 100,
            glance_top1=(out['steps'][:, NUM_GLANCE - 1].argmax(-1) == labels).float().mean().item()
            * 100,
            mass=(out['frame_weights'] * glance_shows).sum(1).mean().item(),
            focus_shows=focus_shows.float().mean().item(),
            holds=holds(out['boxes'], cards[:, None]).float().mean().item(),
            area=card_area_inside(out['boxes'], cards[:, None]).mean().item(),
            side=out['boxes'][..., 2:].mean().item())
        # the same boxes at uniformly random places (3 draws)
        sides = out['boxes'][..., 2:]
        draws = torch.Generator().manual_seed(0)
        moved = [torch.cat([torch.rand(sides.shape, generator=draws) * (FRAME - sides) + sides / 2,
                            sides], -1) for _ in range(3)]
        stats['same_size_holds'] = sum(
            holds(b, cards[:, None]).float().mean().item() for b in moved) / 3
        stats['same_size_area'] = sum(
            card_area_inside(b, cards[:, None]).mean().item() for b in moved) / 3
        modes = model.spatial_mode, model.temporal_mode
        model.spatial_mode, model.temporal_mode = 'random', 'uniform'
        random_top1, random_holds = [], []
        for seed in range(3):
            torch.manual_seed(seed)
            rand = model.forward_steps(clips)
            right = rand['steps'][:, -1].argmax(-1) == labels
            random_top1.append(right.float().mean().item() * 100)
            random_holds.append(holds(rand['boxes'], cards[:, None]).float().mean().item())
        model.spatial_mode, model.temporal_mode = modes
    stats['random_top1'] = sum(random_top1) / 3
    stats['random_holds'] = sum(random_holds) / 3
    return stats


def learn(kind, seed, steps=500, lr=3e-3, policy_lr=None, batch_size=32, **kwargs):
    """Train a model (``kwargs`` change its config) and evaluate it on 400 held-out videos."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build(**kwargs)
    train(model, steps, lr, generator, kind, batch_size=batch_size, policy_lr=policy_lr)
    return evaluate(model, *videos(400, torch.Generator().manual_seed(123), kind))


def check(stats):
    """The claim; returns the failed conditions."""
    failed = []
    if stats['top1'] < stats['random_top1'] + 10:
        failed.append('top-1 not 10 points above random patches / uniform frames')
    if stats['mass'] < 0.6:  # uniform weights: 1 / T_G = 0.25 on the digit's glance frame
        failed.append('frame weights not on the glance frame that shows the digit')
    if stats['holds'] < 1.5 * stats['same_size_holds']:
        failed.append('boxes do not hold the card 1.5 times as often as boxes of the same sizes at '
                      'random places')
    return failed


@pytest.mark.parametrize('kind, seed, threads', [
    ('bright', 0, 1), ('bright', 1, 1), ('bright', 2, 1), ('bright', 0, 2),
    ('dark', 0, 1), ('dark', 1, 1), ('dark', 2, 1), ('dark', 0, 2)])
def test_policy_beats_random_patches_and_uniform_frames(kind, seed, threads):
    with torch_threads(threads):
        stats = learn(kind, seed)
    assert not check(stats), (check(stats), stats)


@pytest.mark.parametrize('kwargs, failures', [
    (dict(policy_lr=0.0), 3),  # the policy networks and FC_Aux do not learn
    (dict(spatial_mode='random'), 2),  # random P x P patches (the temporal policy still learns)
], ids=['policy_lr0', 'random_boxes'])
def test_claim_fails_without_a_learned_policy(kwargs, failures, single_thread):
    """The check above is not vacuous: without a learned policy (its learning rate at zero) every
    condition fails; with random boxes the top-1 margin and the boxes' condition fail."""
    stats = learn('bright', 0, **kwargs)
    assert len(check(stats)) == failures, (check(stats), stats)
