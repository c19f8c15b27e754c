# Copyright (c) mmdynamic contributors. All rights reserved.
"""Area-weighted mask densities (cells in pixels): the sparsity loss, SARScheduleHook and the MACs
count the same fraction of the map; a fixed grid keeps the plain mask mean."""
import types

import pytest
import torch

from mmdynamic.engine.hooks import SARScheduleHook
from mmdynamic.models.backbones.sar_resnet import SARResNet
from mmdynamic.models.layers.sar_layers import expand_group_mask, mask_fractions
from mmdynamic.models.losses import mask_density, sparsity_loss

from ..test_utils.test_sar_calibration import small_backbone


def _pixel_fraction(mask, size, cell):
    """Independent reference: expand the mask to the map's pixels and average."""
    return expand_group_mask(mask, mask.shape[1], size, cell).flatten(1).mean(1)


def test_edge_cells_count_with_their_cropped_area():
    # a 6 x 6 map in 4 px cells: a 2 x 2 grid whose cells cover 16, 8, 8 and 4 pixels
    mask = torch.tensor([[[[1., 0.], [0., 0.]]], [[[0., 0.], [0., 1.]]]])
    assert mask_density(mask, (6, 6), 4).tolist() == pytest.approx([16 / 36, 4 / 36])
    assert mask_density(mask).tolist() == pytest.approx([0.25, 0.25])  # fixed grid: the mean
    assert sparsity_loss([mask], 0.0, 'sample', sizes=[(6, 6)], cell_sizes=[4]).item() == \
        pytest.approx(((16 / 36)**2 + (4 / 36)**2) / 2)
    assert sparsity_loss([mask], 0.0, 'sample').item() == pytest.approx(0.0625)
    # the gradient reaches each cell in proportion to its area
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    sparsity_loss([torch.sigmoid(logits)], 0.0, sizes=[(6, 6)], cell_sizes=[4]).backward()
    grad = logits.grad.flatten()
    assert (grad / grad[0]).tolist() == pytest.approx([1.0, 0.5, 0.5, 0.25])
    with pytest.raises(ValueError, match='map size is needed'):
        sparsity_loss([mask], 0.5, cell_sizes=[4])
    with pytest.raises(ValueError, match='needs the \\(H, W\\)'):
        mask_density(mask, cell_size=4)


def _sar(**kwargs):
    torch.manual_seed(0)
    model = SARResNet(depth=50, stem_channels=16, base_channels=16, groups=2,
                      mask_bias_init=(0.0, 0.0), out_indices=(3, ), **kwargs)
    model.init_weights()
    return model.eval()


def test_backbone_records_the_area_of_every_mask():
    model = _sar(mask_grid=None, mask_cell_size=(4, 4, 7))
    with torch.no_grad():
        model(torch.randn(2, 3, 97, 131))
    map_sizes, cells = model.last_mask_sizes, model.last_mask_cells
    assert len(map_sizes) == len(cells) == len(model.last_masks) == 10
    assert map_sizes[0] == (25, 33) and map_sizes[-1] == (7, 9) and cells == [4] * 5 + [7] * 5
    fractions = model.mask_fractions()
    assert all(torch.equal(a, b) for a, b in zip(fractions, mask_fractions(model.last_masks,
                                                                           map_sizes, cells)))
    for mask, size, cell, fraction in zip(model.last_masks, map_sizes, cells, fractions):
        assert torch.allclose(fraction, _pixel_fraction(mask, size, cell))
    assert torch.allclose(model.density(), torch.stack([f.mean() for f in fractions]))
    # not the plain mean: the cropped edge cells count less
    assert any(not torch.allclose(f, m.flatten(1).mean(1))
               for f, m in zip(fractions, model.last_masks))
    # a fixed grid records no cell size and keeps the plain mean
    grid = _sar(mask_grid=(8, 4, 2))
    with torch.no_grad():
        grid(torch.randn(1, 3, 128, 128))
    assert grid.last_mask_cells == [None] * 10
    assert torch.allclose(grid.density(), torch.stack([m.mean() for m in grid.last_masks]))


def test_training_loss_and_logged_density_are_area_weighted():
    from mmdynamic.models.cls.sar_classifier import SARImageClassifier
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    model = SARImageClassifier(
        backbone=dict(type='SARResNet', depth=50, stem_channels=16, base_channels=16, groups=2,
                      mask_grid=None, mask_cell_size=(4, 4, 7), out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=512),
        sparsity=dict(target=0.25, weight=1.0, loss_type='sample'))
    model.init_weights()
    model.train()
    samples = [DataSample().set_gt_label(i % 3) for i in range(2)]
    losses = model.loss(torch.randn(2, 3, 97, 131), samples)
    backbone = model.backbone
    expected = sparsity_loss(backbone.last_masks, 0.25, 'sample', backbone.last_mask_sizes,
                             backbone.last_mask_cells)
    assert torch.allclose(losses['loss_sparsity'], expected)
    fractions = [_pixel_fraction(m.detach(), s, c) for m, s, c in
                 zip(backbone.last_masks, backbone.last_mask_sizes, backbone.last_mask_cells)]
    assert losses['density'].item() == pytest.approx(
        torch.stack([f.mean() for f in fractions]).mean().item(), abs=1e-6)


def _log_density(model, inputs):
    hook = SARScheduleHook()
    hub = types.SimpleNamespace(scalars={})
    hub.update_scalar = lambda k, v: hub.scalars.__setitem__(k, v)
    runner = types.SimpleNamespace(model=types.SimpleNamespace(backbone=model), message_hub=hub,
                                   logger=types.SimpleNamespace(info=lambda msg: None))
    hook.before_val_epoch(runner)
    for x in inputs:
        with torch.no_grad():
            model(x)
        hook.after_val_iter(runner, 0)
    hook.after_val_epoch(runner)
    return [hub.scalars[f'val/density_m{i}'] for i in range(10)]


def test_schedule_hook_logs_the_area_weighted_density():
    model = _sar(mask_grid=None, mask_cell_size=(4, 4, 7))
    inputs = [torch.randn(2, 3, 97, 131), torch.randn(3, 3, 97, 131)]
    logged = _log_density(model, inputs)
    expected = torch.zeros(10, dtype=torch.float64)
    for x in inputs:
        with torch.no_grad():
            model(x)
        for i, (mask, size, cell) in enumerate(zip(model.last_masks, model.last_mask_sizes,
                                                   model.last_mask_cells)):
            expected[i] += _pixel_fraction(mask, size, cell).double().sum()
    assert logged == pytest.approx((expected / 5).tolist(), abs=1e-6)


def test_schedule_hook_fixed_grid_keeps_the_mask_mean():
    model = _sar(mask_grid=(8, 4, 2))
    inputs = [torch.randn(2, 3, 128, 128)]
    logged = _log_density(model, inputs)
    with torch.no_grad():
        model(inputs[0])
    assert logged == pytest.approx([m.mean().item() for m in model.last_masks], abs=1e-9)


@pytest.mark.parametrize('sharing', ['block', 'stage'])
def test_backbone_records_the_logits_of_every_mask(sharing):
    """``last_mask_logits`` (B, G, 2, K_h, K_w): the test-time masks are their argmax."""
    model = small_backbone(sharing).eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 97, 131))
    assert len(model.last_mask_logits) == len(model.last_masks) == (10 if sharing == 'block' else 3)
    for logits, mask in zip(model.last_mask_logits, model.last_masks):
        assert tuple(logits.shape) == tuple(mask.shape[:2]) + (2, ) + tuple(mask.shape[2:])
        assert torch.equal(mask, (logits[:, :, 1] > logits[:, :, 0]).to(mask.dtype))
    assert 0 < torch.cat([m.flatten() for m in model.last_masks]).mean() < 1
