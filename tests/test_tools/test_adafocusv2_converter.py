# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/model_converters/adafocusv2_official_to_mmdynamic.py on files written in the official layouts
(``official_checkpoints.md``: "AdaFocusV2, MobileNet-V2 + ResNet-50" and "AdaFocusV2-TSM"; official key
names, nesting and shapes, random values).

The official layouts are written here from the spec, independently of the converter's rule tables:
the encoders from torchvision's modules (built on the meta device: names and shapes only), renamed as
the official code names them (tonylins MobileNet-V2 ``conv.{0,1,3,4,6,7}``, TSM ``.net.``), the
policies and classifiers from the spec's shapes.
"""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.utils.official_converter import (apply_rules, build_model_from_config,
                                                check_strict, unwrap_state_dict)
from mmdynamic.testing.official_layouts.adafocusv2 import (  # noqa: F401
    Shapes, _bn, _linear, _prefixed, _shapes, empty_state, layout, official_tsm_layout,
    official_v2_layout, random_state, tonylins_mobilenet_v2, torchvision_resnet50)
from ..conftest import REPO, run_tool

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'adafocusv2_official_to_mmdynamic.py')
CFG = osp.join(REPO, 'configs', 'uniadafocus')
CONFIGS = {
    'mbv2': osp.join(CFG, 'adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py'),
    'res50': osp.join(CFG, 'adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py'),
    'tsm': osp.join(CFG, 'adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py'),
}
# keys the converter drops (the unused 1000-way ImageNet heads), per setting
DROPPED = {
    'mbv2': {'global_CNN.classifier.1.weight', 'global_CNN.classifier.1.bias',
             'local_CNN.fc.weight', 'local_CNN.fc.bias'},
    'res50': {'global_CNN.fc.weight', 'global_CNN.fc.bias', 'local_CNN.fc.weight',
              'local_CNN.fc.bias'},
    'tsm': set(),
}


@pytest.fixture(scope='module')
def conv():
    spec = importlib.util.spec_from_file_location('adafocusv2_official_to_mmdynamic', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# the official layouts (names -> shapes), from the spec
# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# fixtures: our models (built once) and the official files (written once)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def models():
    return {s: build_model_from_config(c) for s, c in CONFIGS.items()}


@pytest.fixture(scope='module')
def v2_file(tmp_path_factory):
    """A released-style MN2 + R50 file: ``{'state_dict': {'module.' + key: tensor}}`` only."""
    state = random_state(official_v2_layout('mbv2'), seed=1)
    path = str(tmp_path_factory.mktemp('adafocusv2') / 'actnet_p128_mbv2.pth.tar')
    torch.save({'state_dict': OrderedDict(('module.' + k, v) for k, v in state.items())}, path)
    return path, state


@pytest.fixture(scope='module')
def tsm_file(tmp_path_factory):
    """A released-style AdaFocusV2-TSM file (``main.py``: epoch, arch, state_dict, optimizer,
    best_prec1)."""
    state = random_state(official_tsm_layout(), seed=2)
    path = str(tmp_path_factory.mktemp('adafocusv2_tsm') / 'sthv1_p128.pth.tar')
    optimizer = {'state': {}, 'param_groups': [{'lr': 0.01, 'momentum': 0.9, 'params': [0, 1]}]}
    torch.save({'epoch': 50, 'arch': 'resnet50',
                'state_dict': OrderedDict(('module.' + k, v) for k, v in state.items()),
                'optimizer': optimizer, 'best_prec1': 47.03}, path)
    return path, state


# ------------------------------------------------------------------------------------------------
# the rule tables
# ------------------------------------------------------------------------------------------------
def test_official_layout_counts():
    """The spec's key counts: MN2 ActivityNet P128 696 keys (MobileNet-V2 312, ResNet-50 318 + fc),
    TSM 660 (its encoders and heads 638)."""
    assert len(tonylins_mobilenet_v2()) == 312
    assert len(torchvision_resnet50()) == 320
    assert len(official_v2_layout('mbv2')) == 696
    tsm = official_tsm_layout()
    assert len(tsm) == 660
    assert sum(k.startswith(('global_CNN.', 'local_CNN.')) for k in tsm) == 638
    assert sum(k.endswith('.net.weight') for k in tsm) == 10 + 16  # shifted MN2 blocks, R50 conv1s
    assert tsm['policy_stn.0.weight'] == (64, 10240, 1, 1)


def test_mobilenet_block_table(conv):
    """features b -> layer.block (1: 1.0; 2-3: 2.0-2.1; ... 17: 7.0); the shifted blocks."""
    assert conv.MBV2_BLOCKS[1] == (1, 0) and conv.MBV2_BLOCKS[3] == (2, 1)
    assert conv.MBV2_BLOCKS[10] == (4, 3) and conv.MBV2_BLOCKS[17] == (7, 0)
    assert conv.MBV2_RESIDUAL_BLOCKS == (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)
    # the unused MobileNet-V2 head is dropped whether it is a Linear or Dropout + Linear
    head = {'global_CNN.classifier.weight': torch.empty(1000, 1280),
            'global_CNN.classifier.1.bias': torch.empty(1000)}
    assert set(apply_rules(head, conv.RULES['mbv2']).dropped) == set(head)


@pytest.mark.parametrize('setting', ['mbv2', 'res50', 'tsm'])
def test_every_official_tensor_lands_once(conv, models, setting):
    """Every official tensor lands in exactly one of ours with the spec's shape (or is one of the
    documented dropped heads), and the result is exactly our model's state dict."""
    official = empty_state(layout(setting))
    result = apply_rules(official, conv.RULES[setting])
    assert result.unmatched == []
    assert set(result.dropped) == DROPPED[setting]
    assert all(result.dropped.values())  # every drop has its note
    assert len(set(result.sources.values())) == len(result.sources)  # one of ours per official key
    assert set(result.sources.values()) | set(result.dropped) == set(official)
    ours = models[setting].state_dict()
    assert set(result.state_dict) == set(ours)
    for key, source in result.sources.items():
        assert result.state_dict[key] is official[source]
        assert tuple(official[source].shape) == tuple(ours[key].shape), (key, source)
    check_strict(result.state_dict, models[setting])
    if setting == 'tsm':  # the two heads of each encoder
        assert result.sources['fc_global.1.weight'] == 'global_CNN.new_fc.weight'
        assert result.sources['fc_global_frame.1.weight'] == 'global_CNN.new_new_fc.weight'
        assert result.sources['fc_local.1.weight'] == 'local_CNN.new_fc.weight'
        assert result.sources['fc_local_frame.1.weight'] == 'local_CNN.new_new_fc.weight'
        # mmaction2 shifts the whole ConvModule: the BN of a shifted block follows the conv
        assert result.sources['backbone.layer2.1.conv.0.net.bn.weight'] == \
            'global_CNN.base_model.features.3.conv.1.weight'
        assert result.sources['local_backbone.layer1.0.conv1.conv.net.weight'] == \
            'local_CNN.base_model.layer1.0.conv1.net.weight'
    else:
        assert result.sources['fusion_head.heads.15.weight'] == 'classifier.classifiers.15.1.weight'
        assert result.sources['policy.out.weight'] == 'policy_stn.fc.0.weight'


def test_unwrapped_counts():
    """``module.`` is stripped; the converted state dicts have the spec's sizes (696 -> 692)."""
    state = unwrap_state_dict({'state_dict': {'module.' + k: v for k, v in
                                              empty_state(official_v2_layout('mbv2')).items()}})
    assert all(not k.startswith('module.') for k in state) and len(state) == 696


# ------------------------------------------------------------------------------------------------
# choosing the config
# ------------------------------------------------------------------------------------------------
def _head_state(setting: str, classes: int) -> Dict[str, torch.Tensor]:
    if setting == 'tsm':
        return {'policy_stn.0.weight': torch.empty(64, 10240, 1, 1),
                'global_CNN.base_model.features.0.0.weight': torch.empty(32, 3, 3, 3),
                'global_CNN.new_fc.weight': torch.empty(classes, 1280)}
    glance = ('global_CNN.features.0.0.weight' if setting == 'mbv2' else 'global_CNN.layer1.0.'
              'conv1.weight')
    return {'policy_stn.gru.weight_ih_l0': torch.empty(6144, 2048), glance: torch.empty(1),
            'global_CNN_fc.1.weight': torch.empty(classes, 1280 if setting == 'mbv2' else 2048)}


@pytest.mark.parametrize('setting,classes,name,expected', [
    ('mbv2', 200, 'actnet_p128_mbv2.pth.tar', 'adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py'),
    ('mbv2', 200, 'actnet_p96_mbv2.pth.tar', 'adafocusv2_mn2-r50-p96_4xb8-50e_activitynet-rgb.py'),
    ('res50', 200, 'actnet_p160_res50.pth.tar',
     'adafocusv2_r50-r50-p160_4xb8-50e_activitynet-rgb.py'),
    ('res50', 200, 'minik_p128_res50.pth.tar',
     'adafocusv2_r50-r50-p128_4xb12-50e_minikinetics-rgb.py'),
    ('mbv2', 239, 'fcvid_p128_mbv2.pth.tar', 'adafocusv2_mn2-r50-p128_4xb8-50e_fcvid-rgb.py'),
    ('mbv2', 239, 'ckpt.best.pth.tar', 'adafocusv2_mn2-r50-p128_4xb8-50e_fcvid-rgb.py'),
    ('tsm', 174, 'sthv2_p144.pth.tar', 'adafocusv2-tsm_mn2-r50-p144-8+12_4xb8-50e_sthv2-rgb.py'),
    ('tsm', 27, 'jester_p176.pth.tar', 'adafocusv2-tsm_mn2-r50-p176-8+12_4xb8-50e_jester-rgb.py'),
])
def test_pick_config(conv, setting, classes, name, expected):
    picked = conv.pick_config({}, _head_state(setting, classes), name)
    assert osp.basename(picked) == expected and osp.isfile(picked)


@pytest.mark.parametrize('setting,classes,name,words', [
    # ActivityNet and Mini-Kinetics both have 200 classes: the name must tell
    ('mbv2', 200, 'ckpt.best.pth.tar', ['activitynet or minikinetics', '--config']),
    ('mbv2', 200, None, ['activitynet or minikinetics', '--config']),
    # Sth-Sth V1 and V2 both have 174
    ('tsm', 174, 'ckpt.pth.tar', ['sthv1 or sthv2', '--config']),
    # ActivityNet has P 96 / 128 / 160: P changes no tensor, so the name (or --config) must tell
    ('mbv2', 200, 'actnet_mbv2.pth.tar', ['patch size', 'p96', 'p128', 'p160']),
    ('tsm', 100, 'sthv1_p128.pth.tar', ['100 classes', 'model.num_classes=100']),
    ('mbv2', 200, 'actnet_p112_mbv2.pth.tar', ['P = 112', '--config']),
])
def test_pick_config_refusals(conv, setting, classes, name, words):
    with pytest.raises(ValueError) as error:
        conv.pick_config({}, _head_state(setting, classes), name)
    for word in words:
        assert word in str(error.value)


def test_detect_setting_refuses_other_methods(conv):
    uni = {'spatial_policy.encoder.0.weight': torch.empty(1), 'global_CNN.features.0.0.weight':
           torch.empty(1)}
    with pytest.raises(ValueError, match='Uni-AdaFocus.*uniadafocus_official_to_mmdynamic'):
        conv.detect_setting(uni)
    with pytest.raises(ValueError, match='not an official AdaFocusV2 checkpoint.*model_prime'):
        conv.detect_setting({'model_prime.conv1.weight': torch.empty(1)})


def test_check_config(conv):
    """What a strict load cannot see: P of the file name, the --sample frame order, the res50
    glance size, the glance named by the file."""
    conv.check_config(CONFIGS['mbv2'], 'mbv2', 'actnet_p128_mbv2.pth.tar')
    with pytest.raises(ValueError, match='P = 96.*patch_size = 128'):
        conv.check_config(CONFIGS['mbv2'], 'mbv2', 'actnet_p96_mbv2.pth.tar')
    with pytest.raises(ValueError, match="frame_order='bisection'"):
        conv.check_config(CONFIGS['mbv2'], 'mbv2', 'x.pth', {'model.frame_order': 'temporal'})
    with pytest.raises(ValueError, match='glance_size=96'):
        conv.check_config(CONFIGS['res50'], 'res50', 'x.pth', {'model.glance_size': None})
    with pytest.raises(ValueError, match='says res50'):
        conv.check_config(CONFIGS['mbv2'], 'mbv2', 'actnet_p128_res50.pth.tar')
    problems = conv.check_config(CONFIGS['tsm'], 'tsm', 'sthv1_p176.pth.tar', allow_mismatch=True)
    assert len(problems) == 1 and 'P = 176' in problems[0]


# ------------------------------------------------------------------------------------------------
# refusals of another setting / classes (strict check lists what differs)
# ------------------------------------------------------------------------------------------------
def test_refuses_other_setting_and_classes(conv, models):
    # an mbv2 file against the res50-glance model: shapes and missing / unexpected keys listed
    mbv2 = apply_rules(empty_state(layout('mbv2')), conv.RULES['mbv2']).state_dict
    with pytest.raises(ValueError) as error:
        check_strict(mbv2, models['res50'])
    text = str(error.value)
    assert 'missing' in text and 'not in the model' in text
    assert 'fusion_head.mlp.0.weight: (4096, 3328) vs (4096, 4096)' in text
    # an FCVID file (239 classes) against the ActivityNet model (200)
    fcvid = apply_rules(empty_state(layout('mbv2', 239)), conv.RULES['mbv2']).state_dict
    with pytest.raises(ValueError, match=r'fc_global.1.weight: \(239, 1280\) vs \(200, 1280\)'):
        check_strict(fcvid, models['mbv2'])
    # a Jester TSM file (27 classes) against the Sth-Sth V1 model (174)
    jester = apply_rules(empty_state(layout('tsm', 27)), conv.RULES['tsm']).state_dict
    with pytest.raises(ValueError, match=r'8 weights differ in shape.*\(27, 1280\) vs \(174, 1280\)'):
        check_strict(jester, models['tsm'])
    # a TSM file against the MN2 + R50 model
    tsm = apply_rules(empty_state(layout('tsm')), conv.RULES['tsm']).state_dict
    with pytest.raises(ValueError, match=r'missing.*not in the model.*policy.embed.0.weight: '
                       r'\(64, 10240, 1, 1\) vs \(64, 1280, 1, 1\)'):
        check_strict(tsm, models['mbv2'])
    # a TSM encoder without the .net. wrapper of a shifted conv matches no rule
    plain = empty_state(layout('tsm'))
    plain['global_CNN.base_model.features.3.conv.0.weight'] = plain.pop(
        'global_CNN.base_model.features.3.conv.0.net.weight')
    assert apply_rules(plain, conv.RULES['tsm']).unmatched == [
        'global_CNN.base_model.features.3.conv.0.weight']


def test_convert_refuses_without_writing(conv, v2_file, tmp_path):
    """The whole pipeline: a file of the mbv2 setting against the res50-glance config is refused
    with the differences, and nothing is written."""
    src, _ = v2_file
    dst = tmp_path / 'out.pth'
    with pytest.raises(ValueError, match=r'does not fit the model AdaFocusV2.*differ in shape'):
        conv.convert(src, str(dst), config=CONFIGS['res50'])
    assert not dst.exists()


# ------------------------------------------------------------------------------------------------
# conversion, strict load and forward
# ------------------------------------------------------------------------------------------------
def _bn_eval(x, state, name):
    return F.batch_norm(x, state[f'{name}.running_mean'], state[f'{name}.running_var'],
                        state[f'{name}.weight'], state[f'{name}.bias'], False, 0.0, 1e-5)


def test_convert_v2(conv, v2_file, models, tmp_path):
    """The released MN2 + R50 layout converts (config picked from the file name), loads strictly and
    predicts as the official classifier and policy computed from the official tensors."""
    src, official = v2_file
    dst = str(tmp_path / 'adafocusv2_actnet_p128.pth')
    meta = conv.convert(src, dst)
    assert meta['config'] == CONFIGS['mbv2'] and meta['method'] == 'AdaFocusV2'
    assert meta['adafocusv2_official'] == dict(setting='mbv2', num_classes=200, patch_size=128)
    assert set(meta['dropped']) == DROPPED['mbv2']
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    model = models['mbv2']
    model.load_state_dict(ckpt['state_dict'], strict=True)
    sources = apply_rules(official, conv.RULES['mbv2']).sources
    for ours, theirs in sources.items():
        assert torch.equal(ckpt['state_dict'][ours], official[theirs]), ours

    # the policy: official encoder (Conv, BN, Tanh, Flatten, Linear, BN1d, Tanh) -> GRU -> fc.0
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 1280, 7, 7)
    p = {k[len('policy_stn.'):]: v for k, v in official.items() if k.startswith('policy_stn.')}
    x = F.conv2d(maps.flatten(0, 1), p['encoder.0.weight'])
    x = torch.tanh(_bn_eval(x, p, 'encoder.1')).flatten(1)
    x = torch.tanh(_bn_eval(F.linear(x, p['encoder.4.weight'], p['encoder.4.bias']), p, 'encoder.5'))
    gru = nn.GRU(2048, 2048, batch_first=True)
    gru.load_state_dict({k[len('gru.'):]: v for k, v in p.items() if k.startswith('gru.')})
    hidden, _ = gru(x.view(2, 3, -1))
    expected = torch.sigmoid(F.linear(hidden, p['fc.0.weight'], p['fc.0.bias']))
    with torch.no_grad():
        locations, _ = model.policy(maps)
    torch.testing.assert_close(locations, expected, atol=1e-5, rtol=1e-4)

    # a forward (exit 0: the first frame of the --sample order) and the classifier's input order:
    # the official classifier reads cat([global, local]), global first, and so does ours
    inputs = torch.randn(1, 16, 3, 224, 224)
    captured = {}
    hook = model.fusion_head.mlp[0].register_forward_hook(
        lambda module, args, output: captured.update(x=args[0], y=output))
    try:
        with torch.no_grad():
            logits, _ = model.step(0, inputs, model.init_state(inputs))
            frame = inputs[:, model.frame_order[0]]
            glance = model.backbone(frame)
            glance = (glance[-1] if isinstance(glance, (tuple, list)) else glance).mean((-2, -1))
    finally:
        hook.remove()
    assert model.frame_order[0] == 7 and logits.shape == (1, 200) and torch.isfinite(logits).all()
    torch.testing.assert_close(captured['x'][:, :1280], glance, atol=1e-5, rtol=1e-4)
    c = {k[len('classifier.'):]: v for k, v in official.items() if k.startswith('classifier.')}
    official_mlp = F.linear(torch.cat([glance, captured['x'][:, 1280:]], 1),
                            c['mlp.layers.0.weight'], c['mlp.layers.0.bias'])
    torch.testing.assert_close(captured['y'], official_mlp, atol=1e-4, rtol=1e-4)
    hidden = F.relu(_bn_eval(official_mlp, c, 'mlp.layers.1'))
    torch.testing.assert_close(logits, F.linear(hidden, c['classifiers.0.1.weight'],
                                                c['classifiers.0.1.bias']), atol=1e-4, rtol=1e-4)


def test_convert_tsm_cli(conv, tsm_file, models, tmp_path):
    """End to end through the command line: the released TSM layout converts (config from the
    file name: Sth-Sth V1, P128), keeps epoch / best_prec1 / arch, loads strictly and runs."""
    src, official = tsm_file
    dst = str(tmp_path / 'adafocusv2_tsm_sthv1_p128.pth')
    proc = run_tool([CONVERTER, src, dst])
    assert 'adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py' in proc.stdout
    assert '660 tensors' in proc.stdout
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['adafocusv2_official'] == dict(
        setting='tsm', num_classes=174, patch_size=128, epoch=50, best_prec1=47.03,
        arch='resnet50')
    assert ckpt['meta']['source'] == 'sthv1_p128.pth.tar' and ckpt['meta']['dropped'] == {}
    model = models['tsm']
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert model.glance_exit == 'frame_heads'

    # the policy: the official policy_stn (Conv 10240 -> 64, BN, Tanh, Flatten, Linear, BN1d, Tanh,
    # Linear, BN1d, Tanh, Linear, Sigmoid) on the frame-stacked maps (channel t * 1280 + c)
    torch.manual_seed(0)
    maps = torch.randn(2, 8, 1280, 7, 7)
    p = {k[len('policy_stn.'):]: v for k, v in official.items() if k.startswith('policy_stn.')}
    x = torch.tanh(_bn_eval(F.conv2d(maps.flatten(1, 2), p['0.weight']), p, '1')).flatten(1)
    x = torch.tanh(_bn_eval(F.linear(x, p['4.weight'], p['4.bias']), p, '5'))
    x = torch.tanh(_bn_eval(F.linear(x, p['7.weight'], p['7.bias']), p, '8'))
    expected = torch.sigmoid(F.linear(x, p['10.weight'], p['10.bias']))
    with torch.no_grad():
        torch.testing.assert_close(model.policy(maps), expected, atol=1e-5, rtol=1e-4)

    # exit 0 of the converted model: avg_t new_new_fc(g_t) of the official model
    inputs = torch.randn(1, 20, 3, 224, 224)
    with torch.no_grad():
        logits, state = model.step(0, inputs, model.init_state(inputs))
    assert logits.shape == (1, 174) and torch.isfinite(logits).all()
    expected = F.linear(state['feats'], official['global_CNN.new_new_fc.weight'],
                        official['global_CNN.new_new_fc.bias']).mean(1)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)
    # the prediction's glance part uses new_fc
    with torch.no_grad():
        glance = model.glance_prediction(state['feats'])
    torch.testing.assert_close(glance, F.linear(state['feats'], official['global_CNN.new_fc.weight'],
                                                official['global_CNN.new_fc.bias']).mean(1),
                               atol=1e-5, rtol=1e-4)


def test_cli_refusal(conv, tsm_file, tmp_path, capsys):
    """A refusal ends the script with status 1 and ``error: ...`` (``run_cli``, as ``__main__``),
    not a traceback; nothing is written. Here: a P176 config for a file named P128."""
    src, _ = tsm_file
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit) as exit_info:
        conv.run_cli(conv.main, [src, str(dst), '--config', osp.join(
            CFG, 'adafocusv2-tsm_mn2-r50-p176-8+12_4xb8-50e_sthv1-rgb.py')])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'P = 128' in err and '--allow-mismatch' in err
    assert not dst.exists()
