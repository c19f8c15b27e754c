# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmdynamic.models.utils import (affine_glimpse, crop_boxes, crop_patches, glance,
                                    sample_bilinear)


@pytest.mark.parametrize('mode', ['bicubic', 'bilinear'])
def test_glance_is_interpolate_align_corners(mode):
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(glance(x, 12, mode=mode),
                       F.interpolate(x, size=(12, 12), mode=mode, align_corners=True))
    assert glance(x, (8, 10), mode='nearest').shape == (2, 3, 8, 10)


def test_slice_crop_indexing_and_bounds():
    x = torch.arange(2 * 1 * 20 * 30, dtype=torch.float32).reshape(2, 1, 20, 30)
    loc = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    patches = crop_patches(x, loc, 8)
    assert torch.equal(patches[0], x[0, :, :8, :8])
    assert torch.equal(patches[1], x[1, :, -8:, -8:])
    loc = torch.tensor([[0.5, 0.25], [0.3, 0.9]])
    patches = crop_patches(x, loc, (6, 5))
    for b in range(2):
        top, left = int(0.5 * 14) if b == 0 else int(0.3 * 14), int(
            0.25 * 25) if b == 0 else int(0.9 * 25)
        assert torch.equal(patches[b], x[b, :, top:top + 6, left:left + 5])
    # out-of-range locations and centre anchors stay inside the image
    inside = crop_patches(x, torch.tensor([[2.0, -1.0], [0.99, 0.01]]), 8, anchor='centre')
    assert torch.equal(inside[0], x[0, :, -8:, :8]) and torch.equal(inside[1], x[1, :, -8:, :8])
    with pytest.raises(ValueError, match='larger than the image'):
        crop_patches(x, loc, 40)
    with pytest.raises(ValueError, match="backend must be 'slice' or 'bilinear'"):
        crop_patches(x, loc, 8, backend='roi')


def test_bilinear_equals_slice_at_whole_pixels():
    x = torch.rand(3, 2, 17, 19)
    loc = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5 / 9, 6 / 11]])  # corners 0, (9, 11), (5, 6)
    assert torch.allclose(crop_patches(x, loc, 8, backend='bilinear'), crop_patches(x, loc, 8),
                          atol=1e-6)


def test_bilinear_location_gradient_matches_eq9_closed_form():
    """d m~/d x~ = (1 - dy)(m01 - m00) + dy (m11 - m10); d m~/d y~ = (1 - dx)(m10 - m00) + dx (m11 - m01)
    summed over the patch with the upstream gradient, times d corner / d location = (H - P)."""
    torch.manual_seed(0)
    H = W = 16
    P = 5
    x = torch.rand(1, 1, H, W, dtype=torch.float64)
    loc = torch.tensor([[0.37, 0.61]], dtype=torch.float64, requires_grad=True)
    upstream = torch.rand(1, 1, P, P, dtype=torch.float64)
    (crop_patches(x, loc, P, backend='bilinear') * upstream).sum().backward()
    ty, tx = (loc.detach()[0] * (H - P)).tolist()
    fy, fx = int(ty), int(tx)
    dy, dx = ty - fy, tx - fx
    img = x[0, 0]
    gx = gy = 0.0
    for i in range(P):
        for j in range(P):
            m00, m01 = img[fy + i, fx + j], img[fy + i, fx + j + 1]
            m10, m11 = img[fy + i + 1, fx + j], img[fy + i + 1, fx + j + 1]
            g = upstream[0, 0, i, j]
            gx += g * ((1 - dy) * (m01 - m00) + dy * (m11 - m10))
            gy += g * ((1 - dx) * (m10 - m00) + dx * (m11 - m01))
    expected = torch.tensor([gy * (H - P), gx * (W - P)], dtype=torch.float64)
    assert torch.allclose(loc.grad[0], expected, atol=1e-9)


def test_crop_boxes():
    x = torch.rand(2, 3, 24, 20)
    full = torch.tensor([[12.0, 10.0, 24.0, 20.0]] * 2)
    assert torch.allclose(crop_boxes(x, full, (12, 10)),
                          F.interpolate(x, size=(12, 10), mode='bilinear', align_corners=False),
                          atol=1e-6)
    # a box sticking out is moved inside; one larger than the image is clamped to it
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [12.0, 10.0, 100.0, 100.0]], requires_grad=True)
    out = crop_boxes(x, boxes, 8)
    assert torch.allclose(out[0], crop_patches(x[:1], torch.zeros(1, 2), 8)[0], atol=1e-6)
    out.sum().backward()
    assert boxes.grad is not None
    with pytest.raises(ValueError, match=r'\(B, 4\)'):
        crop_boxes(x, torch.zeros(2, 2), 8)


def test_affine_glimpse_identity_and_inside():
    x = torch.rand(2, 3, 32, 32)
    ident = affine_glimpse(x, torch.ones(2), torch.zeros(2, 2), 12)
    assert torch.allclose(ident, F.interpolate(x, size=12, mode='bilinear', align_corners=True),
                          atol=1e-6)
    # a half-size glimpse pushed off the right edge is clamped to the right half
    out = affine_glimpse(x, torch.full((2, ), 0.5), torch.tensor([[5.0, 0.0], [5.0, 0.0]]), 9)
    ref = affine_glimpse(x, torch.full((2, ), 0.5), torch.tensor([[0.5, 0.0], [0.5, 0.0]]), 9)
    assert torch.allclose(out, ref)


def test_sample_bilinear_at_pixel_centres():
    x = torch.rand(1, 2, 6, 7)
    ys = torch.arange(6.0)[None]
    xs = torch.arange(7.0)[None]
    assert torch.allclose(sample_bilinear(x, ys, xs), x, atol=1e-6)
