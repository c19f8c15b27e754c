# Copyright (c) mmdynamic contributors. All rights reserved.
"""A short MGNet training in which the zoomed glimpse beats the whole-image glimpse (CI-sized).

The images carry the class in a fine texture (2 px wide stripes, vertical for class 0, horizontal for
class 1, random phase and colour, noise on top) that glimpse 1 cannot resolve: the whole 61 px image is
sampled every 4 px into a 16 px glimpse, i.e. always at the same stripe phase, so it shows a flat colour
whatever the class. A glimpse of side 0.25 samples every pixel and shows the stripes. The texture fills
the image, so this checks the zoom (glimpse generator, shared encoder, fusion, per-exit training and
prediction), not the localisation's aim. The demo on the digit-card data (configs/mgnet/README.md) is the
end-to-end counterpart.

Seeds 0, 1, 2 at 1 thread and seed 0 at 2 threads (issue #19: the claim is a distribution). Measured
(top-1 on the 200 held-out images, 2 classes), glimpse 1 / glimpse 2: seed 0 49.5 / 90.5 %, seed 1
51.0 / 96.0 %, seed 2 56.0 / 84.5 % (1 thread), seed 0 47.0 / 91.0 % (2 threads); ~2 s of CPU each.
"""
import pytest
import torch
from mmpretrain.structures import DataSample

import mmdynamic.models  # noqa: F401
from mmdynamic.registry import MODELS

from ...conftest import torch_threads

SIZE = 61  # (SIZE - 1) / (GLIMPSE - 1) = 4: glimpse 1 samples every 4th pixel, one stripe period
GLIMPSE = 16


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')


def stripe_images(num: int, seed: int, noise: float = 0.5):
    """(num, 3, SIZE, SIZE) images and (num, ) labels: 0 vertical, 1 horizontal stripes of period 4."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (num, ), generator=gen)
    phase = torch.randint(0, 4, (num, 1, 1), generator=gen)
    coord = torch.arange(SIZE)
    vertical = ((coord[None, None, :] + phase) // 2 % 2).expand(num, SIZE, SIZE)
    wave = torch.where(labels[:, None, None] == 0, vertical, vertical.transpose(1, 2)).float()
    color = torch.randn(num, 3, 1, 1, generator=gen).sign()
    images = (2 * wave[:, None] - 1) * color + noise * torch.randn(num, 3, SIZE, SIZE, generator=gen)
    return images, labels


def exit_accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        preds = model.predict(images)
    logits = torch.stack([p.exit_logits for p in preds], dim=1)  # (K, N, C)
    return ((logits.argmax(-1) == labels).float().mean(-1) * 100).tolist()


@pytest.mark.parametrize('seed, threads', [(0, 1), (1, 1), (2, 1), (0, 2)])
def test_short_training_zoomed_glimpse_beats_glimpse_one(seed, threads):
    """Seeds 0-2 at 1 thread and seed 0 at 2 threads: the seed sets the initial weights, the order of
    the batches and the training images (the validation images are the same for every seed)."""
    with torch_threads(threads):
        first, second = _train_and_evaluate(seed)
    # measured: see the module docstring
    assert first < 65, f'glimpse 1 should not resolve the texture: {first:.1f} %'
    assert second > 80 and second > first + 25, f'glimpse 2 {second:.1f} % vs glimpse 1 {first:.1f} %'


def _train_and_evaluate(seed):
    """Top-1 (%) at glimpses 1 and 2 on 200 held-out images after 10 epochs on 256 images."""
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='MGNet',
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, )),
        num_classes=2, num_glimpses=2, glimpse_size=GLIMPSE, scale_range=(0.25, 0.25)))
    train_x, train_y = stripe_images(256, seed=10 * seed)  # seed 0: the images of the first version
    val_x, val_y = stripe_images(200, seed=1)
    # the premise: without noise, glimpse 1 is flat and a zoomed glimpse shows the stripes
    clean, _ = stripe_images(8, seed=2, noise=0.0)
    glance = model.glimpse(clean, torch.tensor([[1., 0., 0.]]).repeat(8, 1))
    zoom = model.glimpse(clean, torch.tensor([[0.25, 0.3, -0.2]]).repeat(8, 1))
    assert glance.shape == zoom.shape == (8, 3, GLIMPSE, GLIMPSE)
    assert glance.std(dim=(2, 3)).max() < 1e-4 and zoom.std(dim=(2, 3)).min() > 0.5

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    for _ in range(10):
        model.train()
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            samples = [DataSample().set_gt_label(int(y)) for y in train_y[idx]]
            losses = model.loss(train_x[idx], samples)
            loss = sum(v for k, v in losses.items() if k.startswith('loss'))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return exit_accuracy(model, val_x, val_y)
