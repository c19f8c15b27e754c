# Copyright (c) mmdynamic contributors. All rights reserved.
"""The SAR selectivity claim at CI size (issues #4 and #19): a short training learns masks that
refine the object more often than the background, at the target density, on two kinds of data, for
three seeds at one thread and at two threads.

Synthetic task: 32 x 32 noise images with one 8 x 8 square whose fine stripes (period 2 px,
horizontal or vertical) are the class; ``'bright'``: the square is brighter than the noise;
``'dark'``: it is darker, among two plain bright squares (brightness points at the wrong places).
In a SAR-ResNet-20 with alpha 4 the refine branch is four times wider than the base branch, the
better reader of the stripes, and the masks see where the square is in the base features. The fixes
of issue #19 are in: the mask generators' 1x1 weights start at N(0, 0.001) (the default of
:class:`MaskGenerator`, so every cell starts alike), the target applies per mask group
(``loss_type='group'``; for G = 1 the same as Eq. 10), the generators centre their pooled features
over the cells (``mask_centre=True``: the sparsity loss, the same gradient on every cell, then moves
only the biases, so where to refine is learnt from the task) and the Gumbel noise of the training
masks decays linearly from 1 to 0 (``SARScheduleHook(noise_end=0)``: the training masks become the
argmax masks of inference, so the sparsity loss holds the density that inference realises).
Adam (masks at about 7 x the learning rate), sparsity weight 5, target 1 -> 0.25 between 10 % and
30 % of training, temperature 1 -> 0.1, 250 iterations (about 17 s on one free core per case).

Claim checked (the README's criterion): pooled over all masks, object cells refined at least 1.2 x
as often as background cells by the inference (argmax) masks, at an argmax density within 0.05 of
the target. Every setting tried (1 thread, seeds 0 / 1 / 2, bright then dark; "fail" names the
criterion missed):

- 150 iterations, full noise (the previous version): bright 3.53 / 4.54 / 4.05 (pass); dark 4.50 /
  3.87 / 3.92, argmax density 0.246 / 0.246 / 0.321 (seed 2 fails the density);
- the same with sparsity weight 10: bright seed 0 fails accuracy (55.9 %), dark seed 1 the density
  (0.321);
- 150 iterations, noise 1 -> 0: bright seed 2 fails the density (0.306), dark passes (ratios 4.28 /
  1.25 / 4.05);
- 250 iterations, full noise: dark seed 1 fails the ratio (1.17);
- 250 iterations, noise 1 -> 0 (this test): bright 2.98 / 4.67 / 3.34, dark 4.49 / 1.39 / 4.08,
  argmax densities 0.248-0.293, all pass; at 2 threads bright 4.43 / 4.75 / 4.28, dark 4.45 / 1.70
  / 4.27 (0.250-0.271, all pass); held-out seeds 3 / 4 at 1 thread: bright 4.98 / 4.43, dark 4.11 /
  4.70 (0.256-0.292, all pass).

The dark kind's seed 1 is the weakest case in every setting (ratios 1.17-1.70). Without centring
(an earlier version of this test, bright only) seeds 1 and 2 gave ratios 1.06 and 0.61 and argmax
densities of 0.05-0.14.
"""
from typing import List, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.engine.hooks.sar_schedule_hook import (exponential_temperature, linear_schedule,
                                                      stepped_target)
from mmdynamic.evaluation.functional.mask_selectivity import mask_selectivity
from mmdynamic.models.backbones.sar_resnet import SARResNetCifar
from mmdynamic.models.losses.sparsity_loss import sparsity_loss

from ...conftest import torch_threads

IMG, OBJ = 32, 8
TARGET, ITERS, LR, MASK_LR, SPARSITY_WEIGHT = 0.25, 250, 3e-3, 2e-2, 5.0
NOISE_END = 0.0  # the Gumbel noise of the training masks, 1 -> NOISE_END (SARScheduleHook)


KINDS = ('bright', 'dark')
CLUTTER = 2  # plain bright squares of the 'dark' kind


def striped_squares(num: int, gen: torch.Generator, kind: str = 'bright'
                    ) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
    """(num, 3, 32, 32) images, (num, ) labels (0 horizontal, 1 vertical stripes) and per image a
    (1, 4) x1, y1, x2, y2 box of its square.

    ``'bright'``: the striped square is brighter than the noise. ``'dark'``: it is darker, and two
    plain 8 x 8 squares as bright as the bright kind's are clutter (drawn first, the striped square
    over them), so brightness points at the wrong places and only the stripes tell the object.
    """
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    images = 0.3 * torch.randn(num, 3, IMG, IMG, generator=gen)
    images += 0.5 * torch.randn(num, 3, 1, 1, generator=gen)
    labels = torch.randint(0, 2, (num, ), generator=gen)
    index = torch.arange(OBJ)
    level = 1.0 if kind == 'bright' else -1.0
    boxes = []
    for b in range(num):
        if kind == 'dark':
            for _ in range(CLUTTER):
                row, col = torch.randint(0, IMG - OBJ + 1, (2, ), generator=gen).tolist()
                images[b, :, row:row + OBJ, col:col + OBJ] = 1.0
        row, col = torch.randint(0, IMG - OBJ + 1, (2, ), generator=gen).tolist()
        parity = index[:, None] if labels[b] == 0 else index[None, :]
        stripes = (parity % 2).float().expand(OBJ, OBJ) * 2 - 1
        images[b, :, row:row + OBJ, col:col + OBJ] = level + 0.8 * stripes
        boxes.append(torch.tensor([[col, row, col + OBJ, row + OBJ]], dtype=torch.float32))
    return images, labels, boxes


def train_and_measure(seed: int = 0, kind: str = 'bright') -> dict:
    """Train with the demo recipe and measure accuracy, selectivity and densities on 256 images."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(1 + seed)
    # fusion='att' (paper Eq. 5): the fusion this check was tuned with (the CIFAR default is 'add')
    backbone = SARResNetCifar(depth=20, width=0.5, groups=1, alpha=4, mask_grid=(4, 4, 2),
                              mask_bias_init=(0.0, 2.0), fusion='att', mask_centre=True)
    backbone.init_weights()
    head = nn.Linear(backbone.out_channels[-1], 2)
    mask_params = [p for n, p in backbone.named_parameters() if '.masks.' in n]
    other = [p for n, p in backbone.named_parameters() if '.masks.' not in n]
    optimizer = torch.optim.Adam([
        dict(params=other + list(head.parameters()), lr=LR),
        dict(params=mask_params, lr=MASK_LR),
    ])
    for it in range(ITERS):
        backbone.tau = exponential_temperature(it / ITERS, 1.0, 0.1)
        backbone.gumbel_noise = linear_schedule(it / ITERS, 1.0, NOISE_END)
        images, labels, _ = striped_squares(32, gen, kind)
        logits = head(backbone(images)[-1].mean((2, 3)))
        loss = F.cross_entropy(logits, labels) + SPARSITY_WEIGHT * sparsity_loss(
            backbone.last_masks, stepped_target(it / ITERS, TARGET, 0.1, 0.3), 'group')
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    backbone.eval()
    images, labels, boxes = striped_squares(256, torch.Generator().manual_seed(12345), kind)
    with torch.no_grad():
        accuracy = (head(backbone(images)[-1].mean((2, 3))).argmax(1) == labels).float().mean()
        argmax_masks = backbone.last_masks
        backbone.eval_stochastic = True
        torch.manual_seed(seed)
        backbone(images)
        sampled = torch.stack([m.mean() for m in backbone.last_masks]).mean().item()
    result = mask_selectivity(argmax_masks, boxes=boxes, image_size=(IMG, IMG))
    return dict(accuracy=accuracy.item(), selectivity=result, sampled_density=sampled,
                argmax_density=torch.stack([m.mean() for m in argmax_masks]).mean().item())


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('seed, threads', [(0, 1), (1, 1), (2, 1), (0, 2)])
def test_short_training_refines_the_object_at_the_target(seed, threads, kind):
    with torch_threads(threads):
        out = train_and_measure(seed, kind)
    result = out['selectivity']
    assert out['accuracy'] > 0.9, out
    assert result.num_object_cells > 0 and result.num_background_cells > 0
    # the claim, on the inference (argmax) masks: the target density (within 0.05) and the object
    # refined >= 1.2 x as often as the background
    assert abs(out['argmax_density'] - TARGET) <= 0.05, out
    assert result.object_rate >= 1.2 * result.background_rate, out
    # the sampled masks of training stay near it (0.23-0.32 measured: the logits are not saturated)
    assert abs(out['sampled_density'] - TARGET) <= 0.1, out
