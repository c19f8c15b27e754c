# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet through the tools: the three demo stages chained by load_from (tools/train.py), budgeted
evaluation (tools/test.py --budget), and the GFNet tools (converter, benchmark, patch figure)."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmdynamic.testing.official_layouts.gfnet import (  # noqa: F401
    _EFFNET_B0, _MBV3_LARGE, _gen_efficientnet, _gen_mobilenetv3_large, _official_cascade,
    _official_layout, _OfficialState, _pycls_regnety, _round_channels)
from ..conftest import REPO, run_tool

DEMO = [
    'configs/gfnet/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls.py',
    'configs/gfnet/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-cls.py',
    'configs/gfnet/gfnet-r18w16-p48-t3_stage3_1xb32-2e_demo-cls.py',
]
NO_PRETRAINED = [f'model.{encoder}.backbone.init_cfg=None'
                 for encoder in ('global_encoder', 'local_encoder')]


def _data_options(root):
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


def _exit_costs(config):
    init_default_scope('mmpretrain')
    import mmdynamic.models  # noqa: F401
    model = MODELS.build(Config.fromfile(osp.join(REPO, config)).model).eval()
    return model.exit_macs((3, 128, 128))


@pytest.mark.slow
def test_demo_stages_train_and_budget_test(demo_root, tmp_path):
    data = _data_options(osp.join(demo_root, 'cls'))
    ckpt = None
    for stage, config in enumerate(DEMO, start=1):
        work_dir = str(tmp_path / f'stage{stage}')
        options = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                   'default_hooks.checkpoint.interval=1', 'param_scheduler=[]'] + data
        if ckpt is not None:
            options.append(f'load_from={ckpt}')
        else:  # no stand-in pre-training here
            options += NO_PRETRAINED
        proc = run_tool(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
                         *options])
        log = proc.stdout + proc.stderr
        assert 'anytime/top1_exit3' in log
        if stage == 2:
            assert 'loss_policy' in log and 'reward' in log
        else:
            assert 'loss_dsn' in log
        if ckpt is not None:
            assert 'Load checkpoint from' in log
        ckpt = osp.join(work_dir, 'epoch_1.pth')
        assert osp.isfile(ckpt)

    costs = _exit_costs(DEMO[2])
    budgets = [f'{(costs[0] + costs[1]) / 2e9:.6g}', f'{(costs[1] + costs[2]) / 2e9:.6g}']
    out = str(tmp_path / 'budget')
    run_tool(['tools/test.py', DEMO[2], ckpt, '--work-dir', out, '--budget', *budgets,
              '--cfg-options', *data])
    with open(osp.join(out, 'budget.json')) as f:
        report = json.load(f)
    assert report['exit_flops'] == pytest.approx([c / 1e9 for c in costs])
    assert len(report['anytime']) == 3 and len(report['budgets']) == 2
    low, high = report['budgets']
    # thresholds fitted on the training split meet the budgets there
    assert low['fit_gmacs'] <= float(budgets[0]) * (1 + 1e-6)
    assert high['fit_gmacs'] <= float(budgets[1]) * (1 + 1e-6)
    assert low['fit_gmacs'] < high['fit_gmacs']


def _tiny_gfnet_cfg(**kwargs):
    cfg = dict(type='GFNet', num_classes=7, patch_size=32, num_steps=3, train_stage=3,
               global_encoder=dict(backbone=dict(type='ResNet', depth=18, stem_channels=8,
                                                 base_channels=8), in_channels=64),
               classifier=dict(type='recurrent', hidden_channels=16),
               policy=dict(variant='fc', fc_channels=24, hidden_channels=16))
    cfg.update(kwargs)
    return cfg


def _write_tiny_config(path, **kwargs):
    """A config file whose model is :func:`_tiny_gfnet` (the converter builds it for the strict
    check)."""
    path.write_text("default_scope = 'mmpretrain'\n"
                    "custom_imports = dict(imports=['mmdynamic.models'])\n"
                    f'model = {_tiny_gfnet_cfg(**kwargs)!r}\n')
    return str(path)


def _tiny_gfnet(**kwargs):
    init_default_scope('mmpretrain')
    import mmdynamic.models  # noqa: F401
    cfg = _tiny_gfnet_cfg(**kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def test_converter_round_trip(tmp_path):
    import torch

    from mmdynamic.evaluation import ExitPolicy
    source = _tiny_gfnet()
    official = _official_layout(source)
    src = str(tmp_path / 'official.pth.tar')
    torch.save(official, src)
    dst = str(tmp_path / 'converted.pth')
    proc = run_tool(['tools/model_converters/gfnet_official_to_mmdynamic.py', src, dst])
    assert '39 exit policies' in proc.stdout
    converted = torch.load(dst, map_location='cpu', weights_only=False)
    target = _tiny_gfnet()
    target.load_state_dict(converted['state_dict'], strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    inputs = torch.randn(2, 3, 64, 64)
    assert torch.equal(source.forward_exits(inputs), target.forward_exits(inputs))
    # the stored thresholds and results
    meta = converted['meta']
    assert set(converted) == {'state_dict', 'meta'}  # an MMEngine checkpoint
    assert meta['method'] == 'GFNet' and meta['source'] == 'official.pth.tar'
    assert len(meta['source_sha256']) == 64 and meta['config'] is None
    assert meta['gfnet_official']['anytime_classification'] == [50.0, 60.0, 65.0]
    policy = ExitPolicy.load(dst, model='GFNet', num_exits=3, budget=0.1)
    assert policy.thresholds[:2] == pytest.approx(official['dynamic_threshold'][0, :2].tolist())
    assert policy.thresholds[-1] == float('-inf') and policy.exit_costs == [1.0e8, 2.1e8, 3.2e8]
    target.set_exit_policy(policy)  # usable for early exit as it is


def test_converter_train_py_layout_and_errors():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    source = _tiny_gfnet()
    official = _official_layout(source, prefix='')  # train.py: no module. prefix
    stage1 = {k: official[k] for k in ('model_state_dict', 'model_prime_state_dict', 'fc')}
    stage1['policy'] = None
    out = converter.convert(stage1, arch='resnet50')
    assert not any(k.startswith('policy.') for k in out['state_dict'])
    assert 'exit_policies' not in out['meta']
    missing = _tiny_gfnet().load_state_dict(out['state_dict'], strict=False)
    assert all(k.startswith('policy.') for k in missing.missing_keys)
    assert not missing.unexpected_keys
    with pytest.raises(ValueError, match='--arch'):
        converter.convert(stage1)
    with pytest.raises(NotImplementedError, match='vgg16'):
        converter.convert(stage1, arch='vgg16')


def test_benchmark_runs_end_to_end(tmp_path):
    out = str(tmp_path / 'bench.md')
    proc = run_tool(['tools/analysis_tools/benchmark_gfnet.py', '--depth', '18',
                     '--base-channels', '8', '--input-size', '64', '--patch-size', '32',
                     '--num-steps', '3', '--batch-size', '8', '--num-classes', '10',
                     '--relative-budgets', '0.35', '0.6', '--runs', '2', '--warmup', '1',
                     '--device', 'cpu', '--out', out])
    with open(out) as f:
        table = f.read()
    assert table.strip() in proc.stdout
    assert table.startswith('CPU: ')  # the report names the device that ran
    rows = [line for line in table.splitlines() if line.startswith('| GFNet @')]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        fractions = [float(f) for f in cells[2].split('/')]
        assert sum(fractions) == pytest.approx(1.0, abs=0.02) and len(fractions) == 3
        assert float(cells[3]) > 0 and float(cells[5]) > 1  # images/s, MACs ratio > 1
        speedup, ratio, quotient = (float(c) for c in cells[4:7])
        assert quotient == pytest.approx(speedup / ratio, abs=0.01)


def test_patch_figure_and_hook(tmp_path):
    import cv2
    import numpy as np
    import torch
    from types import SimpleNamespace

    from mmdynamic.visualization.gfnet_patches import GFNetPatchVisHook, draw_gfnet_patches
    image = np.zeros((64, 64, 3), np.uint8)
    out = str(tmp_path / 'fig.png')
    canvas = draw_gfnet_patches(image, [[0.0, 1.0], [1.0, 0.0]], patch_size=32, scale=2,
                                out_file=out)
    assert canvas.shape == (128, 128, 3) and cv2.imread(out).shape == (128, 128, 3)
    # step 2 (red) at the top right: rows 0..31, cols 32..63; step 3 (orange) at the bottom left
    assert tuple(canvas[20, 64]) == (0, 0, 255)
    assert tuple(canvas[100, 63]) == (0, 200, 255)
    assert tuple(canvas[20, 40]) == (0, 0, 0)  # inside a patch: untouched
    with pytest.raises(ValueError, match='image'):
        draw_gfnet_patches(image[..., 0], [], 32)

    model = _tiny_gfnet()
    hook = GFNetPatchVisHook(num_images=3, out_dir=str(tmp_path / 'vis'))
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path))
    batch = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                 data_samples=None)
    hook.before_test(runner)
    for i in range(2):
        hook.after_test_iter(runner, i, batch)
    files = sorted(os.listdir(tmp_path / 'vis' / 'gfnet_patches'))
    assert files == ['test_000.png', 'test_001.png', 'test_002.png']


@pytest.mark.slow
def test_ppo_stage_under_ddp(demo_root, tmp_path):
    """Stage II (the PPO update as the model's loss) with two gloo processes: gradients of the policy
    are all-reduced like any loss; frozen parts have no trainable parameters. (Checkpointing is
    covered by the single-process test above.)"""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    data = _data_options(osp.join(demo_root, 'cls'))
    proc = run_tool(['tools/dist_train.sh', DEMO[1], '2', '--work-dir', str(tmp_path / 'ddp'),
                     '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                     'default_hooks.checkpoint.interval=100',
                     'default_hooks.checkpoint.save_last=False', 'load_from=None',
                     # DDP runs the loss path: one PPO epoch per rollout (the official update)
                     'model.ppo.epochs=1', *NO_PRETRAINED, *data],
                    env=dict(PORT=port), timeout=300)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'loss_policy' in log and 'anytime/top1_exit3' in log


def test_converter_maps_torchvision_densenet():
    """A torchvision DenseNet-121 (the official GF-DenseNet encoders) converted into mmpretrain's
    DenseNet gives the same feature map (the official map is relu(features(x)))."""
    import importlib.util

    import torch
    import torchvision
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    torch.manual_seed(0)
    official = torchvision.models.densenet121(weights=None).eval()
    state = {f'module.{k}': v for k, v in official.state_dict().items()}
    out = converter.convert_encoder(state, 'local_encoder', 'densenet121')
    init_default_scope('mmpretrain')
    ours = MODELS.build(dict(type='DenseNet', arch='121'))
    backbone = {k[len('local_encoder.backbone.'):]: v for k, v in out.items()
                if k.startswith('local_encoder.backbone.')}
    ours.load_state_dict(backbone, strict=True)
    ours.eval()
    assert out['local_encoder.head.weight'].shape == (1000, 1024)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = torch.relu(official.features(x))
        assert torch.allclose(ours(x)[-1], expected, atol=1e-5)


def _pycls_regnety_forward(state, x):
    """pycls AnyNet with ResBottleneckBlock + SE (every stage starts with a stride-2 block with a
    projection; SE after the grouped 3x3; out = relu(proj(x) + f(x))); the last stage's map."""
    import torch.nn.functional as F

    def bn(name, t):
        return _eval_bn(state, name, t)

    x = F.relu(bn('stem.bn', F.conv2d(x, state['stem.conv.weight'], stride=2, padding=1)))
    for i in range(1, 5):
        j = 1
        while f's{i}.b{j}.f.a.weight' in state:
            p, stride = f's{i}.b{j}', 2 if j == 1 else 1
            w_b = state[f'{p}.f.b.weight']
            f = F.relu(bn(f'{p}.f.a_bn', F.conv2d(x, state[f'{p}.f.a.weight'])))
            f = F.relu(bn(f'{p}.f.b_bn', F.conv2d(f, w_b, stride=stride, padding=1,
                                                  groups=w_b.shape[0] // w_b.shape[1])))
            se = F.relu(F.conv2d(f.mean((2, 3), keepdim=True), state[f'{p}.f.se.f_ex.0.weight'],
                                 state[f'{p}.f.se.f_ex.0.bias']))
            f = f * F.conv2d(se, state[f'{p}.f.se.f_ex.2.weight'],
                             state[f'{p}.f.se.f_ex.2.bias']).sigmoid()
            f = bn(f'{p}.f.c_bn', F.conv2d(f, state[f'{p}.f.c.weight']))
            shortcut = bn(f'{p}.bn', F.conv2d(x, state[f'{p}.proj.weight'], stride=stride)) \
                if f'{p}.proj.weight' in state else x
            x = F.relu(shortcut + f)
            j += 1
    return x


@pytest.mark.parametrize('arch,channels', [('regnety_600mf', 608), ('regnety_800mf', 768)])
def test_converter_maps_pycls_regnety(arch, channels):
    """Every key of a pycls RegNet-Y encoder (the names of the official checkpoints) maps onto
    mmdynamic's RegNetY one to one, and the converted weights give the feature map of the pycls
    forward (random weights and BN statistics)."""
    import importlib.util

    import torch
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    init_default_scope('mmpretrain')
    import mmdynamic.models  # noqa: F401
    ours = MODELS.build(dict(type='RegNetY', arch=arch))
    state = _pycls_regnety(ours)
    official = {f'module.{k}': v for k, v in state.items()}
    official['module.fc.weight'] = torch.zeros(1000, channels)
    official['module.fc.bias'] = torch.zeros(1000)
    out = converter.convert_encoder(official, 'global_encoder', arch)
    backbone = {k[len('global_encoder.backbone.'):]: v for k, v in out.items()
                if k.startswith('global_encoder.backbone.')}
    assert set(backbone) == set(ours.state_dict()) and len(official) == len(out)
    result = ours.load_state_dict(backbone, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = _pycls_regnety_forward(state, x)
        fmap = ours(x)[-1]
    assert fmap.shape == expected.shape == (2, channels, 2, 2)
    assert torch.allclose(fmap, expected, rtol=1e-4, atol=1e-4)


def test_converter_maps_gen_efficientnet_mobilenetv3():
    """A gen-efficientnet MobileNetV3-Large-1.00 encoder (stages of 1/2/3/4/2/3/1 blocks, SE in
    stages 2, 4, 5, conv_head 960 -> 1280 with bias, classifier) maps one to one onto the GFEncoder
    of the GF-MobileNetV3 configs (mmpretrain MobileNetV3 + linear pre-logits + head)."""
    import importlib.util

    import torch

    from mmdynamic.models.cls.gfnet import GFEncoder
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    init_default_scope('mmpretrain')
    encoder = GFEncoder(dict(type='MobileNetV3', arch='large'), in_channels=960, num_classes=1000,
                        pre_logits_channels=1280)
    target = {k: v.shape for k, v in encoder.state_dict().items()}
    bn = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
    names = ['conv_stem.weight'] + [f'bn1.{p}' for p in bn]
    for stage, count in enumerate([1, 2, 3, 4, 2, 3]):
        for block in range(count):
            prefix = f'blocks.{stage}.{block}'
            if stage == 0:
                parts = ['conv_dw', 'bn1', 'conv_pw', 'bn2']
            else:
                parts = ['conv_pw', 'bn1', 'conv_dw', 'bn2'] + (
                    ['se.conv_reduce', 'se.conv_expand'] if stage in (2, 4, 5) else []) + [
                        'conv_pwl', 'bn3']
            for part in parts:
                params = bn if part.startswith('bn') else (
                    ('weight', 'bias') if part.startswith('se.') else ('weight', ))
                names += [f'{prefix}.{part}.{p}' for p in params]
    names += ['blocks.6.0.conv.weight'] + [f'blocks.6.0.bn1.{p}' for p in bn]
    names += ['conv_head.weight', 'conv_head.bias', 'classifier.weight', 'classifier.bias']
    official = {f'module.{n}': torch.zeros(1) for n in names}
    official['module.conv_head.weight'] = torch.ones(1280, 960, 1, 1)
    out = converter.convert_encoder(official, 'global_encoder', 'mobilenetv3_large_100')
    assert set(k[len('global_encoder.'):] for k in out) == set(target)
    assert len(out) == len(official)
    # conv_head's 1x1 kernel becomes the linear pre-logits weight
    assert out['global_encoder.pre_logits.0.weight'].shape == target['pre_logits.0.weight']


# --------------------------------------------------------------------------------------------------
# gen-efficientnet EfficientNet: mmdynamic.testing.official_layouts.gfnet (_gen_efficientnet)


def _eval_bn(state, name, t):
    """BatchNorm in eval mode (eps 1e-5) with the parameters ``name.*`` of ``state``."""
    import torch.nn.functional as F
    return F.batch_norm(t, state[f'{name}.running_mean'], state[f'{name}.running_var'],
                        state[f'{name}.weight'], state[f'{name}.bias'], False, 0.0, 1e-5)


def _depthwise(state, name, t, k, stride):
    """Depthwise k x k convolution with 'same' padding and the weight ``name.weight``."""
    import torch.nn.functional as F
    return F.conv2d(t, state[f'{name}.weight'], stride=stride, padding=k // 2, groups=t.shape[1])


def _gen_efficientnet_forward(state, plan, x):
    """The official encoder: (pooled logits of its classifier, map = act2(bn2(conv_head(.))))."""
    import torch.nn.functional as F

    def bn(name, t):
        return _eval_bn(state, name, t)

    def dw(name, t, k, stride):
        return _depthwise(state, name, t, k, stride)

    x = F.silu(bn('bn1', F.conv2d(x, state['conv_stem.weight'], stride=2, padding=1)))
    for p, kind, k, stride, in_c, out_c in plan:
        shortcut = x
        if kind == 'ir':
            x = F.silu(bn(f'{p}.bn1', F.conv2d(x, state[f'{p}.conv_pw.weight'])))
            x = F.silu(bn(f'{p}.bn2', dw(f'{p}.conv_dw', x, k, stride)))
        else:
            x = F.silu(bn(f'{p}.bn1', dw(f'{p}.conv_dw', x, k, stride)))
        se = F.silu(F.conv2d(x.mean((2, 3), keepdim=True), state[f'{p}.se.conv_reduce.weight'],
                             state[f'{p}.se.conv_reduce.bias']))
        x = x * F.conv2d(se, state[f'{p}.se.conv_expand.weight'],
                         state[f'{p}.se.conv_expand.bias']).sigmoid()
        if kind == 'ir':
            x = bn(f'{p}.bn3', F.conv2d(x, state[f'{p}.conv_pwl.weight']))
        else:
            x = bn(f'{p}.bn2', F.conv2d(x, state[f'{p}.conv_pw.weight']))
        if stride == 1 and in_c == out_c:
            x = x + shortcut
    fmap = F.silu(bn('bn2', F.conv2d(x, state['conv_head.weight'])))
    logits = F.linear(fmap.mean((2, 3)), state['classifier.weight'], state['classifier.bias'])
    return logits, fmap


@pytest.mark.parametrize('arch,width,depth,channels',
                         [('b2', 1.1, 1.2, 1408), ('b3', 1.2, 1.4, 1536)])
def test_converter_maps_gen_efficientnet_efficientnet(arch, width, depth, channels):
    """An official-layout EfficientNet encoder (gen-efficientnet names, random weights and BN
    statistics) converted into the GFEncoder of the GF-EfficientNet configs loads with no missing or
    unexpected key and gives the same feature map and DSN-head logits as the official forward."""
    import importlib.util

    import torch

    from mmdynamic.models.cls.gfnet import GFEncoder
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    state, plan = _gen_efficientnet(width, depth)
    assert len(plan) == {'b2': 23, 'b3': 26}[arch]
    official = {f'module.{k}': v for k, v in state.items()}
    out = converter.convert_encoder(official, 'global_encoder', f'efficientnet_{arch}')
    assert len(out) == len(official)
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(REPO, 'configs/gfnet/_base_/gfnet-efficientnet.py'))
    backbone = dict(cfg.model.global_encoder.backbone, arch=arch)
    assert cfg.model.global_encoder.in_channels == 1408
    encoder = GFEncoder(backbone, in_channels=channels, num_classes=1000).eval()
    result = encoder.load_state_dict(
        {k[len('global_encoder.'):]: v for k, v in out.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected_logits, expected_map = _gen_efficientnet_forward(state, plan, x)
        pooled, fmap = encoder(x)
        logits = encoder.head(pooled)
    assert fmap.shape == expected_map.shape == (2, channels, 2, 2)
    # float32 rounding of two op orders, relative to the size of the (random-weight) outputs
    assert torch.allclose(fmap, expected_map, rtol=1e-4, atol=1e-5 * expected_map.abs().max())
    assert torch.allclose(logits, expected_logits, rtol=1e-4,
                          atol=1e-5 * expected_logits.abs().max())
    # the map is the official one only with its padding and BN eps (mmpretrain's defaults differ)
    tf_like = GFEncoder(dict(type='EfficientNet', arch=arch), in_channels=channels,
                        num_classes=1000).eval()
    tf_like.load_state_dict({k[len('global_encoder.'):]: v for k, v in out.items()})
    with torch.no_grad():
        assert not torch.allclose(tf_like(x)[1], expected_map, rtol=1e-4, atol=1e-4)


# gen-efficientnet MobileNetV3-Large: mmdynamic.testing.official_layouts.gfnet (_gen_mobilenetv3_large)


def _gen_mobilenetv3_forward(state, plan, x):
    import torch.nn.functional as F
    acts = dict(relu=F.relu, hswish=F.hardswish)

    def bn(name, t):
        return _eval_bn(state, name, t)

    def dw(name, t, k, stride):
        return _depthwise(state, name, t, k, stride)

    x = F.hardswish(bn('bn1', F.conv2d(x, state['conv_stem.weight'], stride=2, padding=1)))
    for p, kind, k, stride, in_c, out_c, se, act in plan:
        shortcut, act = x, acts[act]
        if kind == 'ds':
            x = act(bn(f'{p}.bn1', dw(f'{p}.conv_dw', x, k, stride)))
            x = bn(f'{p}.bn2', F.conv2d(x, state[f'{p}.conv_pw.weight']))
        else:
            x = act(bn(f'{p}.bn1', F.conv2d(x, state[f'{p}.conv_pw.weight'])))
            x = act(bn(f'{p}.bn2', dw(f'{p}.conv_dw', x, k, stride)))
            if se:
                s = F.relu(F.conv2d(x.mean((2, 3), keepdim=True),
                                    state[f'{p}.se.conv_reduce.weight'],
                                    state[f'{p}.se.conv_reduce.bias']))
                x = x * F.hardsigmoid(F.conv2d(s, state[f'{p}.se.conv_expand.weight'],
                                               state[f'{p}.se.conv_expand.bias']))
            x = bn(f'{p}.bn3', F.conv2d(x, state[f'{p}.conv_pwl.weight']))
        if stride == 1 and in_c == out_c:
            x = x + shortcut
    fmap = F.hardswish(bn('blocks.6.0.bn1', F.conv2d(x, state['blocks.6.0.conv.weight'])))
    pooled = F.hardswish(F.conv2d(fmap.mean((2, 3), keepdim=True), state['conv_head.weight'],
                                  state['conv_head.bias'])).flatten(1)
    logits = F.linear(pooled, state['classifier.weight'], state['classifier.bias'])
    return logits, fmap


def test_converter_mobilenetv3_matches_the_official_forward():
    """An official-layout MobileNetV3-Large-1.00 encoder (random weights and BN statistics)
    converted into the GFEncoder of the GF-MobileNetV3 configs gives the official feature map (960
    channels, before conv_head) and the official logits of its classifier (the glance/DSN head)."""
    import importlib.util

    import torch

    from mmdynamic.models.cls.gfnet import GFEncoder
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    state, plan = _gen_mobilenetv3_large()
    out = converter.convert_encoder({f'module.{k}': v for k, v in state.items()},
                                    'local_encoder', 'mobilenetv3_large_100')
    assert len(out) == len(state)
    init_default_scope('mmpretrain')
    import mmdynamic.models  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, 'configs/gfnet/_base_/gfnet-mobilenetv3.py'))
    encoder_cfg = dict(cfg.model.local_encoder)
    encoder = GFEncoder(num_classes=1000, **encoder_cfg).eval()
    result = encoder.load_state_dict(
        {k[len('local_encoder.'):]: v for k, v in out.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected_logits, expected_map = _gen_mobilenetv3_forward(state, plan, x)
        pooled, fmap = encoder(x)
        logits = encoder.head(pooled)
    assert fmap.shape == expected_map.shape == (2, 960, 3, 3)
    # float32 rounding of two op orders, relative to the size of the (random-weight) outputs
    assert torch.allclose(fmap, expected_map, rtol=1e-4, atol=1e-5 * expected_map.abs().max())
    assert torch.allclose(logits, expected_logits, rtol=1e-4,
                          atol=1e-5 * expected_logits.abs().max())


def _converter():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'gfnet_converter', osp.join(REPO, 'tools/model_converters/gfnet_official_to_mmdynamic.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    return converter


def test_converter_drops_the_unused_cascade_heads(tmp_path, capsys):
    """A T = 3 cascade checkpoint carries fc_4 / fc_5: they are dropped with a note, and the
    converted state dict loads strictly (issue #16, item 18)."""
    import torch
    converter = _converter()
    source = _tiny_gfnet(classifier=dict(type='cascade'), glance_head='encoder')
    official = _official_cascade(source)
    src, dst = str(tmp_path / 'official.pth.tar'), str(tmp_path / 'converted.pth')
    torch.save(official, src)
    converter.main([src, dst])
    printed = capsys.readouterr().out
    assert 'dropped the unused classifier heads fc_4, fc_5' in printed
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    target = _tiny_gfnet(classifier=dict(type='cascade'), glance_head='encoder')
    missing = target.load_state_dict(converted['state_dict'], strict=False)
    assert not missing.unexpected_keys
    assert all(k.startswith('policy.') for k in missing.missing_keys)  # stage-1 layout
    target.policy.load_state_dict(source.policy.state_dict())
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source.forward_exits(inputs), target.forward_exits(inputs))
    assert converted['meta']['gfnet_official']['num_steps'] == 3
    assert sorted(converted['meta']['dropped']) == [
        'fc.fc_4.bias', 'fc.fc_4.weight', 'fc.fc_5.bias', 'fc.fc_5.weight']
    # train.py layout (no flops): T from --num-steps, else every head is kept, with a note
    bare = _official_cascade(source, with_results=False)
    notes = []
    kept = converter.convert(bare, notes=notes)['state_dict']
    assert any(k.startswith('classifier.fcs.3.') for k in kept)
    assert any('T is unknown' in note for note in notes)
    dropped = converter.convert(bare, num_steps=3)['state_dict']
    assert not any(k.startswith(('classifier.fcs.2.', 'classifier.fcs.3.')) for k in dropped)
    with pytest.raises(ValueError, match='T=3'):
        converter.convert(official, num_steps=4)


def test_converter_checks_the_glance_head_of_the_config(tmp_path, capsys):
    """The official RegNet inference predicts step 1 with fG's head: the RegNet configs say so, and
    the converter refuses a config that disagrees with the checkpoint (issue #16, item 15)."""
    import torch
    from mmengine.config import Config
    converter = _converter()
    regnet = Config.fromfile(osp.join(
        REPO, 'configs/gfnet/gfnet-regnety-600mf-p96-t5_stage3_4xb64-60e_in1k.py')).model
    assert converter.official_glance_head('regnety_600m') == 'encoder'
    converter.check_model_config(regnet, 'regnety_600m', 5)  # the shipped config agrees
    for arch in ('resnet50', 'densenet121'):
        assert converter.official_glance_head(arch) == 'classifier'
    disagreeing = dict(regnet, glance_head='classifier')
    with pytest.raises(ValueError, match="glance_head='classifier'.*model.glance_head='encoder'"):
        converter.check_model_config(disagreeing, 'regnety_600m', 5)
    with pytest.raises(ValueError, match='num_steps=5 but the checkpoint T=3'):
        converter.check_model_config(regnet, 'regnety_600m', 3)
    notes = []
    converter.check_model_config(disagreeing, 'regnety_600m', 5, allow_mismatch=True, notes=notes)
    assert len(notes) == 1 and notes[0].startswith('WARNING')
    # through main: a ResNet checkpoint with a config that predicts the glance with fG's head
    source = _tiny_gfnet()
    src, dst = str(tmp_path / 'official.pth.tar'), str(tmp_path / 'converted.pth')
    torch.save(_official_layout(source), src)
    config = _write_tiny_config(tmp_path / 'cfg.py', glance_head='encoder')
    with pytest.raises(ValueError, match='glance_head'):
        converter.main([src, dst, '--config', config])
    assert not osp.exists(dst)
    converter.main([src, dst, '--config', config, '--allow-mismatch'])
    assert 'WARNING' in capsys.readouterr().out and osp.exists(dst)
    config = _write_tiny_config(tmp_path / 'cfg.py', glance_head='classifier')
    converter.main([src, dst, '--config', config])
    assert 'WARNING' not in capsys.readouterr().out
    meta = torch.load(dst, map_location='cpu', weights_only=True)['meta']
    assert meta['config'] == config and meta['method'] == 'GFNet'
    # the weights are checked strictly against the config's model: another number of classes is
    # refused with the list of differences, and the existing output is left as it was
    with open(dst, 'rb') as f:
        before = f.read()
    with pytest.raises(ValueError, match=r'weights differ in shape.*\(7, 64\) vs \(5, 64\)'):
        converter.main([src, dst, '--config', config, '--cfg-options', 'model.num_classes=5'])
    with open(dst, 'rb') as f:
        assert f.read() == before


def test_converter_reads_with_weights_only_and_lists_the_archs(tmp_path):
    import argparse

    import torch
    converter = _converter()
    src = str(tmp_path / 'pickled.pth.tar')
    official = _official_layout(_tiny_gfnet())
    torch.save(dict(official, args=argparse.Namespace(lr=0.1)), src)  # needs unpickling
    with pytest.raises(ValueError, match='weights_only=True.*arbitrary code'):
        converter.load_official(src)
    proc = run_tool(['tools/model_converters/gfnet_official_to_mmdynamic.py', src,
                     str(tmp_path / 'out.pth')], check=False)
    assert proc.returncode != 0 and 'error:' in proc.stderr and 'arbitrary code' in proc.stderr
    proc = run_tool(['tools/model_converters/gfnet_official_to_mmdynamic.py', '--help'])
    help_text = ' '.join(proc.stdout.split())
    for arch in converter.OFFICIAL_ARCHS:
        assert arch in help_text
    torch.save(official, src)  # an official file loads with weights_only=True
    assert converter.load_official(src)['model_name'] == 'resnet18'


def test_converter_picks_the_stage3_config_of_a_released_checkpoint():
    """Without --config the converter takes the stage-3 config named by the checkpoint's
    model_name, patch_size and T (and checks the weights strictly against it); a file it cannot
    place is converted unchecked, with a note."""
    converter = _converter()
    released = dict(model_name='resnet50', patch_size=96, flops=[1.0] * 5, policy={})
    assert osp.basename(converter.pick_config(released)) == \
        'gfnet-r50-p96-t5_stage3_4xb64-60e_in1k.py'
    for arch, patch, steps, name in (
            ('regnety_1.6g', 96, 5, 'gfnet-regnety-1.6gf-p96-t5_stage3_4xb64-60e_in1k.py'),
            ('mobilenetv3_large_125', 128, 3, 'gfnet-mbv3-l-125-p128-t3_stage3_4xb64-90e_in1k.py'),
            ('efficientnet_b3', 144, 4, 'gfnet-effnet-b3-p144-t4_stage3_4xb64-30e_in1k.py')):
        obj = dict(released, model_name=arch, patch_size=patch, flops=[1.0] * steps)
        assert osp.basename(converter.pick_config(obj)) == name
    # T from --num-steps when the file has no flops; refusals say what was read
    bare = dict(model_name='densenet169', patch_size=96, policy={})
    assert 'densenet169-p96-t5' in converter.pick_config(bare, num_steps=5)
    with pytest.raises(ValueError, match="model_name='densenet169', patch_size=96, T=None"):
        converter.pick_config(bare)
    with pytest.raises(ValueError, match='no config configs/gfnet/gfnet-r50-p32-t3_stage3'):
        converter.pick_config(dict(released, patch_size=32, flops=[1.0] * 3))
    with pytest.raises(ValueError, match='stage-1'):
        converter.pick_config(dict(released, policy=None))


def test_policy_eval_tool(demo_root, tmp_path, capsys):
    """tools/analysis_tools/gfnet_policy_eval.py: which patches hold the box, and learned vs random
    locations with one model (the glance step cannot differ; the gain is the paired difference)."""
    import torch

    from mmdynamic.utils.run_config import build_model
    from .test_mgnet_tools import load_tool, table_rows
    tool = load_tool(osp.join('tools', 'analysis_tools', 'gfnet_policy_eval.py'))
    # 128 px, P = 48; 'topleft': location (r, c) -> corner (80 r, 80 c); boxes x1 y1 x2 y2 (exclusive)
    boxes = torch.tensor([[10., 20., 40., 48.], [10., 20., 40., 49.], [90., 85., 120., 128.]])
    locations = torch.tensor([[[0., 0.], [1., 1.]],
                              [[0., 0.], [0., 0.]],     # the box ends one row below the patch
                              [[0., 0.], [1., 1.]]])    # rows / cols 80..127 hold it
    holds = tool.patch_holds_box(locations, boxes, 128, 48, 'topleft')
    assert holds.tolist() == [[True, False], [False, False], [False, True]]
    centred = tool.patch_holds_box(torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]]),
                                   torch.tensor([[50., 45., 80., 88.], [50., 45., 80., 89.]]),
                                   128, 48, 'centre')  # corner 64 - 24 = 40: rows / cols 40..87
    assert centred.tolist() == [[True], [False]]

    cfg = Config.fromfile(osp.join(REPO, DEMO[1]))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = build_model(cfg)
    ckpt = str(tmp_path / 'stage2.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    options = ['--cfg-options', f"test_dataloader.dataset.data_root={osp.join(demo_root, 'cls')}"]
    result = tool.main([osp.join(REPO, DEMO[1]), ckpt, '--random-draws', '2', '--work-dir',
                        str(tmp_path / 'eval')] + options)
    rows = table_rows(capsys.readouterr().out, 'step')
    assert [r[0] for r in rows] == ['1', '2', '3'] and rows[0][3] == '-'
    assert result['num_samples'] == 20 and result['patch_size'] == 48
    assert result['top1_learned'][0] == result['top1_random_mean'][0]  # the glance: no location yet
    assert result['gain_last'] == pytest.approx(
        result['top1_learned'][-1] - result['top1_random_mean'][-1])
    assert len(result['top1_random']) == 2 and len(result['holds_object_learned']) == 2
    assert all(0 <= h <= 1 for h in result['holds_object_learned'] + result['holds_object_random'])
    with open(tmp_path / 'eval' / 'policy_eval.json') as f:
        assert json.load(f)['gain_last'] == result['gain_last']
    with pytest.raises(ValueError, match='random-draws'):
        tool.main([osp.join(REPO, DEMO[1]), ckpt, '--random-draws', '0'] + options)
