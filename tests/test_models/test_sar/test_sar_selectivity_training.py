# Copyright (c) mmdynamic contributors. All rights reserved.
"""The SAR selectivity claim at CI size (issues #4 and #19): a short training learns masks that
refine the object more often than the background, at the target density, for three seeds at one
thread and at two threads.

Synthetic task: 32 x 32 noise images with one bright 8 x 8 square whose fine stripes (period 2 px,
horizontal or vertical) are the class. In a SAR-ResNet-20 with alpha 4 the refine branch is four
times wider than the base branch, the better reader of the stripes, and the masks see where the
square is in the base features. The fixes of issue #19 are in: the mask generators' 1x1 weights
start at N(0, 0.001) (the default of :class:`MaskGenerator`, so every cell starts alike), the target
applies per mask group (``loss_type='group'``; for G = 1 the same as Eq. 10) and the generators
centre their pooled features over the cells (``mask_centre=True``: the sparsity loss, the same
gradient on every cell, then moves only the biases, so where to refine is learnt from the task).
Adam (masks at about 7 x the learning rate), sparsity weight 5, target 1 -> 0.25 between 10 % and
30 % of training, temperature 1 -> 0.1, 150 iterations (about 30 s on one free core per case).

Claim checked (the README's criterion): pooled over all masks, object cells refined at least 1.2 x
as often as background cells by the inference (argmax) masks, at an argmax density within 0.05 of
the target. Measured at 1 thread, seeds 0 / 1 / 2: ratios 3.53 / 4.54 / 4.05, argmax densities
0.24-0.29. Without centring (the previous version of this test, which checked seed 0 and the
sampled density only) seeds 1 and 2 gave ratios 1.06 and 0.61 and argmax densities of 0.05-0.14.
"""
from typing import List, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.engine.hooks.sar_schedule_hook import exponential_temperature, stepped_target
from mmdynamic.evaluation.functional.mask_selectivity import mask_selectivity
from mmdynamic.models.backbones.sar_resnet import SARResNetCifar
from mmdynamic.models.losses.sparsity_loss import sparsity_loss

IMG, OBJ = 32, 8
TARGET, ITERS, LR, MASK_LR, SPARSITY_WEIGHT = 0.25, 150, 3e-3, 2e-2, 5.0


def striped_squares(num: int, gen: torch.Generator
                    ) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
    """(num, 3, 32, 32) images, (num, ) labels (0 horizontal, 1 vertical stripes) and per image a
    (1, 4) x1, y1, x2, y2 box of its square."""
    images = 0.3 * torch.randn(num, 3, IMG, IMG, generator=gen)
    images += 0.5 * torch.randn(num, 3, 1, 1, generator=gen)
    labels = torch.randint(0, 2, (num, ), generator=gen)
    index = torch.arange(OBJ)
    boxes = []
    for b in range(num):
        row, col = torch.randint(0, IMG - OBJ + 1, (2, ), generator=gen).tolist()
        parity = index[:, None] if labels[b] == 0 else index[None, :]
        stripes = (parity % 2).float().expand(OBJ, OBJ) * 2 - 1
        images[b, :, row:row + OBJ, col:col + OBJ] = 1.0 + 0.8 * stripes
        boxes.append(torch.tensor([[col, row, col + OBJ, row + OBJ]], dtype=torch.float32))
    return images, labels, boxes


def train_and_measure(seed: int = 0) -> dict:
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
        images, labels, _ = striped_squares(32, gen)
        logits = head(backbone(images)[-1].mean((2, 3)))
        loss = F.cross_entropy(logits, labels) + SPARSITY_WEIGHT * sparsity_loss(
            backbone.last_masks, stepped_target(it / ITERS, TARGET, 0.1, 0.3), 'group')
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    backbone.eval()
    images, labels, boxes = striped_squares(256, torch.Generator().manual_seed(12345))
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


@pytest.mark.parametrize('seed, threads', [(0, 1), (1, 1), (2, 1), (0, 2)])
def test_short_training_refines_the_object_at_the_target(seed, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = train_and_measure(seed)
    finally:
        torch.set_num_threads(before)
    result = out['selectivity']
    assert out['accuracy'] > 0.9, out
    assert result.num_object_cells > 0 and result.num_background_cells > 0
    # the claim, on the inference (argmax) masks: the target density (within 0.05) and the object
    # refined >= 1.2 x as often as the background
    assert abs(out['argmax_density'] - TARGET) <= 0.05, out
    assert result.object_rate >= 1.2 * result.background_rate, out
    # the sampled masks of training stay near it (0.23-0.32 measured: the logits are not saturated)
    assert abs(out['sampled_density'] - TARGET) <= 0.1, out
