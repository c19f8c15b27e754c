# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch

from mmdynamic.models.losses import mask_density, sparsity_loss


def test_batch_and_sample_targets():
    # two masks, batch of 2 with per-sample densities (1, 0) and (0.5, 0.5)
    m1 = torch.stack([torch.ones(2, 2, 2), torch.zeros(2, 2, 2)])
    m2 = torch.full((2, 2, 2, 2), 0.5)
    assert mask_density(m1).tolist() == [1.0, 0.0]
    # Eq. 10: batch means are 0.5 and 0.5 -> no loss at t = 0.5
    assert sparsity_loss([m1, m2], 0.5, 'batch').item() == pytest.approx(0.0)
    # Eq. 11: per-sample distances: m1 -> 0.25, m2 -> 0
    assert sparsity_loss([m1, m2], 0.5, 'sample').item() == pytest.approx(0.125)
    assert sparsity_loss([m2], 0.2, 'batch').item() == pytest.approx(0.09)


def test_gradient_reaches_the_masks():
    logits = torch.zeros(3, 2, 4, 4, requires_grad=True)
    mask = torch.sigmoid(logits)
    sparsity_loss([mask], 0.2).backward()
    assert (logits.grad > 0).all()  # density 0.5 > 0.2: push the logits down


def test_bad_arguments():
    with pytest.raises(ValueError, match='loss_type'):
        sparsity_loss([torch.ones(1, 1, 2, 2)], 0.5, 'pixel')
    with pytest.raises(ValueError, match=r'target density must be in \[0, 1\]'):
        sparsity_loss([torch.ones(1, 1, 2, 2)], 1.5)
    with pytest.raises(ValueError, match='at least one mask'):
        sparsity_loss([], 0.5)


def test_group_target_refuses_dropping_a_group():
    # G = 2: group 0 refines everything, group 1 nothing. The mask density is 0.5 (no 'batch' loss
    # at t = 0.5), but each group is 0.5 away from the target under 'group'.
    mask = torch.stack([torch.ones(3, 4, 4), torch.zeros(3, 4, 4)], dim=1)
    assert sparsity_loss([mask], 0.5, 'batch').item() == pytest.approx(0.0)
    assert sparsity_loss([mask], 0.5, 'group').item() == pytest.approx(0.25)
    # half of the places in each group: no loss either way
    half = torch.zeros(3, 2, 4, 4)
    half[:, :, :2] = 1
    assert sparsity_loss([half], 0.5, 'group').item() == pytest.approx(0.0)
    # per group it is Eq. 10: the batch mean of each group, so images may differ
    uneven = torch.zeros(2, 2, 4, 4)
    uneven[0] = 1
    assert sparsity_loss([uneven], 0.5, 'group').item() == pytest.approx(0.0)
    # and the gradient pushes the over-full group down and the empty one up
    logits = torch.stack([torch.full((3, 4, 4), 3.0), torch.full((3, 4, 4), -3.0)], 1)
    logits.requires_grad_(True)
    sparsity_loss([torch.sigmoid(logits)], 0.5, 'group').backward()
    assert (logits.grad[:, 0] > 0).all() and (logits.grad[:, 1] < 0).all()


def test_total_target_is_one_budget_for_all_masks():
    # mask 1 refines everything, mask 2 nothing: 0.5 on average, no 'total' loss at t = 0.5, while
    # each mask is 0.5 away from the target under Eq. 10
    full, empty = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert sparsity_loss([full, empty], 0.5, 'total').item() == pytest.approx(0.0)
    assert sparsity_loss([full, empty], 0.5, 'batch').item() == pytest.approx(0.25)
    # (mean over masks and images - t)^2
    assert sparsity_loss([full, full * 0.5], 0.5, 'total').item() == pytest.approx(0.0625)
    # with cells in pixels the masks' refined fractions are area-weighted (a 5 x 5 map, 4 px
    # cells: the first row / column of cells holds 16 of the 25 pixels)
    corner = torch.zeros(2, 1, 2, 2)
    corner[:, :, 0, 0] = 1
    loss = sparsity_loss([corner], 0.0, 'total', sizes=[(5, 5)], cell_sizes=[4])
    assert loss.item() == pytest.approx((16 / 25)**2)
    # the gradient moves every mask alike: the budget, not each mask, is held
    logits = torch.stack([torch.full((3, 4, 4), 3.0), torch.full((3, 4, 4), -3.0)])
    logits.requires_grad_(True)
    masks = [torch.sigmoid(logits[0])[:, None], torch.sigmoid(logits[1])[:, None]]
    sparsity_loss(masks, 0.2, 'total').backward()
    assert (logits.grad > 0).all()  # mean density 0.5 > 0.2: both pushed down
