# Copyright (c) mmdynamic contributors. All rights reserved.
"""The MGNet converter (tools/model_converters/mgnet_official_to_mmdynamic.py) on files written in the
official PyTorch Lightning layout (official_checkpoints.md, MGNet section; random values)."""
import argparse
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.utils.official_converter import apply_rules, build_model_from_config
from mmdynamic.testing.official_layouts.mgnet import HPARAMS, lightning_file, official_state
from ..conftest import REPO, run_tool

MGNET_R18 = 'configs/mgnet/mgnet-r18-4x96_4xb64-onecycle-400e_in100.py'
FFNET_R18 = 'configs/mgnet/ffnet-r18_4xb64-onecycle-400e_in100.py'
D = 512 + 3  # d = D + 3 for ResNet-18


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'mgnet_converter', osp.join(REPO, 'tools/model_converters/mgnet_official_to_mmdynamic.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def r18():
    """Our ResNet-18 MGNet (ImageNet-100 config) with random weights and BN statistics."""
    torch.manual_seed(0)
    model = build_model_from_config(osp.join(REPO, MGNET_R18))
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith('running_mean'):
                buf.normal_()
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 2)
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model


def test_every_official_tensor_lands_once(converter, r18):
    """The property that makes the mapping trustworthy: every official tensor lands in exactly one
    of ours (the fused projection in three), with the spec's shapes, and the result is our model's
    state dict."""
    official = official_state(r18.state_dict())
    backbone = [k for k in official if k.startswith('backbone.')]
    # torchvision's ResNet-18 without fc: 20 convs / BNs -> 122 tensors minus fc.{weight,bias}
    assert len(backbone) == 120
    assert official['feat_fusion.mha.in_proj_weight'].shape == (3 * D, D)
    assert official['loc_network.fc.weight'].shape == (3, D)
    assert official['global_fc.fc.weight'].shape == (100, D)
    assert official['glimpse_fc.fc.weight'].shape == (100, 512)
    assert len(official) == 132

    result = apply_rules(official, converter.RULES)
    assert not result.unmatched and not result.dropped
    ours = r18.state_dict()
    assert set(result.state_dict) == set(ours)
    sources = list(result.sources.values())
    assert sorted(set(sources)) == sorted(official)  # every official key is used
    assert sources.count('feat_fusion.mha.in_proj_weight') == 3
    assert len(sources) - len(set(sources)) == 4  # only the two fused tensors fan out (x3)
    for key, value in result.state_dict.items():
        assert value.shape == ours[key].shape, key
        assert torch.equal(value, ours[key]), key
    w = official['feat_fusion.mha.in_proj_weight']
    assert torch.equal(result.state_dict['fusion.k_proj.weight'], w[D:2 * D])


def test_convert_lightning_file(converter, r18, tmp_path):
    src = lightning_file(str(tmp_path / 'mgnet_r18.ckpt'), official_state(r18.state_dict()),
                         HPARAMS)
    torch.load(src, weights_only=True)  # Lightning's usual entries read without unpickling code
    dst = str(tmp_path / 'converted.pth')
    meta = converter.main([src, dst])
    assert meta['method'] == 'MGNet' and meta['config'].endswith(osp.basename(MGNET_R18))
    assert meta['mgnet_official']['epoch'] == 399
    assert meta['mgnet_official']['hyper_parameters']['n_iter'] == 4
    ckpt = torch.load(dst, weights_only=True)
    assert len(ckpt['meta']['source_sha256']) == 64
    model = build_model_from_config(osp.join(REPO, MGNET_R18))
    model.load_state_dict(ckpt['state_dict'], strict=True)

    # the split projection: our fusion equals the official nn.MultiheadAttention + LayerNorm + ReLU
    official = official_state(r18.state_dict())
    mha = nn.MultiheadAttention(D, 1)
    mha.load_state_dict({'in_proj_weight': official['feat_fusion.mha.in_proj_weight'],
                         'in_proj_bias': official['feat_fusion.mha.in_proj_bias'],
                         'out_proj.weight': official['feat_fusion.mha.out_proj.weight'],
                         'out_proj.bias': official['feat_fusion.mha.out_proj.bias']})
    norm = nn.LayerNorm(D)
    norm.load_state_dict({'weight': official['feat_fusion.norm.weight'],
                          'bias': official['feat_fusion.norm.bias']})
    tokens = torch.randn(3, 2, D)  # (t, B, d) as the official code
    with torch.no_grad():
        expected = F.relu(norm(mha(tokens, tokens, tokens, need_weights=False)[0])[-1])
        got = model.fusion(tokens.transpose(0, 1))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        # and the whole converted model runs: 4 exits of 100 classes
        out = model.forward_glimpses(torch.randn(1, 3, 224, 224))
    assert out['logits'].shape == (4, 1, 100) and torch.isfinite(out['logits']).all()


def test_pick_config_and_refusals(converter, r18, tmp_path):
    official = official_state(r18.state_dict())
    assert converter.pick_config({}, official).endswith(osp.basename(MGNET_R18))
    ffnet = OrderedDict((k, v) for k, v in official.items() if not k.startswith('glimpse_fc.'))
    assert converter.pick_config({}, ffnet).endswith(osp.basename(FFNET_R18))
    # a multi-glimpse file trained with alpha = 0 (no glimpse classifier): MGNet, aux_weight 0
    hp = {'hyper_parameters': dict(HPARAMS, alpha=0.0)}
    assert converter.pick_config(hp, ffnet).endswith(osp.basename(MGNET_R18))
    assert converter.config_options(hp, ffnet) == {'model.num_glimpses': 4,
                                                   'model.aux_weight': 0.0,
                                                   'model.glimpse_size': 96}  # int(224 // 2.33)
    with pytest.raises(ValueError, match='n_iter = 1'):
        converter.pick_config({'hyper_parameters': dict(HPARAMS, n_iter=1)}, official)
    # another number of classes: no config; the message says what to pass
    other = OrderedDict(official)
    other['global_fc.fc.weight'] = torch.zeros(10, D)
    with pytest.raises(ValueError, match='model.num_classes=10'):
        converter.pick_config({}, other)
    # another method (a GFNet-like layout)
    with pytest.raises(ValueError, match='not an MGNet checkpoint'):
        converter.pick_config({}, {'fc.weight': torch.zeros(3, 3)})

    # the MGNet file against the FF-Net config: the glimpse classifier is listed, nothing written
    src = lightning_file(str(tmp_path / 'mgnet.ckpt'), official)
    dst = tmp_path / 'out.pth'
    with pytest.raises(ValueError, match='glimpse_head'):
        converter.main([src, str(dst), '--config', osp.join(REPO, FFNET_R18)])
    assert not dst.exists()
    # 10 classes against the 100-class config: the shape differences are listed
    src10 = lightning_file(str(tmp_path / 'c10.ckpt'), other)
    with pytest.raises(ValueError, match=r'global_head\.weight: \(10, 515\) vs \(100, 515\)'):
        converter.main([src10, str(dst), '--config', osp.join(REPO, MGNET_R18)])
    assert not dst.exists()
    # a Lightning file whose hyper_parameters is an argparse.Namespace needs arbitrary unpickling
    bad = str(tmp_path / 'namespace.ckpt')
    torch.save({'state_dict': {'model.' + k: v for k, v in official.items()},
                'hyper_parameters': argparse.Namespace(n_iter=4)}, bad)
    with pytest.raises(ValueError, match='weights_only'):
        converter.main([bad, str(dst)])


def test_backbone_kinds(converter):
    """ResNet-18/34/50, ResNeXt-50 32x4d, WRN-50-2 told apart from torchvision's shapes."""
    tv = pytest.importorskip('torchvision.models')
    expected = {'resnet18': 'r18', 'resnet34': 'r34', 'resnet50': 'r50',
                'resnext50_32x4d': 'rx50', 'wide_resnet50_2': 'wrn50'}
    for name, kind in expected.items():
        with torch.device('meta'):
            net = getattr(tv, name)()
        state = {'backbone.' + k: v for k, v in net.state_dict().items() if not k.startswith('fc.')}
        assert converter.backbone_kind(state) == kind, name
    with torch.device('meta'):
        net = tv.resnet101()
    with pytest.raises(ValueError, match=r'\(3, 4, 23, 3\)'):
        converter.backbone_kind({'backbone.' + k: v for k, v in net.state_dict().items()})


def test_cli_end_to_end(r18, tmp_path):
    """FF-Net file through the script: config picked, strict load, MMEngine checkpoint written."""
    official = OrderedDict((k, v) for k, v in official_state(r18.state_dict()).items()
                           if not k.startswith('glimpse_fc.'))
    src = lightning_file(str(tmp_path / 'ffnet_r18.ckpt'), official,
                         dict(HPARAMS, n_iter=1, scale=1.0, alpha=0.0))
    dst = str(tmp_path / 'ffnet.pth')
    proc = run_tool(['tools/model_converters/mgnet_official_to_mmdynamic.py', src, dst])
    assert osp.basename(FFNET_R18) in proc.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['method'] == 'MGNet' and 'glimpse_head.weight' not in ckpt['state_dict']
    assert len(ckpt['state_dict']) == 134


@pytest.mark.slow
def test_converted_file_runs_through_tools_test(demo_root, tmp_path):
    """An official-layout file of the demo MGNet (1/4-width ResNet-18, 10 classes) converted with
    ``--config`` and evaluated by tools/test.py on the demo data: anytime accuracy of every glimpse."""
    config = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'
    torch.manual_seed(0)
    model = build_model_from_config(osp.join(REPO, config))
    src = lightning_file(str(tmp_path / 'demo.ckpt'), official_state(model.state_dict()))
    dst = str(tmp_path / 'demo.pth')
    run_tool(['tools/model_converters/mgnet_official_to_mmdynamic.py', src, dst, '--config', config])
    root = osp.join(demo_root, 'cls')
    proc = run_tool(['tools/test.py', config, dst, '--work-dir', str(tmp_path / 'test'),
                     '--cfg-options'] + [f'{split}_dataloader.dataset.data_root={root}'
                                         for split in ('train', 'val', 'test')])
    log = proc.stdout + proc.stderr
    assert 'anytime/top1_exit4' in log
