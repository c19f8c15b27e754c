# Copyright (c) mmdynamic contributors. All rights reserved.
"""Area-weighted mask densities (cells in pixels): the sparsity loss, SARScheduleHook and the MACs
count the same fraction of the map; a fixed grid keeps the plain mask mean."""
import types

import pytest
import torch

from mmdynamic.engine.hooks import SARScheduleHook
from mmdynamic.models.backbones.sar_resnet import SARResNet
from mmdynamic.models.layers.sar_layers import (StageMapSizes, expand_group_mask,
                                                 mask_fractions)
from mmdynamic.models.losses import mask_density, sparsity_loss


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


def test_stage_map_sizes_give_the_area_of_every_mask():
    model = _sar(mask_grid=None, mask_cell_size=(4, 4, 7))
    sizes = StageMapSizes(model.stages)
    with torch.no_grad():
        model(torch.randn(2, 3, 97, 131))
    map_sizes, cells = sizes.per_mask()
    sizes.remove()
    assert len(map_sizes) == len(model.last_masks) == 10
    assert map_sizes[0] == (25, 33) and cells == [4] * 5 + [7] * 5
    fractions = mask_fractions(model.last_masks, map_sizes, cells)
    for mask, size, cell, fraction in zip(model.last_masks, map_sizes, cells, fractions):
        assert torch.allclose(fraction, _pixel_fraction(mask, size, cell))
    # not the plain mean: the cropped edge cells count less
    assert any(not torch.allclose(f, m.flatten(1).mean(1))
               for f, m in zip(fractions, model.last_masks))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert sizes.sizes[0] == (25, 33), 'removed hooks record nothing'


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
    assert not model.stages[0]._forward_pre_hooks, 'the hook leaves no forward hook behind'
    return [hub.scalars[f'val/density_m{i}'] for i in range(10)]


def test_schedule_hook_logs_the_area_weighted_density():
    model = _sar(mask_grid=None, mask_cell_size=(4, 4, 7))
    inputs = [torch.randn(2, 3, 97, 131), torch.randn(3, 3, 97, 131)]
    logged = _log_density(model, inputs)
    sizes = StageMapSizes(model.stages)
    expected = torch.zeros(10, dtype=torch.float64)
    for x in inputs:
        with torch.no_grad():
            model(x)
        for i, (mask, size, cell) in enumerate(zip(model.last_masks, *sizes.per_mask())):
            expected[i] += _pixel_fraction(mask, size, cell).double().sum()
    sizes.remove()
    assert logged == pytest.approx((expected / 5).tolist(), abs=1e-6)


def test_schedule_hook_fixed_grid_keeps_the_mask_mean():
    model = _sar(mask_grid=(8, 4, 2))
    inputs = [torch.randn(2, 3, 128, 128)]
    logged = _log_density(model, inputs)
    with torch.no_grad():
        model(inputs[0])
    assert logged == pytest.approx([m.mean().item() for m in model.last_masks], abs=1e-9)
