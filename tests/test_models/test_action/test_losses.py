# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmdynamic.models.action import (box_size_regulariser, draw_without_replacement,
                                     exact_temporal_loss, temporal_policy_loss)
from mmdynamic.models.action.losses import removal_masks
from mmdynamic.models.utils import crop_patches


def test_draws_are_without_replacement_and_follow_weights():
    weights = torch.tensor([[0.7, 0.1, 0.1, 0.1]])
    draws = draw_without_replacement(weights, 3, 4000, torch.Generator().manual_seed(0))
    assert draws.shape == (1, 4000, 3)
    assert all(len(set(d)) == 3 for d in draws[0].tolist())
    first = torch.bincount(draws[0, :, 0], minlength=4).float() / 4000
    assert abs(first[0] - 0.7) < 0.03


def _eq18_surrogate(weights, frame_losses, num_draws):
    """Eq. 18 enumerated: (1/D) sum_i E_{n_1..n_{i-1}}[sum_j renormalised w_j L_j], with the
    probabilities of the earlier draws held constant (what Eq. 21 differentiates)."""
    import itertools
    total = weights.new_zeros(())
    for i in range(num_draws):
        for prefix in itertools.permutations(range(len(weights)), i):
            prob, left = 1.0, 1.0
            for n in prefix:
                prob *= float(weights[n]) / left
                left -= float(weights[n])
            kept = weights.clone()
            kept[list(prefix)] = 0
            total = total + prob * (kept / kept.sum() * frame_losses).sum()
    return total / num_draws


def test_eq21_estimator_matches_exact_expectation():
    """Eq. 21 with large M equals the expectation over every ordered draw (T = 5, D = 2), and its
    gradient is that of the decomposition Eq. 18 (earlier draws' probabilities held constant)."""
    torch.manual_seed(0)
    logits = torch.randn(1, 5, requires_grad=True)
    frame_logits = torch.randn(1, 5, 3)
    labels = torch.tensor([1])
    frame_losses = F.cross_entropy(frame_logits[0], labels.repeat(5), reduction='none')

    weights = logits.softmax(-1)
    exact = exact_temporal_loss(weights[0], frame_losses, num_draws=2)
    surrogate = _eq18_surrogate(logits.softmax(-1)[0], frame_losses, num_draws=2)
    assert torch.isclose(surrogate, exact, atol=1e-6)  # Eq. 18 is exact in value
    (grad_surrogate, ) = torch.autograd.grad(surrogate, logits)

    weights = logits.softmax(-1)
    estimate = temporal_policy_loss(weights, frame_logits, labels, num_draws=2,
                                    num_samples=200000, form='expected_ce',
                                    generator=torch.Generator().manual_seed(0))
    (grad_est, ) = torch.autograd.grad(estimate, logits)
    assert abs(float(estimate) - float(exact)) < 2e-3
    assert torch.allclose(grad_est, grad_surrogate, atol=3e-3)
    # the expectation is not the trivial weighted mean (it is a without-replacement average)
    assert abs(float(exact) - float((weights[0] * frame_losses).sum())) > 1e-3


def test_one_draw_is_the_weighted_mean():
    weights = torch.tensor([[0.5, 0.3, 0.2]], requires_grad=True)
    frame_logits = torch.randn(1, 3, 4)
    labels = torch.tensor([2])
    losses = F.cross_entropy(frame_logits[0], labels.repeat(3), reduction='none')
    loss = temporal_policy_loss(weights, frame_logits, labels, num_draws=1, num_samples=4)
    assert torch.allclose(loss, (weights[0] * losses).sum())


def test_ce_of_mixture_form():
    weights = torch.tensor([[0.5, 0.3, 0.2]], requires_grad=True)
    frame_logits = torch.randn(1, 3, 4)
    labels = torch.tensor([0])
    loss = temporal_policy_loss(weights, frame_logits, labels, num_draws=1, num_samples=8,
                                form='ce_of_mixture')
    # one draw: nothing removed, CE of the weighted mixture of logits (normaliser 1)
    mixed = (weights[0, :, None] * frame_logits[0]).sum(0, keepdim=True)
    assert torch.allclose(loss, F.cross_entropy(mixed, labels))
    loss.backward()
    assert weights.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='form'):
        temporal_policy_loss(weights, frame_logits, labels, 1, form='reinforce')
    with pytest.raises(ValueError, match='num_draws'):
        temporal_policy_loss(weights, frame_logits, labels, 4)


def test_box_size_regulariser():
    actions = torch.tensor([[0.3, 0.7, 1.0, 1.0], [0.1, 0.1, 0.0, 0.5]])
    assert torch.isclose(box_size_regulariser(actions), torch.tensor((0 + 0 + 1 + 0.25) / 4))


def test_crop_gradient_closed_form():
    """Eq. 7-9: the gradient of a bilinear crop w.r.t. its location is
    sum_ij g_ij [(1 - dy)(m01 - m00) + dy (m11 - m10)] along x (and likewise along y)."""
    torch.manual_seed(0)
    image = torch.randn(1, 1, 12, 12, dtype=torch.float64)
    size = 5
    loc = torch.tensor([[0.37, 0.61]], dtype=torch.float64, requires_grad=True)
    patch = crop_patches(image, loc, size, backend='bilinear')
    upstream = torch.randn_like(patch)
    (patch * upstream).sum().backward()

    top, left = (loc.detach()[0] * (12 - size)).tolist()
    y0, x0 = int(top // 1), int(left // 1)
    dy, dx = top - y0, left - x0
    img = image[0, 0]
    grad_y = grad_x = 0.0
    for i in range(size):
        for j in range(size):
            m00, m01 = img[y0 + i, x0 + j], img[y0 + i, x0 + j + 1]
            m10, m11 = img[y0 + i + 1, x0 + j], img[y0 + i + 1, x0 + j + 1]
            g = upstream[0, 0, i, j]
            grad_x += g * ((1 - dy) * (m01 - m00) + dy * (m11 - m10))
            grad_y += g * ((1 - dx) * (m10 - m00) + dx * (m11 - m01))
    # d(corner)/d(location) = image extent - patch size
    expected = torch.stack([grad_y, grad_x]) * (12 - size)
    assert torch.allclose(loc.grad[0], expected, atol=1e-9)


def _official_mc_mixture(weights, frame_logits, num_terms, num_samples, generator):
    """The official MCSampleFeature (Uni-AdaFocus), written out: term i zeroes i frames drawn afresh
    by torch.multinomial without replacement, renormalises with a detached sum, mixes the logits;
    the terms and the samples are averaged."""
    batch, frames = weights.shape
    flat = weights.unsqueeze(1).repeat(1, num_samples, 1).view(-1, frames)
    logits = frame_logits.unsqueeze(1).repeat(1, num_samples, 1, 1).view(-1, frames,
                                                                         frame_logits.shape[-1])
    total = 0
    for i in range(num_terms):
        kept = flat.clone()
        if i > 0:
            drawn = torch.multinomial(flat, i, replacement=False, generator=generator)
            kept = kept.scatter(dim=1, index=drawn, value=0.0)
        mixed = (logits * kept.unsqueeze(-1)).sum(dim=1) / kept.sum(dim=1).detach().unsqueeze(-1)
        total = total + mixed
    return (total / num_terms).view(batch, num_samples, -1).mean(dim=1)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_mc_draws_are_fresh_for_every_term_as_official(dtype):
    """Item 5 of issue 16: by default every term i of the Monte-Carlo loss removes i frames of its own
    draw (official MCSampleFeature); the same generator seed reproduces the official estimate, its
    value and its gradient w.r.t. the weights. The nested prefixes of one draw are an option."""
    torch.manual_seed(0)
    logits = torch.randn(3, 6, dtype=dtype, requires_grad=True)
    frame_logits = torch.randn(3, 6, 5, dtype=dtype)
    labels = torch.tensor([0, 3, 4])
    weights = logits.softmax(-1)
    ours = temporal_policy_loss(weights, frame_logits, labels, num_draws=4, num_samples=16,
                                form='ce_of_mixture', generator=torch.Generator().manual_seed(3))
    official = F.cross_entropy(_official_mc_mixture(
        weights, frame_logits, 4, 16, torch.Generator().manual_seed(3)), labels)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert abs(float(ours) - float(official)) < tol
    (g_ours, ) = torch.autograd.grad(ours, logits, retain_graph=True)
    (g_official, ) = torch.autograd.grad(official, logits)
    assert torch.allclose(g_ours, g_official, atol=tol)
    nested = temporal_policy_loss(weights, frame_logits, labels, num_draws=4, num_samples=16,
                                  form='ce_of_mixture', draw_mode='nested',
                                  generator=torch.Generator().manual_seed(3))
    assert abs(float(nested) - float(official)) > 1e-4
    # the removed sets: nested prefixes vs fresh draws
    gen = torch.Generator().manual_seed(0)
    masks = removal_masks(weights, 4, 500, 'nested', gen)
    assert ((masks[:, :, 1:] - masks[:, :, :-1]) >= 0).all()  # term i+1 removes a superset
    fresh = removal_masks(weights, 4, 500, 'independent', gen)
    assert (fresh.sum(-1) == torch.arange(4, dtype=dtype)).all()
    assert ((fresh[:, :, 1:] - fresh[:, :, :-1]) < 0).any()  # not nested
    with pytest.raises(ValueError, match='draw_mode'):
        removal_masks(weights, 4, 5, 'shared')


def test_injected_removals_give_the_hand_computed_loss():
    """The removed frames can be injected (B, M, D, T): both forms then equal a hand computation."""
    weights = torch.tensor([[0.4, 0.3, 0.2, 0.1]], dtype=torch.float64, requires_grad=True)
    frame_logits = torch.randn(1, 4, 3, dtype=torch.float64)
    labels = torch.tensor([2])
    removed = torch.zeros(1, 2, 2, 4, dtype=torch.float64)
    removed[0, 0, 1, 0] = 1  # sample 0, term 1 removes frame 0
    removed[0, 1, 1, 3] = 1  # sample 1, term 1 removes frame 3
    w = weights[0]
    mixes = [w / w.sum(), w / w.sum(), torch.cat([w.new_zeros(1), w[1:]]) / w[1:].sum(),
             torch.cat([w[:3], w.new_zeros(1)]) / w[:3].sum()]
    ce = F.cross_entropy(frame_logits[0], labels.repeat(4), reduction='none')
    expected = sum((m * ce).sum() for m in mixes) / 4
    loss = temporal_policy_loss(weights, frame_logits, labels, 2, removed=removed)
    assert torch.allclose(loss, expected, atol=1e-12)
    mixed = sum(mixes)
    mixture = temporal_policy_loss(weights, frame_logits, labels, 2, form='ce_of_mixture',
                                   removed=removed)
    expected_mix = F.cross_entropy((mixed[:, None] * frame_logits[0]).sum(0, keepdim=True) / 4,
                                   labels)
    assert torch.allclose(mixture, expected_mix, atol=1e-12)
    with pytest.raises(ValueError, match='removed'):
        temporal_policy_loss(weights, frame_logits, labels, 2, removed=removed[:, :, :1])
