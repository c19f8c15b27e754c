# Copyright (c) mmdynamic contributors. All rights reserved.
"""PGD and ImageNet-C corruptions on mmpretrain classifiers (any classifier, and MGNet's exits)."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

import mmdynamic.models  # noqa: F401
from mmdynamic.evaluation.robustness import (CORRUPTIONS, ImageCorruption, PGDConfig,
                                             classifier_exit_logits, corrupt_image,
                                             corruption_pipeline, evaluate_pgd,
                                             summarize_corruptions)
from mmdynamic.registry import MODELS


class _Flatten(nn.Module):

    def forward(self, x):
        return (x.flatten(1), )


def linear_classifier(num_classes=4, size=8, pixel=False):
    """An undefended mmpretrain ImageClassifier whose logits are ``W x`` (100 % clean accuracy on
    the labels it defines)."""
    pre = dict(type='ClsDataPreprocessor', num_classes=num_classes)
    if pixel:
        pre.update(mean=[127.5] * 3, std=[64.0] * 3)
    model = MODELS.build(dict(
        type='mmpretrain.ImageClassifier', backbone=dict(type='mmpretrain.LeNet5'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=3 * size * size),
        data_preprocessor=pre))
    model.backbone = _Flatten()
    torch.manual_seed(0)
    nn.init.normal_(model.head.fc.weight)
    nn.init.zeros_(model.head.fc.bias)
    return model


def batches(model, num=2, batch=16, size=8, pixel=False):
    torch.manual_seed(1)
    out = []
    for _ in range(num):
        if pixel:
            imgs = torch.randint(0, 256, (batch, 3, size, size)).float()
            x = (imgs - 127.5) / 64.0
        else:
            imgs = x = torch.randn(batch, 3, size, size)
        labels = model.head(model.extract_feat(x)).argmax(-1)
        out.append(dict(inputs=list(imgs), data_samples=[DataSample().set_gt_label(int(y))
                                                         for y in labels]))
    return out


def test_pgd_reduces_accuracy_of_undefended_model():
    model = linear_classifier()
    loader = batches(model)
    result = evaluate_pgd(model, loader, PGDConfig(eps=0.05, step_size=0.02, steps=(0, 1, 5)))
    acc = {s: a[0] for s, a in result.accuracy.items()}
    assert result.num_samples == 32 and acc[0] == 100.0
    assert acc[1] < 100 and acc[5] < 50 and acc[5] < acc[1]  # measured: 100 / 78 / 44
    # a larger budget is at least as strong; eps 0 changes nothing
    strong = evaluate_pgd(model, loader, PGDConfig(eps=0.2, step_size=0.05, steps=(5, )))
    assert strong.accuracy[5][0] <= acc[5]
    none = evaluate_pgd(model, loader, PGDConfig(eps=0.0, step_size=0.05, steps=(3, )))
    assert none.accuracy[3][0] == 100.0


def test_pgd_pixel_space_stays_in_image_range():
    from mmdynamic.evaluation.robustness import pgd_attack_steps
    model = linear_classifier(pixel=True)
    model.eval()
    loader = batches(model, num=1, pixel=True)
    data = model.data_preprocessor(loader[0], False)
    labels = torch.cat([d.gt_label for d in data['data_samples']])
    cfg = PGDConfig(eps=4 / 255, step_size=1 / 255, steps=(0, 3), space='pixel', random_start=True)
    got = dict(pgd_attack_steps(model, data["inputs"], labels, cfg))
    assert set(got) == {0, 3}
    result = evaluate_pgd(model, loader, cfg)
    assert result.accuracy[3][0] < 100.0
    with pytest.raises(ValueError, match='space'):
        PGDConfig(space='lab')


def test_pgd_on_mgnet_reports_every_exit():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MGNet', num_classes=3, num_glimpses=2, glimpse_size=16,
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, )),
        data_preprocessor=dict(num_classes=3, mean=[127.5] * 3, std=[64.0] * 3)))
    imgs = torch.randint(0, 256, (4, 3, 32, 32)).float()
    loader = [dict(inputs=list(imgs), data_samples=[DataSample().set_gt_label(i % 3)
                                                    for i in range(4)])]
    result = evaluate_pgd(model, loader, PGDConfig(steps=(0, 2)))
    assert sorted(result.accuracy) == [0, 2] and all(len(v) == 2 for v in result.accuracy.values())
    assert classifier_exit_logits(model, imgs).shape == (2, 4, 3)


def test_corruptions_change_pixels_more_with_severity():
    rng = np.random.RandomState(0)
    img = np.clip(rng.normal(128, 40, (48, 48, 3)), 0, 255).astype(np.uint8)
    img[12:36, 12:36] = 230  # some structure for the blurs
    changes = {}
    for name in CORRUPTIONS:
        diffs = []
        for severity in (1, 5):
            np.random.seed(0)
            out = corrupt_image(img, name, severity)
            assert out.shape == img.shape and out.dtype == np.uint8, name
            diffs.append(np.abs(out.astype(float) - img).mean())
        changes[name] = diffs
        assert diffs[0] > 0, name
    # severity 5 changes the image more than severity 1 for (almost) every corruption
    stronger = [n for n, (d1, d5) in changes.items() if d5 > d1]
    assert len(stronger) >= 13, changes
    # BGR in, BGR out: the colour order is handled
    np.random.seed(0)
    bgr = corrupt_image(img[..., ::-1], 'brightness', 3, rgb=False)
    np.random.seed(0)
    assert np.array_equal(bgr[..., ::-1], corrupt_image(img, 'brightness', 3))
    with pytest.raises(ValueError, match='unknown corruption'):
        corrupt_image(img, 'rain', 1)
    with pytest.raises(ValueError, match='severity'):
        ImageCorruption('fog', 6)


def test_corruption_pipeline_on_demo_images(demo_root):
    from mmpretrain.datasets import CustomDataset
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    corrupted = corruption_pipeline(pipeline, 'gaussian_noise', 3)
    assert [t['type'] for t in corrupted] == ['LoadImageFromFile', 'ImageCorruption', 'PackInputs']
    root = osp.join(demo_root, 'cls')
    clean = CustomDataset(data_root=root, data_prefix='val', pipeline=pipeline)
    noisy = CustomDataset(data_root=root, data_prefix='val', pipeline=corrupted)
    for i in range(3):
        a, b = clean[i]['inputs'], noisy[i]['inputs']
        assert a.shape == b.shape and (a != b).any()
    assert torch.equal(noisy[0]['inputs'], noisy[0]['inputs'])  # seeded per sample
    table = summarize_corruptions({'fog': {1: [50.0, 60.0], 2: [30.0, 40.0]},
                                   'snow': {1: [10.0, 20.0]}})
    assert table['fog'] == [40.0, 50.0] and table['mean'] == [25.0, 35.0]


def test_unscaled_gradients_for_bpda_style_attack():
    from mmdynamic.evaluation.robustness import unscaled_gradients
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MGNet', num_classes=3, num_glimpses=2, glimpse_size=16, grad_scale=0.01,
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, ))))
    model.eval()
    x = torch.randn(2, 3, 32, 32)

    def input_grad():
        inp = x.clone().requires_grad_(True)
        classifier_exit_logits(model, inp)[-1].sum().backward()
        return inp.grad

    scaled = input_grad()
    with unscaled_gradients(model) as changed:
        assert changed == 1 and model.localization.grad_scale == 1.0
        unscaled = input_grad()
    assert model.localization.grad_scale == 0.01  # restored
    assert not torch.allclose(scaled, unscaled)  # the localisation path now reaches the image
    with torch.no_grad(), unscaled_gradients(model):  # forward unchanged
        assert torch.allclose(model(x), model.forward_exits(x))
    result = evaluate_pgd(model, [dict(inputs=list((x * 60 + 128).clamp(0, 255)),
                                       data_samples=[DataSample().set_gt_label(0),
                                                     DataSample().set_gt_label(1)])],
                          PGDConfig(steps=(1, ), unscaled_gradients=True))
    assert len(result.accuracy[1]) == 2
