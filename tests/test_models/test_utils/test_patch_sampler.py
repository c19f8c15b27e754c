# Copyright (c) mmdynamic contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmdynamic.models.utils import (affine_glimpse, crop_boxes, crop_patches, glance,
                                    sample_bilinear)
from mmdynamic.models.utils.patch_sampler import affine_sample


# ---------------------------------------------------------------- independent references
def official_box_crop(images, top, left, height, width, size):
    """The authors' op sequence (Uni-AdaFocus ``get_patch_grid_scalexy``, AdaFocusV2
    ``get_patches_frame``), written out: theta from the corners (x1, x2 = x1 + w), then affine_grid and
    grid_sample with their defaults. All box tensors (B, ); the computation runs in their dtype."""
    img_h, img_w = images.shape[-2:]
    x1, x2, y1, y2 = left, left + width, top, top + height
    theta = torch.zeros(images.shape[0], 2, 3, dtype=top.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = width / img_w, height / img_h
    theta[:, 0, 2], theta[:, 1, 2] = -1 + (x1 + x2) / img_w, -1 + (y1 + y2) / img_h
    grid = F.affine_grid(theta, torch.Size((images.shape[0], images.shape[1], *size)))
    return F.grid_sample(images.to(top.dtype), grid)


def bilinear_zeros(images, ys, xs):
    """Plain bilinear interpolation with zeros outside the image, at pixel-centre coordinates ys (B, P_h)
    and xs (B, P_w): the four neighbours gathered by indexing, no grid_sample."""
    img_h, img_w = images.shape[-2:]
    batch = torch.arange(images.shape[0])[:, None, None]
    out = 0
    for row in (ys.floor(), ys.floor() + 1):
        for col in (xs.floor(), xs.floor() + 1):
            weight = (1 - (ys - row).abs())[:, :, None] * (1 - (xs - col).abs())[:, None, :]
            valid = ((row >= 0) & (row < img_h))[:, :, None] & ((col >= 0) & (col < img_w))[:, None, :]
            rows = row.long().clamp(0, img_h - 1)[:, :, None]
            cols = col.long().clamp(0, img_w - 1)[:, None, :]
            values = images[batch, :, rows, cols]  # (B, P_h, P_w, C)
            out = out + (weight * valid)[..., None] * values
    return out.permute(0, 3, 1, 2)


def box_sample_points(top, side, out):
    """Output pixel i of a box [top, top + side] resized to ``out`` samples
    top + (i + 0.5) side / out - 0.5."""
    steps = torch.arange(out, dtype=torch.float64) + 0.5
    return top[:, None] + steps * side[:, None] / out - 0.5


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
    torch.manual_seed(0)
    x = torch.rand(3, 2, 17, 19, dtype=torch.float64)
    # corners (0, 0), (9, 11), (5, 6)
    loc = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5 / 9, 6 / 11]], dtype=torch.float64)
    assert torch.allclose(crop_patches(x, loc, 8, backend='bilinear'), crop_patches(x, loc, 8),
                          atol=1e-12)
    assert torch.allclose(crop_patches(x.float(), loc.float(), 8, backend='bilinear'),
                          crop_patches(x.float(), loc.float(), 8), atol=1e-5)


@pytest.mark.parametrize('frame, patch', [((224, 224), 128), ((224, 224), 96), ((160, 200), (64, 96))])
def test_bilinear_patch_is_the_official_adafocusv2_crop(frame, patch):
    """AdaFocusV2: top-left a (S - P), theta = [[P/W, 0, -1 + (x1 + x2)/W], ...], affine_grid and
    grid_sample.
    float32 patches agree with the official float32 sequence to rounding (the pixel-coordinate
    arithmetic used before differed by ~3e-5), float64 ones with exact bilinear sampling."""
    torch.manual_seed(1)
    p_h, p_w = (patch, patch) if isinstance(patch, int) else patch
    images = torch.rand(6, 3, *frame)
    actions = torch.rand(6, 2)
    actions[0] = 0.0
    actions[1] = 1.0
    out = crop_patches(images, actions, patch, backend='bilinear')
    top, left = actions[:, 0] * (frame[0] - p_h), actions[:, 1] * (frame[1] - p_w)
    ref = official_box_crop(images, top, left, torch.full_like(top, p_h), torch.full_like(left, p_w),
                            (p_h, p_w))
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() <= 2e-6
    # float64: exactly the pixels (y1 + i, x1 + j), bilinearly interpolated
    out64 = crop_patches(images.double(), actions.double(), patch, backend='bilinear')
    top64, left64 = actions[:, 0].double() * (frame[0] - p_h), actions[:, 1].double() * (frame[1] - p_w)
    ys = top64[:, None] + torch.arange(p_h, dtype=torch.float64)
    xs = left64[:, None] + torch.arange(p_w, dtype=torch.float64)
    exact = bilinear_zeros(images[:2].double(), ys[:2], xs[:2])
    assert torch.allclose(out64[:2], exact, atol=1e-12)
    ref64 = official_box_crop(images.double(), top64, left64, torch.full_like(top64, p_h),
                              torch.full_like(left64, p_w), (p_h, p_w))
    assert torch.allclose(out64, ref64, atol=1e-12)
    # the official float32 crop is itself ~3e-5 off float64 at 224 px; ours is no further off
    assert (out.double() - ref64).abs().max() <= (ref.double() - ref64).abs().max() + 2e-6
    # 'slice' (GFNet) is untouched
    assert torch.equal(crop_patches(images, actions, patch), crop_patches(images, actions, patch,
                                                                           backend='slice'))


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


def test_crop_boxes_full_frame_and_errors():
    x = torch.rand(2, 3, 24, 20)
    full = torch.tensor([[12.0, 10.0, 24.0, 20.0]] * 2)
    assert torch.allclose(crop_boxes(x, full, (12, 10)),
                          F.interpolate(x, size=(12, 10), mode='bilinear', align_corners=False),
                          atol=1e-6)
    with pytest.raises(ValueError, match=r'\(B, 4\)'):
        crop_boxes(x, torch.zeros(2, 2), 8)
    with pytest.raises(ValueError, match='3 boxes for 2 images'):
        crop_boxes(x, torch.zeros(3, 4), 8)


# (H, W, top, left, h, w, P): boxes smaller and larger than the output, inside, touching and crossing the
# edges, non-square frames, the 7 x 7 map of the spatial loss (4 cells out) and the X3D 5 x 5 map with
# a 5.25-cell box (3 cells out)
BOXES = [
    (224, 224, 0.0, 0.0, 96.0, 96.0, 128),  # smaller than P, touching the top-left corner
    (224, 224, 128.0, 100.0, 96.0, 124.0, 128),  # smaller than P, touching the bottom edge
    (224, 224, 37.3, 51.9, 150.5, 170.25, 128),  # larger than P, inside
    (224, 224, 0.0, 0.0, 224.0, 224.0, 96),  # the whole frame
    (224, 224, -20.0, 150.0, 90.0, 100.0, 128),  # crossing the top and right edges
    (180, 240, 60.5, -3.25, 120.0, 64.0, 112),  # non-square frame, crossing the left edge
    (7, 7, 0.0, 3.0, 3.0, 4.0, 4),  # 7 x 7 feature map, touching the top / right edges
    (7, 7, 1.7, 0.4, 5.5, 4.2, 4),
    (5, 5, -0.125, -0.125, 5.25, 5.25, 3),  # X3D: a 5.25-cell box spills past the 5 x 5 map
    (5, 5, 2.4, 0.0, 2.6, 3.1, 3),
]


def _boxes(spec, dtype):
    _, _, top, left, box_h, box_w, _ = spec
    top, left, box_h, box_w = (torch.tensor([v], dtype=dtype) for v in (top, left, box_h, box_w))
    # centre = (x1 + x2) / 2 with x2 = x1 + w: the halving is exact, so theta is the official one, bit
    # for bit
    boxes = torch.stack([(top + (top + box_h)) / 2, (left + (left + box_w)) / 2, box_h, box_w], dim=1)
    return boxes, top, left, box_h, box_w


@pytest.mark.parametrize('spec', BOXES)
def test_crop_boxes_is_the_official_crop(spec):
    """float32: the official float32 sequence to rounding (<= 2e-6); float64: exact bilinear sampling
    with zero padding. The old sampler (clamped box, border padding) fails both where the box touches
    or crosses an edge, and the float32 check everywhere at 224 px (~3e-5)."""
    torch.manual_seed(2)
    img_h, img_w, *_, size = spec
    images = torch.rand(1, 3, img_h, img_w)
    boxes, top, left, box_h, box_w = _boxes(spec, torch.float32)
    out = crop_boxes(images, boxes, size)
    ref = official_box_crop(images, top, left, box_h, box_w, (size, size))
    assert (out - ref).abs().max() <= 2e-6
    boxes64, top64, left64, box_h64, box_w64 = _boxes(spec, torch.float64)
    out64 = crop_boxes(images.double(), boxes64, size)
    exact = bilinear_zeros(images.double(), box_sample_points(top64, box_h64, size),
                           box_sample_points(left64, box_w64, size))
    assert torch.allclose(out64, exact, atol=1e-12)
    ref64 = official_box_crop(images.double(), top64, left64, box_h64, box_w64, (size, size))
    assert (out.double() - ref64).abs().max() <= (ref.double() - ref64).abs().max() + 2e-6


def test_crop_boxes_zero_padding_differs_from_the_old_clamped_crop():
    """A 96 px box at the corner of a 224 frame resized to 128: the outermost output pixels sample
    -0.125 px and blend in 12.5 % zero (the README's 'outermost half pixel' claim was wrong)."""
    images = torch.ones(1, 1, 224, 224)
    boxes = torch.tensor([[48.0, 48.0, 96.0, 96.0]])
    out = crop_boxes(images, boxes, 128)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.875 ** 2, abs=1e-5)
    assert out[0, 0, 0, 5].item() == pytest.approx(0.875, abs=1e-5)
    assert out[0, 0, 5:, 5:].eq(1).all()
    old = crop_boxes(images, boxes, 128, clamp_inside=True)
    assert old.eq(1).all()
    # a box hanging half outside samples zeros there (the old sampler moved it inside)
    half_out = crop_boxes(images, torch.tensor([[0.0, 112.0, 64.0, 64.0]]), 8)
    assert half_out[0, 0, :4].eq(0).all() and half_out[0, 0, 4:].eq(1).all()
    moved = crop_boxes(images, torch.tensor([[0.0, 112.0, 64.0, 64.0]]), 8, clamp_inside=True)
    assert moved.eq(1).all()


def test_crop_boxes_gradcheck():
    """The crop is differentiable in the box (the spatial policy's training signal) and the images, also
    for boxes that cross the edge."""
    torch.manual_seed(3)
    images = torch.rand(3, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[3.1, 4.3, 3.3, 4.7], [0.6, 8.1, 4.9, 3.2], [2.7, 3.9, 9.3, 8.6]],
                         dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: crop_boxes(x, b, (4, 3)), (images, boxes))
    assert torch.autograd.gradcheck(lambda b: crop_boxes(images.detach()[:2], b, 4, clamp_inside=True),
                                    (boxes[:2].detach().clone().requires_grad_(), ))


def test_crop_patches_bilinear_gradcheck():
    torch.manual_seed(4)
    images = torch.rand(2, 2, 11, 13, dtype=torch.float64)
    loc = torch.tensor([[0.31, 0.77], [0.52, 0.08]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda l: crop_patches(images, l, (5, 4), backend='bilinear'),
                                    (loc, ))


def official_mgnet_glimpse(images, params, size):
    """The authors' MGNet ``GlimpseGenerator``: theta [[s, 0, x], [0, s, y]], affine_grid and
    grid_sample with align_corners=True and grid_sample's default zero padding, no clamp."""
    s, tx, ty = params.unbind(dim=1)
    zeros = torch.zeros_like(s)
    theta = torch.stack([torch.stack([s, zeros, tx], 1), torch.stack([zeros, s, ty], 1)], 1)
    grid = F.affine_grid(theta, (images.shape[0], images.shape[1], size, size), align_corners=True)
    return F.grid_sample(images, grid.type_as(images), align_corners=True)


def test_affine_glimpse_identity_and_official():
    torch.manual_seed(5)
    x = torch.rand(2, 3, 32, 32)
    ident = affine_glimpse(x, torch.ones(2), torch.zeros(2, 2), 12)
    assert torch.allclose(ident, F.interpolate(x, size=12, mode='bilinear', align_corners=True),
                          atol=1e-6)
    # glimpses inside, at the edge and leaving the image: the official sequence (zeros, no clamp)
    params = torch.tensor([[0.3, 0.7, -0.7], [0.5, 0.9, 0.2], [0.2, -1.1, 0.0], [0.5, 5.0, 0.0]])
    images = torch.rand(4, 3, 40, 40)
    out = affine_glimpse(images, params[:, 0], params[:, 1:], 9)
    assert torch.equal(out, official_mgnet_glimpse(images, params, 9))
    # pushed off the right edge: zeros there (the old border + clamp gave the right half)
    assert out[3].eq(0).all() and out[1, :, :, -1].eq(0).all()
    old = affine_glimpse(images, params[:, 0], params[:, 1:], 9, padding_mode='border', inside=True)
    inside = torch.tensor([[0.5, 0.5, 0.0]])
    assert torch.allclose(old[3:], affine_glimpse(images[3:], inside[:, 0], inside[:, 1:], 9))
    # float64: exact bilinear sampling at ((t + s u) + 1) (W - 1) / 2, u = linspace(-1, 1, g)
    out64 = affine_glimpse(images.double(), params[:, 0].double(), params[:, 1:].double(), 9)
    u = torch.linspace(-1, 1, 9, dtype=torch.float64)
    p64 = params.double()
    ys = (p64[:, 2:3] + p64[:, :1] * u + 1) * (40 - 1) / 2
    xs = (p64[:, 1:2] + p64[:, :1] * u + 1) * (40 - 1) / 2
    assert torch.allclose(out64, bilinear_zeros(images.double(), ys, xs), atol=1e-12)
    with pytest.raises(ValueError, match='padding_mode'):
        affine_glimpse(images, params[:, 0], params[:, 1:], 9, padding_mode='constant')
    with pytest.raises(ValueError, match=r'translate must be \(B, 2\)'):
        affine_glimpse(images, params[:, 0], params[:, 1:2], 9)


def test_affine_sample_checks_theta():
    with pytest.raises(ValueError, match=r'theta must be \(B, 2, 3\)'):
        affine_sample(torch.rand(2, 1, 5, 5), torch.zeros(2, 3, 3), 3)


def test_sample_bilinear_at_pixel_centres():
    x = torch.rand(1, 2, 6, 7)
    ys = torch.arange(6.0)[None]
    xs = torch.arange(7.0)[None]
    assert torch.allclose(sample_bilinear(x, ys, xs), x, atol=1e-6)
