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
from ..conftest import REPO, run_tool

tv = pytest.importorskip('torchvision.models')

CFG = 'configs/uniadafocus/'
MN2R50 = CFG + 'uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py'
TSM_JESTER = CFG + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_jester-rgb.py'
TSM_STHV1 = CFG + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb.py'
X3D = CFG + 'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb.py'
SPATIAL = {'convs.0.conv': 0, 'convs.0.bn': 1, 'convs.1.conv': 3, 'convs.1.bn': 4, 'convs.2.conv': 6,
           'convs.2.bn': 7, 'out': 9}
TEMPORAL = {'convs.0.conv': 0, 'convs.0.bn': 1, 'convs.1.conv': 3, 'convs.1.bn': 4, 'out': 6}


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'uniadafocus_converter',
        osp.join(REPO, 'tools/model_converters/uniadafocus_official_to_mmdynamic.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perturb(state):
    """Random values everywhere, BN statistics included (a wrong mapping shows)."""
    gen = torch.Generator().manual_seed(0)
    out = OrderedDict()
    for key, value in state.items():
        if key.endswith('num_batches_tracked'):
            out[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            out[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            out[key] = torch.randn(value.shape, generator=gen) * 0.05
    return out


def torchvision_mobilenet_v2(prefix, tsm):
    """torchvision's MobileNet-V2 features in the tonylins names (TSM: ``conv.0.net`` in the
    residual blocks), and the torchvision state it came from."""
    net = tv.mobilenet_v2().features
    state = _perturb(net.state_dict())
    out = OrderedDict()
    for key, value in state.items():
        b = int(key.split('.')[0])
        name = key
        if 1 <= b <= 17:
            sub = key.split('.conv.', 1)[1]  # '1.conv.0.0.weight' -> '0.0.weight'
            parts = (['0.0', '0.1', '1', '2'] if b == 1 else ['0.0', '0.1', '1.0', '1.1', '2', '3'])
            tonylins = ['0', '1', '3', '4'] if b == 1 else ['0', '1', '3', '4', '6', '7']
            for tvp, tl in zip(parts, tonylins):
                if sub.startswith(tvp + '.'):
                    param = sub[len(tvp) + 1:]
                    if tsm and tl == '0' and net[b].use_res_connect:
                        tl = '0.net'
                    name = f'{b}.conv.{tl}.{param}'
                    break
            else:
                raise AssertionError(key)
        out[f'{prefix}features.{name}'] = value
    return out, state, net


def torchvision_resnet50(prefix, tsm, with_fc):
    net = tv.resnet50()
    state = _perturb(net.state_dict())
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('fc.') and not with_fc:
            continue
        name = re.sub(r'^(layer\d\.\d+)\.conv1\.', r'\1.conv1.net.', key) if tsm else key
        out[prefix + name] = value
    return out, state, net


def policies_and_heads(ours, heads):
    """The official policy keys (spec index tables) and heads (``heads``: official -> our prefix),
    with our model's shapes."""
    out = OrderedDict()
    for key, value in ours.items():
        m = re.match(r'spatial_policy\.(convs\.\d\.(?:conv|bn)|out)\.(.+)', key)
        if m:
            out[f'spatial_policy.encoder.{SPATIAL[m[1]]}.{m[2]}'] = value
        m = re.match(r'temporal_policy\.(convs\.\d\.(?:conv|bn)|out)\.(.+)', key)
        if m:
            out[f'temporal_policy.Tconv.{TEMPORAL[m[1]]}.{m[2]}'] = value
        for official, mine in heads.items():
            if key.startswith(mine):
                out[official + key[len(mine):]] = value
    return _perturb(out)


def x3d_official(ours):
    """Our X3D state in SlowFast's names (the spec's X3D table, read backwards)."""
    inverse = [
        (r'fc_(global|local)_frame\.([03])\.(.+)', r'\1_CNN_head.\2.\3'),
        (r'fc_(global|local)\.0\.weight', r'\1_CNN.head.lin_5.weight'),
        (r'fc_(global|local)\.3\.(.+)', r'\1_CNN.head.projection.\2'),
        (r'fc_aux\.(.+)', r'aux_head.0.\1'),
        (r'(backbone|local_backbone)\.conv5\.conv\.(.+)', r'\1@head.conv_5.\2'),
        (r'(backbone|local_backbone)\.conv5\.bn\.(.+)', r'\1@head.conv_5_bn.\2'),
        (r'(backbone|local_backbone)\.conv1_s\.conv\.(.+)', r'\1@s1.pathway0_stem.conv_xy.\2'),
        (r'(backbone|local_backbone)\.conv1_t\.conv\.(.+)', r'\1@s1.pathway0_stem.conv.\2'),
        (r'(backbone|local_backbone)\.conv1_t\.bn\.(.+)', r'\1@s1.pathway0_stem.bn.\2'),
    ]
    parts = {'downsample.conv': 'branch1', 'downsample.bn': 'branch1_bn', 'conv1.conv': 'branch2.a',
             'conv1.bn': 'branch2.a_bn', 'conv2.conv': 'branch2.b', 'conv2.bn': 'branch2.b_bn',
             'conv3.conv': 'branch2.c', 'conv3.bn': 'branch2.c_bn', 'se_module': 'branch2.se'}
    out = OrderedDict()
    for key, value in ours.items():
        if key.startswith(('spatial_policy.', 'temporal_policy.')):
            continue
        name = None
        for pattern, repl in inverse:
            if re.fullmatch(pattern, key):
                name = re.sub(pattern, repl, key)
                break
        if name is None:
            m = re.fullmatch(r'(backbone|local_backbone)\.layer(\d)\.(\d+)\.(downsample\.conv|'
                             r'downsample\.bn|conv\d\.conv|conv\d\.bn|se_module)\.(.+)', key)
            assert m, key
            name = f'{m[1]}@s{int(m[2]) + 1}.pathway0_res{m[3]}.{parts[m[4]]}.{m[5]}'
        name = name.replace('local_backbone@', 'local_CNN.').replace('backbone@', 'global_CNN.')
        if name.endswith('lin_5.weight'):
            value = value[:, :, None, None, None]
        out[name] = value
    out.update(policies_and_heads(ours, {}))
    return _perturb(out)


@pytest.fixture(scope='module')
def mn2r50_model():
    return build_model_from_config(osp.join(REPO, MN2R50), {'model.num_classes': 5})


@pytest.fixture(scope='module')
def mn2r50(mn2r50_model):
    """The official MN2+R50 layout (T_G = T_L = 16, 5 classes) and its torchvision parts."""
    ours = mn2r50_model.state_dict()
    mn2, mn2_tv, mn2_net = torchvision_mobilenet_v2('global_CNN.', tsm=False)
    r50, r50_tv, r50_net = torchvision_resnet50('local_CNN.', tsm=False, with_fc=True)
    official = OrderedDict(mn2)
    official['global_CNN.classifier.weight'] = torch.zeros(1000, 1280)
    official['global_CNN.classifier.bias'] = torch.zeros(1000)
    official.update(r50)
    heads = {'global_CNN_fc.1.': 'fc_global.1.', 'local_CNN_fc.1.': 'fc_local.1.',
             'aux_fc.': 'fc_aux.'}
    for mlp in ('global', 'local'):
        for i in '01':
            heads[f'classifier.{mlp}_mlp.layers.{i}.'] = f'fusion_head.{mlp}_mlp.{i}.'
    for k in range(16):
        heads[f'classifier.global_classifiers.{k}.1.'] = f'fusion_head.glance_heads.{k}.'
        heads[f'classifier.local_classifiers.{k}.1.'] = f'fusion_head.focus_heads.{k}.'
    official.update(policies_and_heads(ours, heads))
    return dict(state=official, mn2=(mn2_tv, mn2_net), r50=(r50_tv, r50_net))


@pytest.fixture(scope='module')
def tsm_model():
    return build_model_from_config(osp.join(REPO, TSM_JESTER))


@pytest.fixture(scope='module')
def tsm(tsm_model):
    """The official Uni-AdaFocus-TSM layout (Jester, 27 classes, P128 8+12)."""
    mn2, _, mn2_net = torchvision_mobilenet_v2('global_CNN.base_model.', tsm=True)
    r50, _, _ = torchvision_resnet50('local_CNN.base_model.', tsm=True, with_fc=False)
    official = OrderedDict(mn2)
    official.update(r50)
    heads = {'global_CNN.new_fc.': 'fc_global.1.', 'global_CNN.new_new_fc.': 'fc_global_frame.1.',
             'local_CNN.new_fc.': 'fc_local.1.', 'local_CNN.new_new_fc.': 'fc_local_frame.1.',
             'aux_fc.': 'fc_aux.'}
    official.update(policies_and_heads(tsm_model.state_dict(), heads))
    shifted = [b for b in range(1, 18) if mn2_net[b].use_res_connect]
    return dict(state=official, shifted=shifted)


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


def tsm_official_from_ours(ours):
    """Our Uni-AdaFocus-TSM state in the official names (the spec's TSM table read backwards); for
    the demo model (half-width MobileNet-V2, ResNet-18), whose layout torchvision has no copy of."""
    blocks = {v: k for k, v in {1: (1, 0), 2: (2, 0), 3: (2, 1), 4: (3, 0), 5: (3, 1), 6: (3, 2),
                                7: (4, 0), 8: (4, 1), 9: (4, 2), 10: (4, 3), 11: (5, 0), 12: (5, 1),
                                13: (5, 2), 14: (6, 0), 15: (6, 1), 16: (6, 2), 17: (7, 0)}.items()}
    conv_index = {('0', 'conv'): '0', ('0', 'bn'): '1', ('1', 'conv'): '3', ('1', 'bn'): '4',
                  ('2', 'conv'): '6', ('2', 'bn'): '7'}
    ends = {'conv1.conv': '0.0', 'conv1.bn': '0.1', 'conv2.conv': '18.0', 'conv2.bn': '18.1'}
    g, loc = 'global_CNN.base_model.', 'local_CNN.base_model.'
    out = OrderedDict()
    for key, value in ours.items():
        m = re.fullmatch(r'backbone\.(conv[12]\.(?:conv|bn))\.(.+)', key)
        if m:
            out[f'{g}features.{ends[m[1]]}.{m[2]}'] = value
            continue
        m = re.fullmatch(r'backbone\.layer(\d)\.(\d+)\.conv\.(\d)\.(net\.)?(conv|bn)\.(.+)', key)
        if m:
            b = blocks[(int(m[1]), int(m[2]))]
            if m[4] and m[5] == 'conv':
                out[f'{g}features.{b}.conv.0.net.{m[6]}'] = value
            else:
                out[f'{g}features.{b}.conv.{conv_index[(m[3], m[5])]}.{m[6]}'] = value
            continue
        if key.startswith('local_backbone.'):
            name = key[len('local_backbone.'):]
            for pattern, repl in [(r'conv1\.conv\.(.+)', r'conv1.\1'), (r'conv1\.bn\.(.+)', r'bn1.\1'),
                                  (r'(layer\d\.\d+)\.conv1\.conv\.net\.(.+)', r'\1.conv1.net.\2'),
                                  (r'(layer\d\.\d+)\.conv(\d)\.conv\.(.+)', r'\1.conv\2.\3'),
                                  (r'(layer\d\.\d+)\.conv(\d)\.bn\.(.+)', r'\1.bn\2.\3'),
                                  (r'(layer\d\.\d+)\.downsample\.conv\.(.+)', r'\1.downsample.0.\2'),
                                  (r'(layer\d\.\d+)\.downsample\.bn\.(.+)', r'\1.downsample.1.\2')]:
                if re.fullmatch(pattern, name):
                    out[loc + re.sub(pattern, repl, name)] = value
                    break
            else:
                raise AssertionError(key)
    heads = {'global_CNN.new_fc.': 'fc_global.1.', 'global_CNN.new_new_fc.': 'fc_global_frame.1.',
             'local_CNN.new_fc.': 'fc_local.1.', 'local_CNN.new_new_fc.': 'fc_local_frame.1.',
             'aux_fc.': 'fc_aux.'}
    out.update(policies_and_heads(ours, heads))
    return _perturb(out)


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
