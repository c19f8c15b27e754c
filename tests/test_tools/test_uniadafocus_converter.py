# Copyright (c) mmdynamic contributors. All rights reserved.
"""The Uni-AdaFocus converter (tools/model_converters/uniadafocus_official_to_mmdynamic.py) on files
written in the three official layouts (official_checkpoints.md; random values).

The MobileNet-V2 and ResNet-50 parts of the official layouts are made from torchvision's models (the
spec: tonylins MobileNet-V2 holds torchvision's tensors in the same order, the ResNet-50 has
torchvision's names; TSM adds ``.net`` to the shifted convs), not from our models; the policies,
heads and the SlowFast X3D names follow the spec's tables."""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from mmdynamic.utils.official_converter import apply_rules, build_model_from_config, check_strict
from mmdynamic.testing.official_layouts.uniadafocus import (  # noqa: F401
    SPATIAL, TEMPORAL, _perturb, mn2r50_official, policies_and_heads, tsm_official, torchvision_mobilenet_v2,
    torchvision_resnet50, tsm_official_from_ours, x3d_official)
from ..conftest import REPO, run_tool

tv = pytest.importorskip('torchvision.models')

CFG = 'configs/uniadafocus/'
MN2R50 = CFG + 'uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py'
TSM_JESTER = CFG + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_jester-rgb.py'
TSM_STHV1 = CFG + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb.py'
X3D = CFG + 'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb.py'


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'uniadafocus_converter',
        osp.join(REPO, 'tools/model_converters/uniadafocus_official_to_mmdynamic.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def mn2r50_model():
    return build_model_from_config(osp.join(REPO, MN2R50), {'model.num_classes': 5})


@pytest.fixture(scope='module')
def mn2r50(mn2r50_model):
    """The official MN2+R50 layout (T_G = T_L = 16, 5 classes) and its torchvision parts."""
    return mn2r50_official(mn2r50_model.state_dict())


@pytest.fixture(scope='module')
def tsm_model():
    return build_model_from_config(osp.join(REPO, TSM_JESTER))


@pytest.fixture(scope='module')
def tsm(tsm_model):
    """The official Uni-AdaFocus-TSM layout (Jester, 27 classes, P128 8+12)."""
    return tsm_official(tsm_model.state_dict())


@pytest.fixture(scope='module')
def x3d_model():
    return build_model_from_config(osp.join(REPO, X3D), {'model.num_classes': 7})


def _assert_lands_once(result, official, model, dropped=()):
    """Every official tensor lands in exactly one of ours (or is one of the documented drops), with
    its shape (lin_5 squeezed), and the result loads strictly."""
    assert not result.unmatched
    assert sorted(result.dropped) == sorted(dropped)
    sources = list(result.sources.values())
    assert len(sources) == len(set(sources))
    assert sorted(sources + list(dropped)) == sorted(official)
    for ours, key in result.sources.items():
        src = official[key]
        if key.endswith('lin_5.weight'):
            assert src.shape[2:] == (1, 1, 1)
            src = src.flatten(1)
        assert torch.equal(result.state_dict[ours], src), (key, ours)
    check_strict(result.state_dict, model)


def test_mn2r50_layout(converter, mn2r50, mn2r50_model):
    official = mn2r50['state']
    assert len(official) == 750  # the spec: 750 -> 746 at 48/16/16
    assert official['spatial_policy.encoder.9.weight'].shape == (4, 128, 1, 7, 7)
    assert official['temporal_policy.Tconv.0.weight'].shape == (64, 1280, 3, 1)
    assert official['classifier.local_classifiers.15.1.weight'].shape == (5, 8192)
    dropped = [k for k in official if k.startswith(('global_CNN.classifier.', 'local_CNN.fc.'))]
    assert len(dropped) == 4
    result = apply_rules(official, converter.MN2R50_RULES)
    _assert_lands_once(result, official, mn2r50_model, dropped)
    assert converter.checkpoint_facts(official) == dict(setting='mn2r50', num_classes=5,
                                                        num_glance=16, num_focus=16)

    # intermediate tensors: our backbones with the converted weights = torchvision's
    model = mn2r50_model
    model.load_state_dict(result.state_dict, strict=True)
    (mn2_tv, mn2_net), (r50_tv, r50_net) = mn2r50['mn2'], mn2r50['r50']
    mn2_net.load_state_dict(mn2_tv)
    r50_net.load_state_dict(r50_tv)
    mn2_net.eval(), r50_net.eval(), model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model.backbone(x)
        ours = ours[-1] if isinstance(ours, (tuple, list)) else ours
        torch.testing.assert_close(ours, mn2_net(x), rtol=1e-4, atol=1e-5)
        ours = model.local_backbone(x)
        ours = ours[-1] if isinstance(ours, (tuple, list)) else ours
        ref = torch.nn.Sequential(*list(r50_net.children())[:-2])(x)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_tsm_layout(converter, tsm, tsm_model):
    official = tsm['state']
    assert len(official) == 672  # the spec: 672 keys (as ours, 672 since new_new_fc is kept)
    assert tsm['shifted'] == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]  # torchvision's residual blocks
    assert len([k for k in official if k.startswith('global_CNN.base_model.')]) == 312
    assert len([k for k in official if k.startswith('local_CNN.base_model.')]) == 318
    assert official['global_CNN.base_model.features.3.conv.0.net.weight'].shape == (144, 24, 1, 1)
    assert official['spatial_policy.encoder.9.weight'].shape == (4, 128, 8, 7, 7)
    assert official['global_CNN.new_new_fc.weight'].shape == (27, 1280)
    result = apply_rules(official, converter.TSM_RULES)
    _assert_lands_once(result, official, tsm_model)
    # the BN of a shifted block is inside the shift wrapper in mmaction2's MobileNetV2TSM
    assert result.sources['backbone.layer2.1.conv.0.net.bn.running_mean'] == \
        'global_CNN.base_model.features.3.conv.1.running_mean'
    assert result.sources['fc_global_frame.1.weight'] == 'global_CNN.new_new_fc.weight'
    assert result.sources['fc_local.1.bias'] == 'local_CNN.new_fc.bias'


def test_x3d_layout(converter, x3d_model):
    ours = x3d_model.state_dict()
    official = x3d_official(ours)
    assert len(official) == 1754  # the spec: 1754 keys
    assert official['global_CNN.head.lin_5.weight'].shape == (2048, 432, 1, 1, 1)
    assert official['global_CNN_head.0.weight'].shape == (2048, 432)
    assert official['spatial_policy.encoder.9.weight'].shape == (4, 128, 16, 5, 5)
    assert official['temporal_policy.Tconv.0.weight'].shape == (64, 432, 3, 1)
    assert official['global_CNN.s2.pathway0_res0.branch2.b.weight'].shape == (54, 1, 3, 3, 3)
    blocks = {(m[1], m[2]) for k in official
              for m in [re.match(r'(global|local)_CNN\.s(\d)\.pathway0_res(\d+)\.', k)] if m}
    assert sum(1 for e, _ in blocks if e == 'global') == 4  # stages s2..s5
    assert len({k.split('.branch')[0] for k in official
                if k.startswith('global_CNN.s') and 'pathway0_res' in k}) == 3 + 5 + 11 + 7
    assert len({k.split('.branch')[0] for k in official
                if k.startswith('local_CNN.s') and 'pathway0_res' in k}) == 5 + 10 + 25 + 15
    result = apply_rules(official, converter.X3D_RULES)
    _assert_lands_once(result, official, x3d_model)
    assert converter.checkpoint_facts(official) == dict(setting='x3d', num_classes=7, num_glance=16)

    # lin_5 as a Linear: our prediction head = the official conv-based head on pooled features
    x3d_model.load_state_dict(result.state_dict, strict=True)
    x3d_model.eval()
    feat = torch.randn(2, 432)
    with torch.no_grad():
        hidden = F.relu(F.conv3d(feat[:, :, None, None, None],
                                 official['local_CNN.head.lin_5.weight']))
        expected = F.linear(hidden.flatten(1), official['local_CNN.head.projection.weight'],
                            official['local_CNN.head.projection.bias'])
        torch.testing.assert_close(x3d_model.fc_local(feat), expected, rtol=1e-4, atol=1e-5)


def test_pick_config_and_refusals(converter, mn2r50, tsm, x3d_model):
    tsm_state = tsm['state']
    pick = converter.pick_config
    assert pick({}, tsm_state, 'ckpt/jester_p128_8and12.pth.tar') == TSM_JESTER
    # P / T_L change no tensor: without a telling name the converter says what to pass
    with pytest.raises(ValueError, match='pass --config'):
        pick({}, tsm_state, 'ckpt.best.pth.tar')
    # the name's data set disagrees with the heads (Sth-Sth has 174 classes)
    with pytest.raises(ValueError, match=r'sthv1 \(174 classes\).*27 classes'):
        pick({}, tsm_state, 'sthv1_p128_8and12.pth.tar')
    # T_G of the name disagrees with the spatial policy's kernel
    with pytest.raises(ValueError, match='T_G = 16'):
        pick({}, tsm_state, 'jester_p128_16and12.pth.tar')
    # a setting with no config (P = 96 8+12 on Jester is not released)
    with pytest.raises(ValueError, match='no config'):
        pick({}, tsm_state, 'jester_p96_8and12.pth.tar')
    x3d = x3d_official(x3d_model.state_dict())
    x3d['aux_head.0.weight'] = torch.zeros(400, 432)  # only shapes are read
    assert pick({}, x3d, 'kinetics400_p128_16and32.pth.tar') == X3D
    mn2 = OrderedDict(mn2r50['state'])
    mn2['aux_fc.weight'] = torch.zeros(239, 1280)
    assert pick({}, mn2, 'fcvid_p160.pth.tar') == \
        CFG + 'uniadafocus_mn2-r50-p160_4xb16-50e_fcvid-rgb.py'
    # another method
    with pytest.raises(ValueError, match='AdaFocusV2'):
        converter.detect_setting({'policy_stn.gru.weight_ih_l0': torch.zeros(1)})
    with pytest.raises(ValueError, match='not a Uni-AdaFocus'):
        converter.detect_setting({'backbone.conv1.weight': torch.zeros(1)})


def test_convert_and_refuse_files(converter, mn2r50, tmp_path):
    """MN2+R50 file: converted against its config (5 classes), refused against another number of
    classes, T_G, or another setting, with the differences listed; nothing written then."""
    state = OrderedDict(('module.' + k, v) for k, v in mn2r50['state'].items())
    src = str(tmp_path / 'actnet_p128.pth.tar')
    torch.save({'epoch': 37, 'arch': 'resnet50', 'state_dict': state, 'best_prec1': 80.7,
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.001, 'params': [0]}]}}, src)
    dst = tmp_path / 'out.pth'
    meta = converter.main([src, str(dst), '--config', osp.join(REPO, MN2R50), '--cfg-options',
                           'model.num_classes=5'])
    assert meta['uniadafocus_official'] == dict(setting='mn2r50', num_classes=5, num_glance=16,
                                                num_focus=16, epoch=37, best_prec1=80.7,
                                                arch='resnet50')
    assert sorted(meta['dropped']) == ['global_CNN.classifier.bias', 'global_CNN.classifier.weight',
                                       'local_CNN.fc.bias', 'local_CNN.fc.weight']
    ckpt = torch.load(str(dst), weights_only=True)
    assert len(ckpt['state_dict']) == 746
    dst.unlink()
    with pytest.raises(ValueError, match=r'fc_aux\.weight: \(5, 1280\) vs \(200, 1280\)'):
        converter.main([src, str(dst), '--config', osp.join(REPO, MN2R50)])
    # a T_G = 8 model: the file's 8 extra glance heads (and the focus heads' inputs) are listed
    with pytest.raises(ValueError, match=r'16 of its weights are not in the model '
                                         r'\(fusion_head\.glance_heads\.'):
        converter.main([src, str(dst), '--config', osp.join(REPO, MN2R50), '--cfg-options',
                        'model.num_classes=5', 'model.num_glance=8'])
    # P changes no tensor: a config of another P is refused from the released name
    p96 = osp.join(REPO, CFG + 'uniadafocus_mn2-r50-p96_4xb8-50e_activitynet-rgb.py')
    with pytest.raises(ValueError, match='model.patch_size: 96 in the config, 128 in the file name'):
        converter.main([src, str(dst), '--config', p96, '--cfg-options', 'model.num_classes=5'])
    with pytest.raises(ValueError, match='does not fit the model UniAdaFocusTSM'):
        converter.main([src, str(dst), '--config', osp.join(REPO, TSM_STHV1)])
    assert not dst.exists()


def test_cli_end_to_end(tsm, tmp_path):
    """A released-name TSM file through the script: config from the name, strict load, meta."""
    state = OrderedDict(('module.' + k, v) for k, v in tsm['state'].items())
    src = str(tmp_path / 'jester_p128_8and12.pth.tar')
    torch.save({'epoch': 49, 'arch': 'resnet50', 'state_dict': state, 'best_prec1': 97.1,
                'optimizer': {'state': {}, 'param_groups': []},
                'scaler': {'scale': 65536.0, 'growth_factor': 2.0, 'backoff_factor': 0.5,
                           'growth_interval': 2000, '_growth_tracker': 0}}, src)
    dst = str(tmp_path / 'converted.pth')
    proc = run_tool(['tools/model_converters/uniadafocus_official_to_mmdynamic.py', src, dst])
    assert osp.basename(TSM_JESTER) in proc.stdout
    ckpt = torch.load(dst, weights_only=True)
    meta = ckpt['meta']
    assert meta['method'] == 'Uni-AdaFocus' and meta['source'] == 'jester_p128_8and12.pth.tar'
    assert meta['uniadafocus_official']['best_prec1'] == 97.1 and meta['dropped'] == {}
    assert len(ckpt['state_dict']) == 672
    assert torch.equal(ckpt['state_dict']['fc_global_frame.1.weight'],
                       tsm['state']['global_CNN.new_new_fc.weight'])


@pytest.mark.slow
def test_converted_file_runs_through_tools_test(demo_root, tmp_path):
    """An official-layout file of the demo Uni-AdaFocus-TSM (10 classes) converted with ``--config``
    and evaluated by tools/test.py on the demo videos."""
    base = osp.join(REPO, CFG + 'uniadafocus-tsm_mn2-r18-tiny_1xb8-30e_demo-video.py')
    video = osp.join(demo_root, 'video')
    loader = "dict(dataset=dict(ann_file='{root}/{split}_list.txt', data_prefix=dict(video='{root}')))"
    config = tmp_path / 'tsm_demo.py'
    config.write_text('\n'.join([f"_base_ = ['{base}']",
                                 'val_dataloader = ' + loader.format(root=video, split='val'),
                                 'test_dataloader = val_dataloader']) + '\n')
    ours = build_model_from_config(str(config)).state_dict()
    official = tsm_official_from_ours(ours)
    assert len(official) == len(ours)
    src = str(tmp_path / 'demo_tsm.pth.tar')
    torch.save({'epoch': 1, 'arch': 'resnet18', 'best_prec1': 10.0,
                'state_dict': OrderedDict(('module.' + k, v) for k, v in official.items())}, src)
    dst = str(tmp_path / 'demo_tsm.pth')
    run_tool(['tools/model_converters/uniadafocus_official_to_mmdynamic.py', src, dst, '--config',
              str(config)])
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert torch.equal(converted['fc_global_frame.1.weight'], official['global_CNN.new_new_fc.weight'])
    proc = run_tool(['tools/test.py', str(config), dst, '--work-dir', str(tmp_path / 'test')])
    assert 'top1' in proc.stdout + proc.stderr
