# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR-ResNet: shapes and strides, masks, and the MACs/params of sar.md §2.10."""
import pytest
import torch

from mmdynamic.models.backbones import SARResNet, SARResNetCifar
from mmdynamic.models.layers import (MaskGenerator, masks_from_logits, straight_through_gumbel)
from mmdynamic.models.layers.sar_blocks import RefineBottleneck


def _force_density(model, refine: bool) -> None:
    """All masks on (refine=True) or off, through the mask generators' bias."""
    for m in model.modules():
        if isinstance(m, MaskGenerator):
            m.bias_init = (0.0, 20.0) if refine else (20.0, 0.0)
            m.reset_bias()
            torch.nn.init.zeros_(m.fc.weight)


def _macs_and_params(model, size=224, refine=True):
    """Backbone MACs plus the ImageNet head (GAP + 1000-way fc), as the paper's table counts them."""
    model.init_weights()
    model.eval()
    _force_density(model, refine)
    with torch.no_grad():
        model(torch.rand(1, 3, size, size))
    channels = model.out_channels[-1]
    head = channels * (size // 32)**2 + channels * 1000
    return (float(model.last_flops[0]) + head) / 1e9, sum(p.numel()
                                                          for p in model.parameters()) / 1e6


# (kwargs, GMACs at r=1, GMACs at r=0, params in M incl. a 1000-way fc) from sar.md §2.10
TABLE = [
    (dict(depth=50, groups=1), 3.95, 1.86, 28.20),
    (dict(depth=50, groups=2), 2.90, 1.86, 25.02),
    (dict(depth=50, groups=4), 2.38, 1.86, 23.43),
    (dict(depth=50, groups=4, base_scale=4), 2.27, 1.74, 23.43),
    (dict(depth=50, groups=2, base_scale=4, alpha=1), 3.05, 2.01, 29.87),
    (dict(depth=34, groups=2), 2.38, 1.29, 20.35),
    (dict(depth=34, groups=4, base_scale=4), 1.77, 1.22, 18.71),
]


@pytest.mark.parametrize('kwargs, full, empty, params', TABLE)
def test_macs_and_params_match_the_paper_table(kwargs, full, empty, params):
    model = SARResNet(**kwargs)
    fc = (2048 if kwargs['depth'] == 50 else 512) * 1000 + 1000
    g_full, p = _macs_and_params(model, refine=True)
    g_empty, _ = _macs_and_params(model, refine=False)
    assert g_full == pytest.approx(full, abs=0.005)  # the table's rounding
    assert g_empty == pytest.approx(empty, abs=0.005)
    assert p + fc / 1e6 == pytest.approx(params, abs=0.005)


def test_g2_density_half_is_2_38_gmacs_and_minus_41_percent():
    """R50 G2s2a2b1 at r = 0.5: 2.38 G, -41 % vs ResNet-50 (4.09 G)."""
    model = SARResNet(depth=50, groups=2)
    full, _ = _macs_and_params(model, refine=True)
    empty, _ = _macs_and_params(model, refine=False)
    half = (full + empty) / 2  # refine MACs are linear in the density
    assert half == pytest.approx(2.38, abs=0.005)
    assert 1 - half / 4.09 == pytest.approx(0.41, abs=0.01)
    # G1 at r = 0.3: 2.49 G
    g1 = SARResNet(depth=50, groups=1)
    g1_full, _ = _macs_and_params(g1, refine=True)
    g1_empty, _ = _macs_and_params(g1, refine=False)
    assert g1_empty + 0.3 * (g1_full - g1_empty) == pytest.approx(2.49, abs=0.005)


def test_per_stage_macs_of_g2_at_half_density():
    """sar.md §2.10 per-stage table, SAR-1: base 63.1, mask 7.2, refine 150.9, att+fusion 95.1 M."""
    from mmdynamic.models.layers.sar_layers import MacsMeter
    model = SARResNet(depth=50, groups=2)
    model.init_weights()
    model.eval()
    stage = model.stages[0]
    x = torch.rand(1, 64, 56, 56)
    parts = {}
    with torch.no_grad():
        meter = MacsMeter(1, x.device)
        x_base = x
        for block in stage.base:
            x_base = block(x_base, meter)
        stage.base_transform(x_base, meter)
        parts['base'] = meter.total().item()
        meter = MacsMeter(1, x.device)
        for gen in stage.masks:
            gen(x_base, meter)
        parts['mask'] = meter.total().item()
        meter = MacsMeter(1, x.device)
        x_ref = x
        half = torch.zeros(1, 2, 14, 14)
        half[:, :, :7] = 1
        for block in stage.refine:
            x_ref = block(x_ref, half, meter)
        parts['refine'] = meter.total().item()
        meter = MacsMeter(1, x.device)
        fused = stage.fuse(torch.rand(1, 256, 28, 28), x_ref, meter)
        stage.fusion_block(fused, meter)
        parts['fusion'] = meter.total().item()
    expected = dict(base=63.1, mask=7.2, refine=150.9, fusion=95.1)
    for key, value in expected.items():
        assert parts[key] / 1e6 == pytest.approx(value, abs=0.1), (key, parts)


def test_output_strides_and_channels_like_mmdet_resnet():
    model = SARResNet(depth=50, out_indices=(0, 1, 2, 3))
    model.init_weights()
    outs = model(torch.rand(2, 3, 224, 224))
    assert [tuple(o.shape) for o in outs] == [(2, 256, 56, 56), (2, 512, 28, 28),
                                            (2, 1024, 14, 14), (2, 2048, 7, 7)]
    assert model.out_channels == (256, 512, 1024, 2048)
    assert model.num_masks == 10 and len(model.last_masks) == 10
    assert tuple(model.last_masks[0].shape) == (2, 2, 14, 14)
    assert tuple(model.last_flops.shape) == (2, )


def test_output_stride_8_variant():
    model = SARResNet(depth=50, strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4),
                      out_indices=(0, 1, 2, 3))
    model.init_weights()
    outs = model(torch.rand(1, 3, 128, 128))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 32), (16, 16), (16, 16), (16, 16)]


def test_odd_input_sizes():
    model = SARResNet(depth=34, out_indices=(0, 1, 2, 3))
    model.init_weights()
    outs = model(torch.rand(1, 3, 150, 203))
    assert [tuple(o.shape[-2:]) for o in outs] == [(38, 51), (19, 26), (10, 13), (5, 7)]


def test_cifar_variant():
    model = SARResNetCifar(depth=32, groups=2)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        (out, ) = model(torch.rand(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 64, 8, 8) and len(model.last_masks) == 12
    assert float(model.last_flops[0]) / 1e6 == pytest.approx(39.4, abs=0.1)  # R32 G2a2b1 at r=1
    wide = SARResNetCifar(depth=32, width=2, groups=4, beta=2)
    wide.init_weights()
    wide.eval()
    with torch.no_grad():
        wide(torch.rand(1, 3, 32, 32))
    assert float(wide.last_flops[0]) / 1e6 == pytest.approx(259.3, abs=0.3)  # R32x2 G4a2b2 at r=1


def test_bad_arguments():
    with pytest.raises(KeyError, match='invalid depth 18'):
        SARResNet(depth=18)
    with pytest.raises(ValueError, match='groups=3 does not divide'):
        SARResNet(depth=50, groups=3)
    with pytest.raises(ValueError, match='base_scale must be 2 or 4'):
        SARResNet(depth=50, base_scale=3)
    with pytest.raises(ValueError, match='out_indices'):
        SARResNet(depth=50, out_indices=(4, ))
    with pytest.raises(ValueError, match="fusion must be 'att' or 'add'"):
        SARResNet(depth=50, fusion='concat')


def test_select_all_at_init_and_deterministic_eval():
    model = SARResNet(depth=34)
    model.init_weights()
    model.eval()
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        a = model(x)[0]
        density = model.density()
        b = model(x)[0]
    assert torch.equal(a, b)
    assert (density > 0.99).all()


def test_straight_through_gumbel():
    torch.manual_seed(0)
    logits = torch.randn(64, 2, 2, 3, 3, requires_grad=True)
    sample = straight_through_gumbel(logits, tau=0.5, dim=2)
    # hard one-hot forward
    assert set(sample.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(sample.sum(dim=2), torch.ones(64, 2, 3, 3))
    # gradient flows to the logits (soft sample)
    sample[:, :, 1].sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # refine probability follows sigmoid(l1 - l0) on average
    biased = torch.zeros(20000, 1, 2, 1, 1)
    biased[:, :, 1] = 1.0
    rate = straight_through_gumbel(biased, tau=1.0, dim=2)[:, :, 1].mean()
    assert rate == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=0.02)
    # eval: argmax, deterministic; eval_stochastic: sampled
    eval_masks = masks_from_logits(biased[:5], training=False, tau=1.0)
    assert (eval_masks == 1).all()
    torch.manual_seed(1)
    stochastic = masks_from_logits(biased, training=False, tau=1.0, stochastic=True)
    assert 0 < stochastic.mean() < 1


def test_refine_block_bn_leak_and_mask_output():
    """Where nothing is selected, the block adds BN3(0) (authors' code) or nothing (mask_output)."""
    torch.manual_seed(0)
    for mask_output in (False, True):
        block = RefineBottleneck(64, 16, groups=2, last_relu=False, mask_output=mask_output).eval()
        torch.nn.init.uniform_(block.bn3.weight)
        torch.nn.init.uniform_(block.bn3.bias)
        block.bn3.running_mean.uniform_(-1, 1)
        x = torch.rand(1, 64, 8, 8)
        with torch.no_grad():
            out = block(x, torch.zeros(1, 2, 2, 2))
        bn = block.bn3
        leak = bn.bias - bn.weight * bn.running_mean / torch.sqrt(bn.running_var + bn.eps)
        expected = x + (0 if mask_output else leak[None, :, None, None])
        assert torch.allclose(out, expected, atol=1e-6)


def test_frozen_stages_and_norm_eval():
    model = SARResNet(depth=34, frozen_stages=1, norm_eval=True)
    model.init_weights()
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stages[1].base[0].bn1.training  # norm_eval
    assert model.stages[1].training
