# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR-ResNet: shapes and strides, masks, the MACs/params of sar.md §2.10 and the authors' layouts."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmdynamic.models.backbones import SARResNet, SARResNetCifar
from mmdynamic.models.layers import (MaskGenerator, masks_from_logits, straight_through_gumbel)
from mmdynamic.models.layers.sar_blocks import RefineBottleneck

from ..test_layers.test_sar_sparse import _compare_backbone, _mixed_masks, _randomise


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
    # the official ResNet-101 stages (4, 8, 18, 3) (measured here; params as the official code)
    (dict(depth=101, groups=2), 5.01, 2.11, 36.26),
]


@pytest.mark.parametrize('kwargs, full, empty, params', TABLE)
def test_macs_and_params_match_the_paper_table(kwargs, full, empty, params):
    model = SARResNet(**kwargs)
    fc = (512 if kwargs['depth'] == 34 else 2048) * 1000 + 1000
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
    _force_density(model, True)
    with torch.no_grad():
        (out, ) = model(torch.rand(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 64, 8, 8) and len(model.last_masks) == 12
    # R32 G2a2b1 at r=1 (additive fusion; 39.38 M with GAP and fc)
    assert float(model.last_flops[0]) / 1e6 == pytest.approx(39.367, abs=0.001)
    # R32x2 G4a2b2 and R20x1.5 G2a2b1 at r=1 (sar.md §2.10) and r=0
    for kwargs, full, empty in ((dict(depth=32, width=2, groups=4, beta=2), 259.23, 53.97),
                                (dict(depth=20, width=1.5, groups=2), 50.56, 22.25)):
        wide = SARResNetCifar(**kwargs)
        wide.init_weights()
        wide.eval()
        for refine, macs in ((True, full), (False, empty)):
            _force_density(wide, refine)
            with torch.no_grad():
                wide(torch.rand(1, 3, 32, 32))
            assert float(wide.last_flops[0]) / 1e6 == pytest.approx(macs, abs=0.01)


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


def test_gumbel_noise_scale():
    """noise_scale 0: the argmax of the logits forward, the softmax gradient at tau backward; the
    training masks of a backbone follow its ``gumbel_noise``, eval_stochastic keeps the full noise."""
    torch.manual_seed(0)
    logits = torch.randn(8, 2, 2, 3, 3, requires_grad=True)
    mask = masks_from_logits(logits, training=True, tau=0.5, noise_scale=0.0)
    assert torch.equal(mask.detach(), (logits[:, :, 1] > logits[:, :, 0]).float())
    mask.sum().backward()
    soft = torch.softmax(logits.detach() / 0.5, dim=2)[:, :, 1]
    # d soft_1 / d l_1 = p (1 - p) / tau
    assert torch.allclose(logits.grad[:, :, 1], soft * (1 - soft) / 0.5, atol=1e-6)
    # half the noise: the refine rate of logit gap 1 is sigmoid(1 / 0.5) (a logistic of scale 0.5)
    biased = torch.zeros(20000, 1, 2, 1, 1)
    biased[:, :, 1] = 1.0
    rate = straight_through_gumbel(biased, tau=1.0, noise_scale=0.5)[:, :, 1].mean()
    assert rate == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=0.02)
    with pytest.raises(ValueError, match='noise_scale'):
        straight_through_gumbel(biased, tau=1.0, noise_scale=-1.0)

    # a backbone's training masks: deterministic with gumbel_noise 0, sampled with the default 1
    model = SARResNetCifar(depth=20, width=0.25, mask_grid=(4, 4, 2), mask_bias_init=(0.0, 0.0))
    model.init_weights()
    model.train()
    x = torch.randn(4, 3, 32, 32)

    def masks(seed):
        torch.manual_seed(seed)
        model(x)
        return torch.cat([m.detach().flatten() for m in model.last_masks])

    assert model.gumbel_noise == 1.0
    assert not torch.equal(masks(1), masks(2))
    model.gumbel_noise = 0.0
    assert torch.equal(masks(1), masks(2))
    model.eval()
    model.eval_stochastic = True
    assert model._noise_scale() == 1.0  # the official-style stochastic evaluation keeps the noise


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


# --------------------------------------------------------------------------------------------------
# The authors' layouts (official_checkpoints.md, SAR section): key -> shape of an official state_dict,
# written from the spec independently of the backbone, and the key rules, both shared with the
# converter (tools/model_converters/sar_official_to_mmdynamic.py). Our models must hold exactly these
# tensors, one to one.


def _sar_converter():
    import importlib.util
    path = osp.join(osp.dirname(__file__), '..', '..', '..', 'tools', 'model_converters',
                    'sar_official_to_mmdynamic.py')
    spec = importlib.util.spec_from_file_location('sar_official_to_mmdynamic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CONVERTER = _sar_converter()
official_imagenet_layout = _CONVERTER.official_imagenet_layout
official_cifar_layout = _CONVERTER.official_cifar_layout


def to_mmdynamic(layout: dict) -> dict:
    """The official key -> shape list in our names, by the converter's rule table (every key must
    match a rule and land on its own key)."""
    from mmdynamic.utils.official_converter import apply_rules
    result = apply_rules(layout, _CONVERTER.RULES)
    assert not result.unmatched and not result.dropped, result.unmatched[:5]
    return dict(result.state_dict)


def our_layout(backbone, classes: int) -> dict:
    out = {f'backbone.{k}': tuple(v.shape) for k, v in backbone.state_dict().items()}
    channels = backbone.out_channels[-1]
    return out | {'head.fc.weight': (classes, channels), 'head.fc.bias': (classes, )}


def _params_with_fc(backbone, classes: int) -> float:
    channels = backbone.out_channels[-1]
    return (sum(p.numel() for p in backbone.parameters()) + channels * classes + classes) / 1e6


@pytest.mark.parametrize('kwargs, official, tensors', [
    (dict(depth=50, groups=2), dict(block='bottleneck', layers=(3, 4, 6, 3)), 610),
    (dict(depth=50, groups=4, base_scale=4), dict(block='bottleneck', layers=(3, 4, 6, 3),
                                                  groups=4), 610),
    (dict(depth=50, groups=2, fusion='add'), dict(block='bottleneck', layers=(3, 4, 6, 3),
                                                  att=False), 604),
    (dict(depth=34, groups=4, base_scale=4), dict(block='basic', layers=(3, 4, 6, 3), groups=4),
     None),
    (dict(depth=50, groups=2, beta=2, alpha=1), dict(block='bottleneck', layers=(3, 4, 6, 3),
                                                     alpha=1, beta=2), None),
    (dict(depth=101, groups=2), dict(block='bottleneck', layers=(4, 8, 18, 3)), 1358),
    (dict(depth=50, groups=2, deep_stem=True), dict(block='bottleneck', layers=(3, 4, 6, 3),
                                                    use_stem=True), 622),
    (dict(depth=101, groups=2, deep_stem=True), dict(block='bottleneck', layers=(4, 8, 18, 3),
                                                     use_stem=True), 1370),
])
def test_imagenet_layout_is_the_official_one(kwargs, official, tensors):
    """Every official tensor has exactly one place of the same shape and none is left over."""
    with torch.device('meta'):
        model = SARResNet(**kwargs)
    expected = to_mmdynamic(official_imagenet_layout(**official))
    assert our_layout(model, 1000) == expected
    if tensors is not None:
        assert len(expected) == tensors


def test_resnet101_follows_the_official_stages_torchvision_as_option():
    """Official SAR-ResNet-101: stages (4, 8, 18, 3), 27 masks, 36.26 M parameters for G2 s2 a2 b1
    with attention fusion and a 1000-way fc (the old (3, 4, 23, 3) layout: 39.62 M)."""
    with torch.device('meta'):
        model = SARResNet(depth=101, groups=2)
        torchvision = SARResNet(depth=101, groups=2, stage_blocks=(3, 4, 23, 3))
    assert model.stage_blocks == (4, 8, 18, 3)
    assert [len(s.base) + 1 for s in model.stages] + [len(model.layer4)] == [4, 8, 18, 3]
    assert model.num_masks == 27
    assert _params_with_fc(model, 1000) == pytest.approx(36.26, abs=0.005)
    assert torchvision.stage_blocks == (3, 4, 23, 3) and torchvision.num_masks == 2 + 3 + 22
    assert [len(s.base) + 1 for s in torchvision.stages] + [len(torchvision.layer4)] == [3, 4, 23, 3]
    assert _params_with_fc(torchvision, 1000) == pytest.approx(39.62, abs=0.005)
    with pytest.raises(ValueError, match='stage_blocks takes 4 block counts'):
        SARResNet(depth=50, stage_blocks=(3, 1, 6, 3))
    with pytest.raises(ValueError, match='stage_blocks takes 4 block counts'):
        SARResNet(depth=50, stage_blocks=(3, 4, 6))


CIFAR_CONFIGS = sorted(glob.glob(osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'sar',
                                          'sar-resnet*cifar*.py')))


def test_cifar_configs_are_found():
    assert len(CIFAR_CONFIGS) >= 5


@pytest.mark.parametrize('path', CIFAR_CONFIGS, ids=[osp.basename(p) for p in CIFAR_CONFIGS])
def test_cifar_configs_hold_the_official_cifar_layout(path):
    """The CIFAR configs build the authors' additive CIFAR model (official tensors one to one,
    no attention weights); the ``att-fusion`` config is the paper's Eq. 5 variant (+6 tensors)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    bb = cfg.model.backbone
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    classes = cfg.model.head.num_classes
    official = to_mmdynamic(official_cifar_layout(
        SARResNetCifar.depths[bb.depth], bb.width, bb.groups, bb.alpha, bb.beta, classes))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    attention = {k for k in ours if '.fuse.' in k}
    if 'att-fusion' in osp.basename(path):
        assert bb.fusion == 'att' and len(attention) == 6
        assert {k: v for k, v in ours.items() if k not in attention} == official
    else:
        assert not attention
        assert ours == official


def test_cifar_default_is_the_official_additive_model():
    """sar_resnet_cifar3stage_alphaBase R32 G2 a2 b1: 464 tensors, 0.4005 M parameters (100 classes),
    39.38 / 12.25 MMACs (incl. GAP and fc) at density 1 / 0; the sum, not Eq. 5."""
    model = SARResNetCifar(depth=32, groups=2)
    assert all(stage.fuse.mode == 'add' for stage in model.stages)
    layout = to_mmdynamic(official_cifar_layout(5))
    assert our_layout(model, 100) == layout and len(layout) == 464
    assert _params_with_fc(model, 100) == pytest.approx(0.4005, abs=5e-5)
    model.init_weights()
    model.eval()
    head = 64 * 8 * 8 + 64 * 100
    for refine, macs in ((True, 39.38), (False, 12.25)):
        _force_density(model, refine)
        with torch.no_grad():
            model(torch.rand(1, 3, 32, 32))
        assert (float(model.last_flops[0]) + head) / 1e6 == pytest.approx(macs, abs=0.005)
    # numerics: ReLU(up(x_base) + x_refine), checked on one stage against the official sequence
    stage = model.stages[0].double()
    x_base, x_ref = torch.randn(2, 16, 8, 8).double(), torch.randn(2, 16, 16, 16).double()
    expected = F.relu(F.interpolate(x_base, size=(16, 16)) + x_ref)
    torch.testing.assert_close(stage.fuse(x_base, x_ref), expected, rtol=0, atol=0)
    # the paper's attention fusion stays available by name
    att = SARResNetCifar(depth=32, groups=2, fusion='att')
    assert len(our_layout(att, 100)) == 464 + 6


def _stem_reference(model, x: torch.Tensor) -> torch.Tensor:
    """The official ``use_stem`` sequence with the model's weights: three 3x3 conv-BN(eval)-ReLU
    (stride 2, 1, 1; padding 1), then MaxPool(3, 2, 1)."""
    h = x
    for conv, bn in ((0, 1), (3, 4), (6, 7)):
        conv, bn = model.stem[conv], model.stem[bn]
        h = F.conv2d(h, conv.weight, stride=conv.stride, padding=1)
        h = F.relu(F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                training=False, eps=bn.eps))
    return F.max_pool2d(h, 3, 2, 1)


@pytest.mark.parametrize('dtype, tol', [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_deep_stem_forward_matches_the_official_sequence(dtype, tol):
    torch.manual_seed(0)
    # official stem widths (64), narrow stages (base_channels 16) to keep the test fast
    model = _randomise(SARResNet(depth=34, groups=2, deep_stem=True, base_channels=16,
                                 out_indices=(0, 3)), 0)
    model = model.to(dtype).eval()
    assert not hasattr(model, 'conv1')
    assert [tuple(model.stem[i].weight.shape) for i in (0, 3, 6)] == [(32, 3, 3, 3), (32, 32, 3, 3),
                                                                      (64, 32, 3, 3)]
    x = torch.randn(2, 3, 96, 96, dtype=dtype)
    with torch.no_grad():
        outs = model(x)
        h = _stem_reference(model, x)
        assert tuple(h.shape) == (2, 64, 24, 24)
        fused, h, _ = model.stages[0](h, model.tau)
        for stage in model.stages[1:]:
            h = stage(h, model.tau)[1]
        for block in model.layer4:
            h = block(h)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 24, 24), (2, 128, 3, 3)]
    scale = max(h.abs().max().item(), 1.0)
    torch.testing.assert_close(outs[0], fused, rtol=0, atol=tol * scale)
    torch.testing.assert_close(outs[1], h, rtol=0, atol=tol * scale)


def test_deep_stem_macs_freeze_and_bad_width():
    """Stem MACs as the official counter: (3 C/2 + C^2/4 + C^2/2) 9 HW instead of 3 C 49 HW."""
    plain = SARResNet(depth=34, base_channels=16)
    deep = SARResNet(depth=34, base_channels=16, deep_stem=True)
    for model in (plain, deep):
        model.init_weights()
        model.eval()
        _force_density(model, True)
        with torch.no_grad():
            model(torch.rand(1, 3, 96, 96))
    c, hw = 64, 48 * 48
    expected = (3 * c // 2 + c * c // 4 + c * c // 2) * hw * 9 - 3 * c * 49 * hw
    assert float(deep.last_flops[0] - plain.last_flops[0]) == expected
    frozen = SARResNet(depth=34, deep_stem=True, frozen_stages=0)
    frozen.train()
    assert not any(p.requires_grad for p in frozen.stem.parameters())
    assert not frozen.stem[1].training
    assert all(p.requires_grad for p in frozen.stages.parameters())
    with pytest.raises(ValueError, match='deep_stem halves stem_channels'):
        SARResNet(depth=34, deep_stem=True, stem_channels=63)


def test_deep_stem_sparse_equals_dense():
    # 64 px: refine maps 16 / 8 / 4 px, divisible by the (8, 4, 2) grids
    model = _randomise(SARResNet(depth=34, groups=2, deep_stem=True, stem_channels=32,
                                 base_channels=16, mask_grid=(8, 4, 2), out_indices=(0, 1, 2, 3)), 0)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-5)


# Mask cells in pixels (``mask_cell_size``) next to the fixed grid (``mask_grid``).


def test_mask_cell_size_arguments():
    model = SARResNet(depth=50, base_channels=8, stem_channels=16, mask_cell_size=(4, 4, 7))
    assert model.mask_grid is None and model.mask_cell_size == (4, 4, 7)
    assert [s.cell_size for s in model.stages] == [4, 4, 7] and all(
        s.grid is None for s in model.stages)
    assert SARResNet(depth=50, base_channels=8).mask_grid == (14, 7, 2)
    with pytest.raises(ValueError, match='exactly one of mask_grid .* and mask_cell_size'):
        SARResNet(depth=50, mask_grid=(14, 7, 2), mask_cell_size=(4, 4, 7))
    with pytest.raises(ValueError, match='mask_cell_size takes 3 positive ints'):
        SARResNet(depth=50, mask_cell_size=(4, 4))
    with pytest.raises(ValueError, match='mask_cell_size takes 3 positive ints'):
        SARResNet(depth=50, mask_cell_size=(4, 0, 7))
    with pytest.raises(ValueError, match='mask_grid takes 3 values'):
        SARResNet(depth=50, mask_grid=(14, 7))
    with pytest.raises(ValueError, match='exactly one of mask_grid .* and mask_cell_size'):
        SARResNetCifar(depth=20, mask_grid=(4, 4, 2), mask_cell_size=(8, 4, 4))


def test_mask_generator_weights_do_not_depend_on_the_grid():
    shapes = [{k: v.shape for k, v in MaskGenerator(32, 2, grid).state_dict().items()}
              for grid in (2, 7, 14, None)]
    assert all(s == shapes[0] for s in shapes)
    gen = MaskGenerator(32, 2, None).eval()
    x = torch.randn(2, 32, 13, 17)
    assert gen(x, grid=(4, 5)).shape == (2, 2, 2, 4, 5)
    with pytest.raises(ValueError, match='no fixed grid'):
        gen(x)
    with pytest.raises(ValueError, match='differs from the fixed 7x7 grid'):
        MaskGenerator(32, 2, 7)(x, grid=(4, 5))


@pytest.mark.parametrize('os8', [False, True])
def test_fixed_grid_checkpoint_loads_into_cell_size_model(os8):
    # (4, 4, 7) px cells at strides 4 / 8 / 16 are the (14, 7, 2) grid at 224 px; OS-8 (SAR-3 at
    # stride 8, a 28 px map): (4, 4, 14) px cells
    extra = dict(strides=(2, 1, 1, 1), dilations=(1, 1, 2, 4)) if os8 else {}
    kwargs = dict(depth=50, base_channels=8, stem_channels=16, out_indices=(0, 1, 2, 3), **extra)
    fixed = _randomise(SARResNet(mask_grid=(14, 7, 2), **kwargs), 0)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    _mixed_masks(fixed, x)
    cells = SARResNet(mask_cell_size=(4, 4, 14 if os8 else 7), **kwargs).eval()
    state = fixed.state_dict()
    assert set(cells.state_dict()) == set(state)
    cells.load_state_dict(state, strict=True)
    with torch.no_grad():
        expected = fixed.eval()(x)
        for sparse in (False, True):
            cells.set_sparse_infer(sparse)
            outs = cells(x)
            for a, b in zip(outs, expected):
                if sparse:  # fp32 rounding of the gathered GEMMs, relative to the output scale
                    assert (a - b).abs().max() <= 1e-5 * max(b.abs().max().item(), 1.0)
                else:  # the same computation
                    assert torch.equal(a, b)
            for a, b in zip(cells.last_masks, fixed.last_masks):
                assert torch.equal(a, b)
            assert torch.equal(cells.last_flops, fixed.last_flops)
        cells.set_sparse_infer(False)
        cells(x[:, :, :200])  # any size: the grids follow the input (maps 50x56, 25x28, 13x14)
    assert [tuple(m.shape[-2:]) for m in cells.last_masks][::4] == [(13, 14), (7, 7), (2, 2)]
    # and back: the cell-size model's weights load into a fixed-grid model
    SARResNet(mask_grid=(14, 7, 2), **kwargs).load_state_dict(cells.state_dict(), strict=True)


def test_cifar_cell_size_equals_fixed_grid_at_32px():
    fixed = _randomise(SARResNetCifar(depth=20), 0).eval()
    cells = SARResNetCifar(depth=20, mask_grid=None, mask_cell_size=(8, 4, 4)).eval()
    cells.load_state_dict(fixed.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(cells(x)[0], fixed(x)[0])
        assert [tuple(m.shape[-2:]) for m in cells.last_masks] == [(4, 4)] * 4 + [(2, 2)] * 2


def test_mask_generator_centre():
    """mask_centre: the logits' mean over the cells is the bias (features centred over the cells),
    so a gradient that is the same on every cell reaches the bias only; same parameters, so a
    checkpoint of either kind loads into the other."""
    torch.manual_seed(0)
    plain, centred = MaskGenerator(32, 2, 4).eval(), MaskGenerator(32, 2, 4, centre=True).eval()
    centred.load_state_dict(plain.state_dict())
    torch.nn.init.normal_(centred.fc.weight, std=0.5)
    x = torch.randn(3, 32, 16, 16)
    means = centred(x).mean(dim=(-2, -1)).flatten(1)  # (B, 2 G): every image alike, the biases
    torch.testing.assert_close(means, means[:1].expand_as(means))
    torch.testing.assert_close(means[0].sort().values, centred.fc.bias.detach().sort().values)
    assert not torch.allclose(plain(x), centred(x))
    uniform = torch.autograd.grad(centred(x).sum(), centred.fc.weight)[0]
    assert uniform.abs().max() < 1e-5  # the same gradient on every cell leaves the weights alone
    backbone = SARResNet(depth=50, groups=2, mask_centre=True)
    assert all(m.centre for stage in backbone.stages for m in stage.masks)
    assert not any(m.centre for stage in SARResNet(depth=50).stages for m in stage.masks)


def test_mask_generator_feature_bound():
    """feature_bound: each cell's pooled features (per group) enter the 1x1 conv with a norm below 1,
    so a logit differs from its bias by less than the norm of its 1x1 weights however large the
    input; same parameters as without the bound; a bound <= 0 is refused."""
    torch.manual_seed(0)
    gen = MaskGenerator(32, 2, 4, feature_bound=1.0).eval()
    torch.nn.init.normal_(gen.fc.weight, std=3.0)
    weight = gen.fc.weight.detach().view(2, 2, 4)  # (G, choice, hidden per group)
    bias = gen.fc.bias.detach().view(1, 2, 2, 1, 1)
    for scale in (1e-3, 1.0, 1e4):
        with torch.no_grad():
            offset = (gen(torch.randn(3, 32, 16, 16) * scale) - bias).abs()
        assert (offset < weight.norm(dim=-1).view(1, 2, 2, 1, 1)).all()
    plain = MaskGenerator(32, 2, 4).eval()
    plain.load_state_dict(gen.state_dict())
    x = torch.randn(3, 32, 16, 16) * 10
    with torch.no_grad():
        assert (plain(x) - bias).abs().max() > 2 * (gen(x) - bias).abs().max()
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match='feature_bound'):
            MaskGenerator(32, 2, 4, feature_bound=bad)
    backbone = SARResNet(depth=50, groups=2, mask_feature_bound=0.5)
    assert all(m.feature_bound == 0.5 for stage in backbone.stages for m in stage.masks)
    cifar = SARResNetCifar(depth=20, mask_feature_bound=0.5)
    assert all(m.feature_bound == 0.5 for stage in cifar.stages for m in stage.masks)
    assert all(m.feature_bound is None for stage in SARResNet(depth=50).stages for m in stage.masks)


@pytest.mark.parametrize('cifar', [False, True])
def test_mask_sharing_stage(cifar):
    """mask_sharing='stage': one generator per SAR stage whose mask gates every refine block of the
    stage; 'block' (the default, the paper) keeps one per refine block; other values are refused."""
    if cifar:
        shared, plain, x = (SARResNetCifar(depth=20, mask_sharing='stage'), SARResNetCifar(depth=20),
                            torch.randn(2, 3, 32, 32))
    else:
        shared, plain, x = (SARResNet(depth=50, mask_sharing='stage'), SARResNet(depth=50),
                            torch.randn(2, 3, 64, 64))
    assert [len(s.masks) for s in shared.stages] == [1, 1, 1]
    assert [len(s.masks) for s in plain.stages] == [len(s.refine) for s in plain.stages]
    seen = {}
    for i, stage in enumerate(shared.stages):
        for j, block in enumerate(stage.refine):
            block.register_forward_pre_hook(
                lambda mod, args, key=(i, j): seen.__setitem__(key, args[1]))
    shared.train()
    out = shared(x)
    assert len(shared.last_masks) == 3
    for i, stage in enumerate(shared.stages):
        assert len(stage.refine) >= 2
        for j in range(len(stage.refine)):
            assert seen[(i, j)] is shared.last_masks[i]
    # every refine block's loss reaches the one generator
    out[-1].sum().backward()
    assert all(s.masks[0].fc.weight.grad is not None for s in shared.stages)
    with pytest.raises(ValueError, match='mask_sharing'):
        SARResNet(depth=50, mask_sharing='network')
    # the sparse path of inference computes the same as the dense one with shared masks
    model = _randomise(SARResNetCifar(depth=20, mask_sharing='stage'), 0)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-5)


@pytest.mark.parametrize('cifar', [False, True])
def test_share_group_masks(cifar):
    """share_group_masks: one mask per generator for all G groups, the mean of the groups' logits
    (the generators keep their weights: the same state dict loads either way), sampled once in
    training and recorded / applied as G equal group masks; the task gradient reaches both
    groups' weights, the sparsity loss with mask_density_grad='bias' only the biases, and the
    sparse path of inference computes what the dense one does."""
    def build(share, **kwargs):
        if cifar:
            return SARResNetCifar(depth=20, share_group_masks=share, **kwargs)
        return SARResNet(depth=50, stem_channels=16, base_channels=16, share_group_masks=share,
                         **kwargs)

    torch.manual_seed(0)
    shared = build(True, mask_density_grad='bias')
    for m in shared.modules():
        if isinstance(m, MaskGenerator):
            torch.nn.init.normal_(m.fc.weight, 0, 0.5)
            m.fc.bias.data.zero_()  # cells near the boundary: both choices get sampled
    plain = build(False)
    plain.load_state_dict(shared.state_dict())
    x = torch.randn(2, 3, 32, 32) if cifar else torch.randn(2, 3, 64, 64)
    shared.eval(), plain.eval()
    with torch.no_grad():
        shared(x), plain(x)
    first = len(shared.stages[0].masks)  # the same input in both models (later stages differ)
    for logits, own in zip(shared.last_mask_logits[:first], plain.last_mask_logits[:first]):
        assert logits.shape == own.shape and logits.shape[1] == 2
        torch.testing.assert_close(logits, own.mean(1, keepdim=True).expand_as(own))
    for logits in shared.last_mask_logits:
        assert torch.equal(logits[:, 0], logits[:, 1])
    shared.train()
    out = shared(x)[-1]
    for mask, loss_mask in zip(shared.last_masks, shared.last_loss_masks):
        assert torch.equal(mask[:, 0], mask[:, 1]) and 0 < mask.mean() < 1
        assert torch.equal(mask, loss_mask)
    generators = [m for m in shared.modules() if isinstance(m, MaskGenerator)]
    from mmdynamic.models.losses import sparsity_loss
    sparsity_loss(shared.last_loss_masks, 0.2).backward(retain_graph=True)
    assert all(m.fc.weight.grad is None or m.fc.weight.grad.abs().sum() == 0 for m in generators)
    # the mean of the groups' biases is the shared bias: every group's gets the gradient
    assert all((m.fc.bias.grad.view(2, 2).abs().sum(1) > 0).all() for m in generators)
    shared.zero_grad()
    out.sum().backward()
    for m in generators:  # both groups' 1x1 weights (rows 0-1 and 2-3) learn from the task
        assert (m.fc.weight.grad.view(2, -1).abs().sum(1) > 0).all()
    model = _randomise(SARResNetCifar(depth=20, share_group_masks=True), 0)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    _mixed_masks(model, x)
    _compare_backbone(model, x, rel_tol=1e-5)
    assert all(torch.equal(m[:, 0], m[:, 1]) for m in model.last_masks)


@pytest.mark.parametrize('cifar', [False, True])
def test_mask_density_grad_bias(cifar):
    """mask_density_grad='bias': the same forward (masks, outputs, random draws) as 'all'; the
    sparsity loss's masks have the sampled values, and their gradient reaches only the generators'
    1x1 biases, while the task's masks still train the whole generator."""
    from mmdynamic.models.losses import sparsity_loss

    def build(grad):
        torch.manual_seed(0)
        model = (SARResNetCifar(depth=20, mask_density_grad=grad) if cifar else
                 SARResNet(depth=50, stem_channels=16, base_channels=16,
                           mask_density_grad=grad))
        model.init_weights()
        for m in model.modules():
            if isinstance(m, MaskGenerator):
                torch.nn.init.normal_(m.fc.weight, 0, 0.5)
                m.fc.bias.data.zero_()  # cells near the boundary: both choices get sampled
        return model.train()

    x = torch.randn(2, 3, 32, 32) if cifar else torch.randn(2, 3, 64, 64)
    results = {}
    for grad in ('all', 'bias'):
        model = build(grad)
        torch.manual_seed(1)
        out = model(x)[-1]
        assert len(model.last_loss_masks) == len(model.last_masks)
        for mask, loss_mask in zip(model.last_masks, model.last_loss_masks):
            assert torch.equal(mask, loss_mask)
            assert 0 < mask.mean() < 1
        sparsity_loss(model.last_loss_masks, 0.2).backward(retain_graph=True)
        generators = [m for m in model.modules() if isinstance(m, MaskGenerator)]
        results[grad] = (out.detach(), [m.fc.weight.grad for m in generators],
                         [m.fc.bias.grad.clone() for m in generators])
        if grad == 'bias':
            model.zero_grad()
            out.sum().backward()  # the task still trains the generators' weights
            assert all(m.fc.weight.grad is not None and m.fc.weight.grad.abs().sum() > 0
                       for m in generators)
    torch.testing.assert_close(results['all'][0], results['bias'][0], rtol=0, atol=0)
    assert all(g is not None and g.abs().sum() > 0 for g in results['all'][1])
    assert all(g is None or g.abs().sum() == 0 for g in results['bias'][1])
    # the last stage's biases (no later mask reads their features) get the same gradient: the
    # same function of the same masks
    last = len(model.stages[-1].masks)
    for a, b in zip(results['all'][2][-last:], results['bias'][2][-last:]):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="mask_density_grad must be one of .*'weights'"):
        SARResNetCifar(depth=20, mask_density_grad='weights')
