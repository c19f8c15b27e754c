# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch

from mmdynamic.evaluation.functional import (foreground_cells, mask_selectivity, merge_selectivity,
                                             object_cells)


def test_object_cells_uses_cell_centres():
    # 4 x 4 grid on a 64 px image: cell centres at 8, 24, 40, 56 px
    cells = object_cells([torch.tensor([[20., 0., 45., 30.]]), torch.zeros(0, 4)], 4, (64, 64))
    assert cells.shape == (2, 4, 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0:2, 1:3] = True  # rows 8, 24 < 30; cols 24, 40 in [20, 45)
    assert torch.equal(cells[0], expected)
    assert not cells[1].any()


def test_selectivity_counts_object_and_background_cells():
    boxes = [torch.tensor([[0., 0., 32., 32.]])]  # the top-left quarter of a 64 px image
    mask = torch.zeros(1, 2, 4, 4)
    mask[0, :, :2, :2] = 1  # both groups refine exactly the object
    mask[0, 0, 3, 3] = 1  # and one background cell in group 0
    result = mask_selectivity([mask], boxes, (64, 64))
    assert result.num_object_cells == 8 and result.num_background_cells == 24
    assert result.object_rate == 1.0
    assert result.background_rate == pytest.approx(1 / 24)
    assert result.ratio == pytest.approx(24.0)
    # masks of another grid pool with the first
    coarse = torch.zeros(1, 2, 2, 2)
    both = mask_selectivity([mask, coarse], boxes, (64, 64))
    assert both.num_object_cells == 10 and both.object_rate == pytest.approx(8 / 10)
    merged = merge_selectivity([result, mask_selectivity([coarse], boxes, (64, 64))])
    assert merged.object_rate == pytest.approx(both.object_rate)
    assert merged.background_rate == pytest.approx(both.background_rate)


def test_selectivity_rejects_mismatched_masks():
    with pytest.raises(ValueError, match='masks must be'):
        mask_selectivity([torch.zeros(2, 1, 4, 4)], [torch.zeros(0, 4)], (64, 64))
    with pytest.raises(ValueError, match='either boxes'):
        mask_selectivity([torch.zeros(1, 1, 4, 4)], image_size=(64, 64))
    with pytest.raises(ValueError, match='no masks'):
        mask_selectivity([], [], (64, 64))


def test_foreground_cells_match_boxes_for_box_shaped_objects():
    fg = torch.zeros(2, 64, 64, dtype=torch.bool)
    fg[0, 0:30, 20:45] = True
    boxes = [torch.tensor([[20., 0., 45., 30.]]), torch.zeros(0, 4)]
    for grid in (2, 4, 8):
        assert torch.equal(foreground_cells(fg, grid), object_cells(boxes, grid, (64, 64)))
    mask = torch.rand(2, 2, 4, 4).round()
    a = mask_selectivity([mask], boxes, (64, 64))
    b = mask_selectivity([mask], foreground=fg)
    assert (a.object_rate, a.background_rate) == (b.object_rate, b.background_rate)
