# Copyright (c) mmdynamic contributors. All rights reserved.
"""MGNet: glimpses, localisation, gradient scaling, attention, loss, FF-Net, early exit, MACs."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

import mmdynamic.models  # noqa: F401
from mmdynamic.models.cls.mgnet import (GlimpseAttention, GlimpseGenerator, LocalizationHead, MGNet,
                                        count_mgnet_macs, grad_scale, identity_params,
                                        mgnet_paper_macs)
from mmdynamic.models.utils import EarlyExitExecutor
from mmdynamic.registry import MODELS
from mmdynamic.utils.flops import count_macs


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    """The tiny backbones are mmpretrain types: build in mmpretrain's scope."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')

TINY_BACKBONE = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, ))
BACKBONES = {  # Table 1 backbones: (config, D)
    'ResNet-18': dict(type='ResNet', depth=18, out_indices=(3, ), style='pytorch'),
    'ResNet-50': dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch'),
    'ResNeXt-50': dict(type='ResNeXt', depth=50, groups=32, width_per_group=4, out_indices=(3, )),
    'WRN-50-2': dict(type='ResNet', depth=50, stem_channels=64, base_channels=128, expansion=2,
                     out_indices=(3, )),
}
# Table 1 (GMACs at 224, MGNet = 4 glimpses of 96) and the exits the paper gives (Table 2, spec 3.4)
TABLE1 = {'ResNet-18': (1.343, 1.815), 'ResNet-50': (3.172, 4.104), 'ResNeXt-50': (3.276, 4.246),
          'WRN-50-2': (8.542, 11.413)}
TABLE2_EXITS = {'ResNet-18': (0.3342, 0.6695, 1.0058), 'ResNet-50': (0.7677, 1.5523),
                'ResNeXt-50': (0.7937, 1.6042), 'WRN-50-2': (2.1101, 4.2372)}


def tiny_mgnet(**kwargs) -> MGNet:
    cfg = dict(type='MGNet', backbone=TINY_BACKBONE, num_classes=5, num_glimpses=3, glimpse_size=24)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def test_identity_glimpse_equals_interpolate_align_corners():
    x = torch.randn(2, 3, 56, 40)
    gen = GlimpseGenerator(24)
    glimpse = gen(x, identity_params(2, x))
    ref = F.interpolate(x, size=(24, 24), mode='bilinear', align_corners=True)
    assert torch.allclose(glimpse, ref, atol=1e-4)  # float32 grid arithmetic
    # M = 1 (FF-Net): the identity glimpse is the image itself
    full = GlimpseGenerator(None)(x, identity_params(2, x))
    assert full.shape == x.shape and torch.allclose(full, x, atol=1e-4)
    with pytest.raises(ValueError, match='glimpse size'):
        GlimpseGenerator(0)


def official_glimpse(images, params, size, align_corners=True):
    """The authors' ``GlimpseGenerator``: theta [[s, 0, x], [0, s, y]], affine_grid, grid_sample with
    grid_sample's default zero padding and no clamp of the centre."""
    s, tx, ty = params.unbind(dim=1)
    zeros = torch.zeros_like(s)
    theta = torch.stack([torch.stack([s, zeros, tx], 1), torch.stack([zeros, s, ty], 1)], 1)
    grid = F.affine_grid(theta, (images.shape[0], images.shape[1], size, size),
                         align_corners=align_corners).type_as(images)
    return F.grid_sample(images, grid, align_corners=align_corners)


def test_glimpse_generator_is_the_official_glimpse():
    """Zero padding and no clamp by default (issue #16, item 22); the old border padding + clamp stay
    as options."""
    torch.manual_seed(0)
    images = torch.rand(4, 3, 40, 40)
    # inside (tight crop), at the edge, leaving the image to the right and to the left
    params = torch.tensor([[0.3, 0.7, -0.7], [0.5, -0.5, 0.5], [0.5, 0.9, 0.2], [0.2, -1.1, 0.0]])
    gen = GlimpseGenerator(9)
    assert gen.padding_mode == 'zeros' and not gen.clamp_inside
    out = gen(images, params)
    assert torch.equal(out, official_glimpse(images, params, 9))
    assert out[2, :, :, -2:].eq(0).all() and out[3, :, :, :3].eq(0).all()
    # align_corners=False: a tight-crop glimpse of side 0.2 in the corner samples pixel -0.056 first,
    # 5.6 % zero with zero padding
    corner = torch.tensor([[0.2, -0.8, -0.8]])
    out_false = GlimpseGenerator(9, align_corners=False)(images[:1], corner)
    assert torch.equal(out_false, official_glimpse(images[:1], corner, 9, align_corners=False))
    border = GlimpseGenerator(9, align_corners=False, padding_mode='border')(images[:1], corner)
    assert torch.allclose(out_false[0, :, 0, 0], border[0, :, 0, 0] * (1 - 0.0556) ** 2, atol=2e-3)
    # the old sampler: centre clamped inside, border padding
    old = GlimpseGenerator(9, padding_mode='border', clamp_inside=True)(images, params)
    clamped = params.clone()
    clamped[2, 1], clamped[3, 1] = 0.5, -0.8
    assert torch.allclose(old, official_glimpse(images, clamped, 9), atol=1e-6)
    assert not torch.allclose(old[2:], out[2:])
    # MGNet's glimpses are the official ones
    assert tiny_mgnet().glimpse.padding_mode == 'zeros' and not tiny_mgnet().glimpse.clamp_inside
    with pytest.raises(ValueError, match='padding_mode'):
        GlimpseGenerator(9, padding_mode='constant')


def test_localization_crops_stay_inside_image():
    torch.manual_seed(0)
    head = LocalizationHead(16, scale_range=(0.2, 0.5), grad_scale=0.02)
    head.reset_parameters()
    params = head(torch.randn(4096, 16) * 10)  # saturate the sigmoid too
    scale, shift = params[:, 0], params[:, 1:]
    assert scale.min() >= 0.2 - 1e-6 and scale.max() <= 0.5 + 1e-6
    assert (shift.abs() <= (1 - scale)[:, None] + 1e-6).all()
    assert scale.max() - scale.min() > 0.25  # the range is used
    # exact corners of the mapping
    corners = head.map_params(torch.tensor([[0., 0., 1.], [1., 1., 0.]]))
    assert torch.allclose(corners, torch.tensor([[0.2, -0.8, 0.8], [0.5, 0.5, -0.5]]))
    # the top-left crop of side 0.5 samples pixel rows/cols 0..4.5 of a 10 x 10 image (align_corners)
    img = torch.arange(100.).reshape(1, 1, 10, 10)  # value = 10 * row + col
    crop = GlimpseGenerator(4)(img, torch.tensor([[0.5, -0.5, -0.5]]))
    expected = 10 * torch.linspace(0, 4.5, 4)[:, None] + torch.linspace(0, 4.5, 4)[None]
    assert torch.allclose(crop[0, 0], expected, atol=1e-3)
    with pytest.raises(ValueError, match='scale_range'):
        LocalizationHead(16, scale_range=(0.6, 0.5))


def test_gradient_scaling():
    x = torch.randn(5, 3, requires_grad=True)
    y = grad_scale(x, 0.02)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.02))
    # inside the localisation head: between the sigmoid and the range mapping
    torch.manual_seed(0)
    memory = torch.randn(3, 8)
    grads = []
    for s in (1.0, 0.01):
        head = LocalizationHead(8, grad_scale=s)
        torch.manual_seed(1)
        head.reset_parameters()
        head.zero_grad()
        head(memory).sum().backward()
        grads.append(head.fc.weight.grad.clone())
    assert torch.allclose(grads[1], grads[0] * 0.01, atol=1e-7)


def test_attention_shapes_and_kv_cache():
    torch.manual_seed(0)
    attn = GlimpseAttention(11)
    attn.reset_parameters()
    tokens = torch.randn(2, 4, 11)
    out = attn(tokens)
    assert out.shape == (2, 11) and (out >= 0).all()
    # only the last row matters: it equals attention of the last query over all tokens
    q = attn.q_proj(tokens[:, -1:])
    w = (q @ attn.k_proj(tokens).transpose(1, 2) / math.sqrt(11)).softmax(-1)
    ref = F.relu(attn.norm(attn.out_proj(w @ attn.v_proj(tokens))))[:, 0]
    assert torch.allclose(out, ref, atol=1e-5)
    # one token: softmax of one element is 1, so the output is ReLU(LN(Wo Wv x))
    single = attn(tokens[:, :1])
    assert torch.allclose(single, F.relu(attn.norm(attn.out_proj(attn.v_proj(tokens[:, 0])))),
                          atol=1e-5)
    # key/value cache gives the same outputs step by step
    keys = values = tokens.new_zeros(2, 0, 11)
    for t in range(4):
        cached, keys, values = attn.forward_cached(tokens[:, t], keys, values)
        assert torch.allclose(cached, attn(tokens[:, :t + 1]), atol=1e-5)
    assert keys.shape == (2, 4, 11)


def test_forward_shapes_and_positional_encoding_is_detached():
    torch.manual_seed(0)
    model = tiny_mgnet()
    x = torch.randn(2, 3, 64, 64)
    assert model.forward(x, mode='tensor').shape == (3, 2, 5)
    out = model.forward_glimpses(x)
    assert out['params'].shape == (3, 2, 3) and out['feats'].shape == (3, 2, model.feat_dim)
    assert torch.equal(out['params'][0], identity_params(2, x))
    assert model.token_dim == model.feat_dim + 3 == 67
    # the positional path carries no gradient to the localisation head: with the image path cut
    # (a constant backbone feature) its gradient is zero; without detaching it is not.
    for detach, expect_zero in ((True, True), (False, False)):
        model = tiny_mgnet(detach_pos=detach)
        model.eval()
        model.encode = lambda g: g.mean(dim=(1, 2, 3))[:, None].detach().expand(-1, 64) * 0 + 1
        model.forward_exits(x)[-1].sum().backward()
        grad = model.localization.fc.weight.grad
        assert (grad is None or grad.abs().max() == 0) == expect_zero


def test_loss_weights_and_aux_glimpses():
    torch.manual_seed(0)
    model = tiny_mgnet()
    model.eval()  # fixed BN statistics: the same outputs in both calls
    x, labels = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    losses = model.loss(x, samples(labels))
    out = model.forward_glimpses(x)
    ce_global = torch.stack([F.cross_entropy(lg, labels) for lg in out['logits']]).mean()
    ce_aux = torch.stack([F.cross_entropy(model.glimpse_head(f), labels)
                          for f in out['feats'][1:]]).mean()  # glimpses 2..T (the code)
    assert losses['loss_global'].item() == pytest.approx(0.4 * ce_global.item(), rel=1e-5)
    assert losses['loss_glimpse'].item() == pytest.approx(0.6 * ce_aux.item(), rel=1e-5)
    assert set(k for k in losses if 'loss' in k) == {'loss_global', 'loss_glimpse'}
    assert 'ce_exit3' in losses and 'acc_exit1' in losses
    # the paper's Eq. 8: glimpses 1..T
    model.aux_on_first_glimpse = True
    ce_all = torch.stack([F.cross_entropy(model.glimpse_head(f), labels)
                          for f in out['feats']]).mean()
    assert model.loss(x, samples(labels))['loss_glimpse'].item() == pytest.approx(
        0.6 * ce_all.item(), rel=1e-5)
    with pytest.raises(ValueError, match='aux_weight'):
        tiny_mgnet(aux_weight=1.0)


def test_ffnet_is_mgnet_with_one_full_resolution_glimpse():
    torch.manual_seed(0)
    ff = tiny_mgnet(num_glimpses=1, glimpse_size=None, grad_scale=0.02)
    ff.eval()
    assert ff.glimpse_head is None and ff.aux_weight == 0 and ff.localization.grad_scale == 1
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 4])
    feat = ff.encode(x)  # the backbone sees the image itself
    token = torch.cat([feat, torch.tensor([[1., 0., 0.]]).expand(2, 3)], dim=1)
    ref = ff.global_head(F.relu(ff.fusion.norm(ff.fusion.out_proj(ff.fusion.v_proj(token)))))
    assert torch.allclose(ff(x)[0], ref, atol=1e-5)
    losses = ff.loss(x, samples(labels))
    assert set(k for k in losses if 'loss' in k) == {'loss_global'}
    assert losses['loss_global'].item() == pytest.approx(F.cross_entropy(ref, labels).item(),
                                                         rel=1e-5)


def test_no_maxpool_variant_and_bad_config():
    model = tiny_mgnet(stem_maxpool=False)
    assert isinstance(model.backbone.maxpool, torch.nn.Identity)
    x = torch.randn(1, 3, 32, 32)
    with_pool = tiny_mgnet()
    macs = [count_macs(m, (x, ), fn=m.encode) for m in (model, with_pool)]
    assert macs[0] > 2.5 * macs[1]  # the stages after the stem run at twice the resolution
    with pytest.raises(ValueError, match='num_glimpses'):
        tiny_mgnet(num_glimpses=0)


def test_early_exit_executor_and_predict():
    torch.manual_seed(0)
    for recompute in (True, False):
        model = tiny_mgnet(recompute_attention=recompute)
        model.eval()
        x = torch.randn(6, 3, 64, 64)
        full = model.forward_exits(x)
        result = EarlyExitExecutor([0.3, 0.3, float('-inf')]).run(model, x)
        for i in range(6):
            assert torch.allclose(result.logits[i], full[result.exits[i], i], atol=1e-5)
    preds = model.predict(x)
    assert preds[0].exit_logits.shape == (3, 5)
    macs = preds[0].exit_macs
    assert macs.shape == (3, ) and (macs[1:] > macs[:-1]).all()


def test_kv_cache_matches_recompute_in_model():
    torch.manual_seed(0)
    full = tiny_mgnet()
    cached = tiny_mgnet(recompute_attention=False)
    cached.load_state_dict(full.state_dict())
    full.eval(), cached.eval()
    x = torch.randn(3, 3, 64, 64)
    assert torch.allclose(full.forward_exits(x), cached.forward_exits(x), atol=1e-4)


def test_table1_macs_resnet18_counted():
    """The counter with the paper's convention reproduces Table 1/2 for ResNet-18 (4 x 96 and FF)."""
    model = MGNet(backbone=BACKBONES['ResNet-18'], num_classes=100, glimpse_size=96)
    exits = [m / 1e9 for m in count_mgnet_macs(model, (3, 224, 224))]
    for got, want in zip(exits, TABLE2_EXITS['ResNet-18'] + (TABLE1['ResNet-18'][0], )):
        assert got == pytest.approx(want, abs=1e-3)
    backbone = count_macs(model, (torch.zeros(1, 3, 96, 96), ), fn=model.encode,
                          op_handles={'aten::batch_norm': None, 'aten::adaptive_avg_pool2d': None})
    model_formula = mgnet_paper_macs(backbone, 512, 100, 4, locations_per_exit='model')
    assert [round(m) for m in model_formula] == [round(m * 1e9) for m in exits]  # exact
    ff = MGNet(backbone=BACKBONES['ResNet-18'], num_classes=100, num_glimpses=1, glimpse_size=None)
    assert count_mgnet_macs(ff, (3, 224, 224))[0] / 1e9 == pytest.approx(1.815, abs=1e-3)
    # MMEngine's default convention (norms, pooling, sampling) costs a little more
    assert ff.exit_macs((3, 224, 224))[0] > count_mgnet_macs(ff, (3, 224, 224))[0]
    # parameters (spec 1.10): inference 12,293,650, + glimpse classifier in training
    assert sum(p.numel() for p in model.parameters()) == 12_344_950
    assert sum(p.numel() for n, p in model.named_parameters()
               if not n.startswith('glimpse_head')) == 12_293_650


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_table1_macs_formula(name):
    """Paper formula with the backbone's conv MACs counted at 96 and 224: Table 1 to 1e-3 G."""
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    backbone = MMPRETRAIN_MODELS.build(BACKBONES[name])
    dim = 512 if name == 'ResNet-18' else 2048
    conv = {
        size: count_macs(backbone, (torch.zeros(1, 3, size, size), ),
                         op_handles={'aten::batch_norm': None})
        for size in (96, 224)
    }
    exits = [m / 1e9 for m in mgnet_paper_macs(conv[96], dim, 100, 4)]
    ff = mgnet_paper_macs(conv[224], dim, 100, 1)[0] / 1e9
    mg_ref, ff_ref = TABLE1[name]
    assert exits[-1] == pytest.approx(mg_ref, abs=1e-3)
    assert ff == pytest.approx(ff_ref, abs=1e-3)
    for got, want in zip(exits, TABLE2_EXITS[name]):
        assert got == pytest.approx(want, abs=1e-3)


@pytest.mark.parametrize('depth,mgnet,ffnet,ffnet_maxpool', [(18, 0.4301, 0.5657, 0.1497),
                                                             (34, 0.8837, 1.1705, 0.3009)])
def test_table3_tiny_imagenet_macs(depth, mgnet, ffnet, ffnet_maxpool):
    """Table 3 (64 px, 200 classes, 3 glimpses of 32 px, no stem max-pool) counts BN as well: it is
    reproduced by MMEngine's default convention (what ``exit_macs`` and the budget tools use)."""
    backbone = dict(type='ResNet', depth=depth, out_indices=(3, ), style='pytorch')
    common = dict(type='MGNet', backbone=backbone, num_classes=200)
    mg = MODELS.build(dict(common, num_glimpses=3, glimpse_size=32, stem_maxpool=False))
    ff = MODELS.build(dict(common, num_glimpses=1, glimpse_size=None, stem_maxpool=False))
    ff_pool = MODELS.build(dict(common, num_glimpses=1, glimpse_size=None))
    assert mg.exit_macs((3, 64, 64))[-1] / 1e9 == pytest.approx(mgnet, abs=1e-4)
    assert ff.exit_macs((3, 64, 64))[0] / 1e9 == pytest.approx(ffnet, abs=1e-4)
    assert ff_pool.exit_macs((3, 64, 64))[0] / 1e9 == pytest.approx(ffnet_maxpool, abs=1e-4)
