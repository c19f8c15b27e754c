# Copyright (c) mmdynamic contributors. All rights reserved.
"""The SAR converter (tools/model_converters/sar_official_to_mmdynamic.py) on files written in the
official layout (official_checkpoints.md, SAR: keys, nesting and shapes; random values): the rule
table, the settings read from ``model`` / ``hyper_set``, the config it picks, conversion, strict
load, refusals and a forward of the converted model."""
import argparse
import importlib.util
import os.path as osp

import pytest
import torch

from mmdynamic.utils.official_converter import apply_rules, build_model_from_config, run_cli

from mmdynamic.testing.official_layouts.sar import _checkpoint, _cifar, _hyper_set, _tensors  # noqa: F401
from ..conftest import REPO, run_tool

TOOL = 'tools/model_converters/sar_official_to_mmdynamic.py'
R50_G2 = osp.join(REPO, 'configs/sar/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py')
R32_C100 = osp.join(REPO, 'configs/sar/sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py')


@pytest.fixture(scope='module')
def sar():
    spec = importlib.util.spec_from_file_location('sar_converter', osp.join(REPO, TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
LAYOUTS = [  # (official layout arguments, our backbone) for the property below
    (dict(block='bottleneck', layers=(3, 4, 6, 3)), dict(depth=50, groups=2)),
    (dict(block='bottleneck', layers=(3, 4, 6, 3), groups=4), dict(depth=50, groups=4,
                                                                   base_scale=4)),
    (dict(block='bottleneck', layers=(3, 4, 6, 3), groups=1, att=False),
     dict(depth=50, groups=1, fusion='add')),
    (dict(block='basic', layers=(3, 4, 6, 3), groups=4), dict(depth=34, groups=4)),
    (dict(block='bottleneck', layers=(4, 8, 18, 3), use_stem=True),
     dict(depth=101, groups=2, deep_stem=True)),
    (dict(block='bottleneck', layers=(3, 4, 6, 3), alpha=1, beta=2),
     dict(depth=50, groups=2, alpha=1, beta=2)),
]


@pytest.mark.parametrize('official, ours', LAYOUTS)
def test_every_official_tensor_lands_in_exactly_one_of_ours(sar, official, ours):
    """The property that makes the mapping trustworthy without the official code: the spec's layout
    maps one to one onto our model's state dict, shapes kept, nothing dropped or left over."""
    from mmdynamic.models.backbones import SARResNet
    layout = sar.official_imagenet_layout(**official)
    result = apply_rules(layout, sar.RULES)  # the values are the spec's shapes here
    assert not result.unmatched and not result.dropped
    assert len(result.sources) == len(layout) == len(set(result.sources.values()))
    for key, source in result.sources.items():
        assert result.state_dict[key] == layout[source]
    with torch.device('meta'):
        backbone = SARResNet(**ours)
    expected = {f'backbone.{k}': tuple(v.shape) for k, v in backbone.state_dict().items()}
    channels = backbone.out_channels[-1]
    expected.update({'head.fc.weight': (1000, channels), 'head.fc.bias': (1000, )})
    assert dict(result.state_dict) == expected


def test_cifar_layouts_land_one_to_one_on_the_cifar_configs(sar):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    for path, (depth, width, groups, beta, classes) in {
            R32_C100: (32, 1, 2, 1, 100),
            osp.join(REPO, 'configs/sar/sar-resnet20x1.5-g2a2b1-t0.5_1xb128-500e_cifar10.py'):
            (20, 1.5, 2, 1, 10),
            osp.join(REPO, 'configs/sar/sar-resnet32x2-g4a2b2-t0.3_1xb128-300e_cifar100.py'):
            (32, 2, 4, 2, 100)}.items():
        layout = sar.official_cifar_layout(sar.CIFAR_BLOCKS[depth], width, groups, beta=beta,
                                           classes=classes)
        result = apply_rules(layout, sar.RULES)
        assert not result.unmatched and len(set(result.sources.values())) == len(layout)
        cfg = Config.fromfile(path)
        init_default_scope(cfg.default_scope)
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
            dict(result.state_dict), path


def test_settings_and_config_picking(sar):
    att = sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3))
    obj = _checkpoint(att, 'sar_resnet50_1attFuse', _hyper_set(), device='meta')
    settings = sar.read_settings(obj)
    assert (settings['family'], settings['depth'], settings['groups'], settings['alpha'],
            settings['beta'], settings['base_scale'], settings['fusion']) == \
        ('imagenet', 50, 2, 2, 1, 2, 'att')
    assert settings['mask_grid'] == (14, 7, 2) and settings['num_classes'] == 1000
    assert settings['target_rate'] == 0.5 and not settings['defaulted']
    assert osp.basename(sar.pick_config(obj)) == osp.basename(R50_G2)
    # G4 s4 and R34 G4 s4 (hyper_set only: base_scale has no tensor)
    g4 = sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3), groups=4)
    for scale, name in ((2, 'sar-r50-g4s2a2b1'), (4, 'sar-r50-g4s4a2b1')):
        obj = _checkpoint(g4, 'sar_resnet50_1attFuse',
                          _hyper_set(patch_groups=4, base_scale=scale), device='meta')
        assert osp.basename(sar.pick_config(obj)).startswith(name)
    r34 = sar.official_imagenet_layout('basic', (3, 4, 6, 3), groups=4)
    obj = _checkpoint(r34, 'sar_resnet34_1attFuse',
                      _hyper_set(patch_groups=4, base_scale=4, target_rate=0.6), device='meta')
    assert osp.basename(sar.pick_config(obj)).startswith('sar-r34-g4s4a2b1')
    # CIFAR: classes and width decide between the CIFAR-10 / CIFAR-100 configs
    for classes, depth, width, expected in (
            (100, 32, 1.0, 'sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py'),
            (10, 32, 1.0, 'sar-resnet32-g2a2b1-t0.5_1xb128-500e_cifar10.py'),
            (10, 20, 1.5, 'sar-resnet20x1.5-g2a2b1-t0.5_1xb128-500e_cifar10.py')):
        layout, name, hyper_set = _cifar(sar, classes, depth=depth, width=width)
        obj = _checkpoint(layout, name, hyper_set, device='meta')
        assert osp.basename(sar.pick_config(obj)) == expected
        assert sar.read_settings(obj)['mask_grid'] == (4, 4, 2)
    # without hyper_set: what the tensors show, the rest from the official defaults (and said so)
    obj = _checkpoint(att, 'sar_resnet50_1attFuse', None, device='meta')
    settings = sar.read_settings(obj)
    assert settings['groups'] == 2 and settings['defaulted'] == ['base_scale', 'mask_size']


def test_pick_config_refuses_with_the_settings_it_read(sar):
    # the additive ImageNet model (mask_size 7 -> grid (7, 7, 2)): no shipped config; the message
    # names the settings read and the options that make the closest config fit
    add = sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3), att=False)
    obj = _checkpoint(add, 'sar_resnet50_alphaBase_4stage_imgnet',
                      _hyper_set(arch='sar_resnet_imgnet4stage_alphaBase',
                                 arch_config='sar_resnet50_alphaBase_4stage_imgnet'),
                      device='meta')
    with pytest.raises(ValueError) as err:
        sar.pick_config(obj)
    message = str(err.value)
    assert 'no config under configs/sar matches' in message
    assert "fusion='add'" in message and 'mask_grid=(7, 7, 2)' in message
    assert 'sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py' in message
    assert 'model.backbone.fusion=add' in message
    assert 'model.backbone.mask_grid="(7,7,2)"' in message
    # R101 with the deep stem
    r101 = sar.official_imagenet_layout('bottleneck', (4, 8, 18, 3), use_stem=True)
    obj = _checkpoint(r101, 'sar_resnet101_1attFuse', _hyper_set(), device='meta')
    with pytest.raises(ValueError, match=r'depth=101.*model.backbone.depth=101 '
                                         r'model.backbone.deep_stem=True'):
        sar.pick_config(obj)
    # CIFAR-100 with 7 classes
    layout, name, hyper_set = _cifar(sar, classes=7)
    with pytest.raises(ValueError, match=r'num_classes=7.*model.head.num_classes=7'):
        sar.pick_config(_checkpoint(layout, name, hyper_set, device='meta'))
    # a hyper_set that the tensors contradict
    obj = _checkpoint(sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3)),
                      'sar_resnet50_1attFuse', _hyper_set(patch_groups=4), device='meta')
    with pytest.raises(ValueError, match='contradicts itself.*groups: 4 by name / hyper_set, 2 by'):
        sar.read_settings(obj)


def test_cifar_conversion_end_to_end(sar, tmp_path):
    """Through the command line: the picked config, a strict load, the official values in place,
    the meta carried over, and a forward of the converted model."""
    layout, name, hyper_set = _cifar(sar)
    official = _checkpoint(layout, name, hyper_set, seed=1)
    src, dst = str(tmp_path / 'checkpoint.pth.tar'), str(tmp_path / 'sar_r32.pth')
    torch.save(official, src)
    proc = run_tool([TOOL, src, dst])
    assert 'sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py' in proc.stdout
    assert f'SAR: {len(layout)} tensors of checkpoint.pth.tar converted' in proc.stdout
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    meta = converted['meta']
    assert meta['method'] == 'SAR' and meta['source'] == 'checkpoint.pth.tar'
    assert meta['config'].endswith('configs/sar/sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py')
    assert meta['sar_official']['best_acc1'] == pytest.approx(77.25)
    assert meta['sar_official']['hyper_set'] == hyper_set
    assert meta['sar_official']['model'] == name and meta['sar_official']['epoch'] == 200
    model = build_model_from_config(R32_C100)
    model.load_state_dict(converted['state_dict'], strict=True)
    state = official['state_dict']
    assert torch.equal(model.backbone.stages[1].masks[3].fc.bias,
                       state['module.layer2.mask_gen.3.fc_gs.bias'])
    assert torch.equal(model.backbone.stages[2].fusion_block.bn2.running_var,
                       state['module.layer3.fusion.0.bn2.running_var'])
    assert torch.equal(model.head.fc.weight, state['module.fc.weight'])
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 100) and torch.isfinite(logits).all()
    assert len(model.backbone.last_masks) == 12


def test_r50_conversion_and_refusals(sar, tmp_path, capsys):
    layout = sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3))
    official = _checkpoint(layout, 'sar_resnet50_1attFuse', _hyper_set(), seed=2)
    src, dst = str(tmp_path / 'r50.pth.tar'), str(tmp_path / 'r50.pth')
    torch.save(official, src)
    meta = sar.main([src, dst])
    assert meta['config'] == R50_G2
    assert meta['sar_official']['settings']['groups'] == 2
    assert 'config: configs/sar/sar-r50-g2s2a2b1' in capsys.readouterr().out
    model = build_model_from_config(R50_G2)
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    model.load_state_dict(converted['state_dict'], strict=True)
    assert torch.equal(model.backbone.stages[0].fuse.fc2.weight,
                       official['state_dict']['module.layer1.att_gen.fc.2.weight'])
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224), mode='tensor')
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    with open(dst, 'rb') as f:
        before = f.read()

    # a file of another depth and groups, given the R50 G2 config: refused, listing the differences
    r34 = str(tmp_path / 'r34.pth.tar')
    torch.save(_checkpoint(sar.official_imagenet_layout('basic', (3, 4, 6, 3), groups=4),
                           'sar_resnet34_1attFuse', _hyper_set(patch_groups=4, base_scale=4)), r34)
    with pytest.raises(ValueError, match=r'depth: checkpoint 34, config 50; groups: checkpoint 4, '
                                         r'config 2; base_scale: checkpoint 4, config 2'):
        sar.main([r34, dst, '--config', R50_G2])
    # another number of classes, without a hyper_set (tensors only): the same, through the CLI
    cifar, name, _ = _cifar(sar, classes=10)
    c10 = str(tmp_path / 'c10.pth.tar')
    torch.save(_checkpoint(cifar, name, None), c10)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sar.main, [c10, dst, '--config', R32_C100])
    assert exit_info.value.code == 1
    stderr = capsys.readouterr().err
    assert 'error: c10.pth.tar is not a checkpoint of the model of' in stderr
    assert 'num_classes: checkpoint 10, config 100' in stderr
    # the strict check behind it: the config's model with the file's settings forced still
    # refuses what does not fit (here: the head), listing the shapes, and nothing is written
    with pytest.raises(ValueError, match=r'head.fc.weight: \(10, 64\) vs \(100, 64\)'):
        sar.convert_checkpoint(c10, dst, R32_C100, sar.RULES, 'SAR')
    with open(dst, 'rb') as f:
        assert f.read() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c10.pth.tar', 'r34.pth.tar', 'r50.pth',
                                                          'r50.pth.tar']


@pytest.mark.slow
def test_converted_file_runs_through_tools_test(sar, demo_root, tmp_path):
    """An official-layout file of the demo SAR-R50 (1/4 width, the demo's 10 classes, the official
    attention model's (14, 7, 2) grid) converted with ``--config`` and evaluated by tools/test.py on
    the demo data. The file is our model's weights under the official names: the spec's R50 G2
    layout confirms every name first (same structure; only the widths differ)."""
    config = 'configs/sar/sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py'
    grid = {'model.backbone.mask_grid': (14, 7, 2)}
    torch.manual_seed(0)
    model = build_model_from_config(osp.join(REPO, config), grid)
    ours = model.state_dict()
    mapping = apply_rules(sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3), classes=10),
                          sar.RULES).sources
    assert set(mapping) == set(ours)  # every name of ours has its official name in the spec
    official = {f'module.{mapping[k]}': v.clone() for k, v in ours.items()}
    src, dst = str(tmp_path / 'demo.pth.tar'), str(tmp_path / 'demo.pth')
    torch.save(dict(epoch=12, model='sar_resnet50_1attFuse', state_dict=official, best_acc1=0.0,
                    hyper_set=_hyper_set(num_classes=10, dataset='demo')), src)
    options = ['model.backbone.mask_grid=(14,7,2)']
    run_tool([TOOL, src, dst, '--config', config, '--cfg-options', *options])
    root = osp.join(demo_root, 'cls')
    proc = run_tool(['tools/test.py', config, dst, '--work-dir', str(tmp_path / 'test'),
                     '--cfg-options', *options,
                     *[f'{split}_dataloader.dataset.data_root={root}'
                       for split in ('train', 'val', 'test')]])
    log = proc.stdout + proc.stderr
    assert 'accuracy/top1' in log and 'gmacs' in log
