# Copyright (c) mmdynamic contributors. All rights reserved.
"""Convert a checkpoint of the official SAR code (yizenghan/sarNet) into an mmdynamic checkpoint.

The authors release no weights, but their training scripts (``main_sar_imgnet_*.py``,
``main_sar_cifar_*.py``) write checkpoints a user may have: a dict with ``epoch``, ``model`` (the
architecture function, e.g. ``sar_resnet50_1attFuse``, ``sar_resnet50_alphaBase_4stage_imgnet``,
``sar_resnet32_alphaBase_cifar``), ``hyper_set`` (``str(args)``: ``patch_groups``, ``alpha``,
``beta``, ``base_scale``, ``mask_size``, ``target_rate`` / ``target_flops``, ...), ``state_dict``
(keys prefixed ``module.`` under DataParallel / DDP), ``best_acc1``, the optimizer state and logs
(``official_checkpoints.md``, SAR section).

Accepted models: the ImageNet attention model (``sar_resnet_1attFuse``) and its additive variant
(``sar_resnet_imgnet4stage_alphaBase``), depths 34 / 50 / 101 (the authors' (4, 8, 18, 3) stages),
any groups G, base scale s, alpha, beta, with the plain or the deep stem (``use_stem``: keys
``stem.0..7``), and the CIFAR model (``sar_resnet_cifar3stage_alphaBase``, depths 20 / 32 / 56, with
width multipliers).

Key mapping (:data:`RULES`, first match wins, nothing reshaped): ``conv1`` / ``bn1`` / ``stem`` ->
``backbone.*``; ``layer{1,2,3}`` -> ``backbone.stages.{0,1,2}`` with ``base_module`` -> ``base``
(shortcut ``downsample.1/.2`` -> ``shortcut.conv/.bn``, ``.0`` is a parameter-free AvgPool),
``refine_module`` -> ``refine`` (``downsample.0/.1`` -> ``shortcut.conv/.bn``), ``mask_gen.i``
(``conv3x3_gs.0/.1``, ``fc_gs``) -> ``masks.i`` (``conv``/``bn``/``fc``), ``{base,refine}_transform``
``.0/.1`` -> ``.conv/.bn``, ``att_gen.fc.0/.2`` -> ``fuse.fc1/.fc2``, ``fusion.0`` -> ``fusion_block``;
``layer4.j`` -> ``backbone.layer4.j`` (``downsample.1/.2`` -> ``shortcut.conv/.bn``); ``fc`` ->
``head.fc``. Every official tensor lands in exactly one of ours (:func:`official_imagenet_layout` /
:func:`official_cifar_layout` give the spec's key -> shape lists).

The config: ``--config``, or the one under ``configs/sar`` that :func:`pick_config` finds from the
settings the checkpoint holds (:func:`read_settings`: the architecture from ``model``, the build
options from ``hyper_set``, checked against the tensors). Settings that no tensor shows (the base scale,
the mask grid) decide the numerics, so a config is only taken when they agree too; when none does,
the converter says which settings it read and which ``--cfg-options`` make the closest config fit.
The weights are then checked strictly against the config's model (a file of another depth, groups,
width or number of classes is refused with the list of differences, nothing is written).

``meta['sar_official']`` keeps ``model``, ``hyper_set``, ``best_acc1`` (and its top-5), ``epoch`` and
the settings read.

Example:
    python tools/model_converters/sar_official_to_mmdynamic.py \\
        checkpoint.pth.tar sar_r50_g2s2a2b1.pth
    python tools/test.py configs/sar/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py sar_r50_g2s2a2b1.pth
"""
import ast
import functools
import glob
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmdynamic.utils.official_converter import (Rule, convert_checkpoint,  # noqa: E402
                                                converter_arg_parser, load_official, run_cli,
                                                unwrap_state_dict)

METHOD = 'SAR'
CONFIG_DIR = osp.join(REPO, 'configs', 'sar')
# the classification configs a checkpoint can be converted for (not the demo / det / seg ones)
CONFIG_PATTERNS = dict(imagenet=('sar-*_in1k.py', ), cifar=('sar-*_cifar*.py', ))

# ----------------------------------------------------------------------------------------------
# the key rules (official_checkpoints.md, SAR: official key -> mmdynamic key)
# ----------------------------------------------------------------------------------------------
_P = r'(\w+)'  # weight, bias, running_mean, running_var, num_batches_tracked
_SAR_STAGE_RULES = [  # (official part after ``layerS.``, our part after ``backbone.stages.{S-1}.``)
    (rf'base_module\.(\d+)\.downsample\.1\.{_P}', r'base.\1.shortcut.conv.\2'),
    (rf'base_module\.(\d+)\.downsample\.2\.{_P}', r'base.\1.shortcut.bn.\2'),
    (rf'base_module\.(\d+)\.(conv\d|bn\d)\.{_P}', r'base.\1.\2.\3'),
    (rf'refine_module\.(\d+)\.downsample\.0\.{_P}', r'refine.\1.shortcut.conv.\2'),
    (rf'refine_module\.(\d+)\.downsample\.1\.{_P}', r'refine.\1.shortcut.bn.\2'),
    (rf'refine_module\.(\d+)\.(conv\d|bn\d)\.{_P}', r'refine.\1.\2.\3'),
    (rf'mask_gen\.(\d+)\.conv3x3_gs\.0\.{_P}', r'masks.\1.conv.\2'),
    (rf'mask_gen\.(\d+)\.conv3x3_gs\.1\.{_P}', r'masks.\1.bn.\2'),
    (rf'mask_gen\.(\d+)\.fc_gs\.{_P}', r'masks.\1.fc.\2'),
    (rf'(base|refine)_transform\.0\.{_P}', r'\1_transform.conv.\2'),
    (rf'(base|refine)_transform\.1\.{_P}', r'\1_transform.bn.\2'),
    (rf'att_gen\.fc\.0\.{_P}', r'fuse.fc1.\1'),
    (rf'att_gen\.fc\.2\.{_P}', r'fuse.fc2.\1'),
    (rf'fusion\.0\.(conv\d|bn\d)\.{_P}', r'fusion_block.\1.\2'),
]
RULES: List[Rule] = [
    Rule(r'fc\.(weight|bias)', r'head.fc.\1'),
    Rule(rf'(conv1|bn1)\.{_P}', r'backbone.\1.\2'),
    Rule(rf'stem\.(\d+)\.{_P}', r'backbone.stem.\1.\2'),  # use_stem: Conv-BN-ReLU x 3
    *[Rule(rf'layer{s}\.{pattern}', f'backbone.stages.{s - 1}.{target}')
      for s in (1, 2, 3) for pattern, target in _SAR_STAGE_RULES],
    Rule(rf'layer4\.(\d+)\.downsample\.1\.{_P}', r'backbone.layer4.\1.shortcut.conv.\2'),
    Rule(rf'layer4\.(\d+)\.downsample\.2\.{_P}', r'backbone.layer4.\1.shortcut.bn.\2'),
    Rule(rf'layer4\.(\d+)\.(conv\d|bn\d)\.{_P}', r'backbone.layer4.\1.\2.\3'),
]

# ----------------------------------------------------------------------------------------------
# the official layouts (official_checkpoints.md, SAR table): key -> shape, written from the spec
# ----------------------------------------------------------------------------------------------
Layout = Dict[str, Tuple[int, ...]]
IMAGENET_LAYERS = {34: ('basic', (3, 4, 6, 3)), 50: ('bottleneck', (3, 4, 6, 3)),
                   101: ('bottleneck', (4, 8, 18, 3))}
CIFAR_BLOCKS = {20: 3, 32: 5, 56: 9}


def _bn(prefix: str, channels: int) -> Layout:
    out = {f'{prefix}.{name}': (channels, )
           for name in ('weight', 'bias', 'running_mean', 'running_var')}
    out[f'{prefix}.num_batches_tracked'] = ()
    return out


def _official_block(prefix: str, block: str, cin: int, cout: int, groups: int = 1) -> Layout:
    """Official ``BasicBlock(_refine)`` / ``Bottleneck(_refine)(inplanes, planes)``: planes = output."""
    if block == 'basic':
        out = {f'{prefix}.conv1.weight': (cout, cin // groups, 3, 3),
               f'{prefix}.conv2.weight': (cout, cout // groups, 3, 3)}
        return {**out, **_bn(f'{prefix}.bn1', cout), **_bn(f'{prefix}.bn2', cout)}
    mid = cout // 4
    out = {f'{prefix}.conv1.weight': (mid, cin // groups, 1, 1),
           f'{prefix}.conv2.weight': (mid, mid // groups, 3, 3),
           f'{prefix}.conv3.weight': (cout, mid // groups, 1, 1)}
    return {**out, **_bn(f'{prefix}.bn1', mid), **_bn(f'{prefix}.bn2', mid),
            **_bn(f'{prefix}.bn3', cout)}


def _official_sar_module(prefix: str, block: str, cin: int, c: int, n: int, groups: int,
                         alpha: int, beta: int, att: bool) -> Layout:
    """Official ``sarModule(in_channels=cin, out_channels=c, blocks=n)``."""
    out: Layout = {}
    cb, cr = c // alpha, int(c * beta)
    for i in range(n - 1):
        out.update(_official_block(f'{prefix}.base_module.{i}', block, cin if i == 0 else cb, cb))
        out.update(_official_block(f'{prefix}.refine_module.{i}', block, cin if i == 0 else cr, cr,
                                   groups))
        out[f'{prefix}.mask_gen.{i}.conv3x3_gs.0.weight'] = (4 * groups, cb // groups, 3, 3)
        out.update(_bn(f'{prefix}.mask_gen.{i}.conv3x3_gs.1', 4 * groups))
        out[f'{prefix}.mask_gen.{i}.fc_gs.weight'] = (2 * groups, 4, 1, 1)
        out[f'{prefix}.mask_gen.{i}.fc_gs.bias'] = (2 * groups, )
    if cin != cb:  # base shortcut: AvgPool (.0, no params), conv (.1), BN (.2)
        out[f'{prefix}.base_module.0.downsample.1.weight'] = (cb, cin, 1, 1)
        out.update(_bn(f'{prefix}.base_module.0.downsample.2', cb))
    if cin != cr:  # refine shortcut (stride 1): conv (.0), BN (.1)
        out[f'{prefix}.refine_module.0.downsample.0.weight'] = (cr, cin, 1, 1)
        out.update(_bn(f'{prefix}.refine_module.0.downsample.1', cr))
    if alpha != 1:
        out[f'{prefix}.base_transform.0.weight'] = (c, cb, 1, 1)
        out.update(_bn(f'{prefix}.base_transform.1', c))
    if beta != 1:
        out[f'{prefix}.refine_transform.0.weight'] = (c, cr, 1, 1)
        out.update(_bn(f'{prefix}.refine_transform.1', c))
    if att:
        out[f'{prefix}.att_gen.fc.0.weight'] = (c // 16, c)
        out[f'{prefix}.att_gen.fc.2.weight'] = (c, c // 16)
    out.update(_official_block(f'{prefix}.fusion.0', block, c, c))  # shortcut: AvgPool only
    return out


def official_imagenet_layout(block: str, layers: Sequence[int], groups: int = 2, alpha: int = 2,
                             beta: int = 1, att: bool = True, use_stem: bool = False,
                             classes: int = 1000) -> Layout:
    """The state dict (key -> shape) of ``sar_resnet_1attFuse`` (``att``) /
    ``sar_resnet_imgnet4stage_alphaBase`` (additive), as the spec's SAR table describes it.

    Args:
        block (str): ``'basic'`` (R34) or ``'bottleneck'`` (R50 / R101).
        layers (Sequence[int]): Blocks per stage, e.g. (3, 4, 6, 3); (4, 8, 18, 3) for R101.
        groups, alpha, beta (int): The SAR settings (``layer1`` is always built with beta 1).
        att (bool): Attention fusion (``att_gen``). use_stem (bool): The deep stem.
        classes (int): Rows of ``fc``.
    """
    e = 4 if block == 'bottleneck' else 1
    if use_stem:  # Conv-BN-ReLU x 3 at indices 0-8
        out = {'stem.0.weight': (32, 3, 3, 3), 'stem.3.weight': (32, 32, 3, 3),
               'stem.6.weight': (64, 32, 3, 3)}
        out.update({**_bn('stem.1', 32), **_bn('stem.4', 32), **_bn('stem.7', 64)})
    else:
        out = {'conv1.weight': (64, 3, 7, 7), **_bn('bn1', 64)}
    cin = 64
    for s, (c, n) in enumerate(zip((64 * e, 128 * e, 256 * e), layers[:3])):
        out.update(_official_sar_module(f'layer{s + 1}', block, cin, c, n, groups, alpha,
                                        beta if s else 1, att))
        cin = c
    for j in range(layers[3]):
        out.update(_official_block(f'layer4.{j}', block, cin if j == 0 else 512 * e, 512 * e))
    out['layer4.0.downsample.1.weight'] = (512 * e, cin, 1, 1)
    out.update(_bn('layer4.0.downsample.2', 512 * e))
    out.update({'fc.weight': (classes, 512 * e), 'fc.bias': (classes, )})
    return out


def official_cifar_layout(n: int, width: float = 1.0, groups: int = 2, alpha: int = 2,
                          beta: int = 1, classes: int = 100) -> Layout:
    """The state dict (key -> shape) of ``sar_resnet_cifar3stage_alphaBase``: additive fusion, no
    ``att_gen``, no ``layer4``; ``n`` blocks per stage (R20: 3, R32: 5, R56: 9)."""
    out = {'conv1.weight': (16, 3, 3, 3), **_bn('bn1', 16)}
    cin = 16
    for s, c in enumerate(int(round(c * width)) for c in (16, 32, 64)):
        out.update(_official_sar_module(f'layer{s + 1}', 'basic', cin, c, n, groups, alpha, beta,
                                        att=False))
        cin = c
    out.update({'fc.weight': (classes, cin), 'fc.bias': (classes, )})
    return out


def official_layout(settings: Dict[str, Any]) -> Layout:
    """The spec's official layout for the settings of :func:`read_settings`."""
    if settings['family'] == 'cifar':
        return official_cifar_layout(CIFAR_BLOCKS[settings['depth']], settings['width'],
                                     settings['groups'], settings['alpha'], settings['beta'],
                                     settings['num_classes'])
    block, layers = IMAGENET_LAYERS[settings['depth']]
    return official_imagenet_layout(block, layers, settings['groups'], settings['alpha'],
                                    settings['beta'], settings['fusion'] == 'att',
                                    settings['deep_stem'], settings['num_classes'])


# ----------------------------------------------------------------------------------------------
# the settings of a checkpoint
# ----------------------------------------------------------------------------------------------
def parse_hyper_set(hyper_set: Any) -> Dict[str, Any]:
    """The values of ``hyper_set`` (``str(argparse.Namespace)``, or a dict).

    Values are read with ``ast.literal_eval`` (numbers, strings, booleans); whatever is not a
    literal (e.g. a printed ``Config``) is kept as its text. Nothing is executed.
    """
    if hyper_set is None:
        return {}
    if isinstance(hyper_set, dict):
        return dict(hyper_set)
    if not isinstance(hyper_set, str):
        raise ValueError(f'hyper_set is a {type(hyper_set).__name__}, expected str(args)')
    out = {}
    for match in re.finditer(r'(?<![\w.])(\w+)=(\'[^\']*\'|"[^"]*"|[^,()\s]+)', hyper_set):
        key, text = match.group(1), match.group(2)
        if key in out:  # the top-level Namespace value comes first
            continue
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def _architecture_name(obj: Dict, hyper: Dict) -> str:
    for name in (obj.get('model'), hyper.get('arch_config'), hyper.get('arch')):
        if isinstance(name, str) and name:
            return name
    return ''


def settings_from_state(state: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """What the tensors show: family, depth, width, groups, alpha, beta, fusion, deep stem,
    classes (official key names, ``module.`` already stripped)."""
    def shape(key):
        return tuple(state[key].shape) if key in state else None

    out: Dict[str, Any] = {}
    if shape('fc.weight'):
        out['num_classes'] = shape('fc.weight')[0]
    out['deep_stem'] = 'stem.0.weight' in state
    out['fusion'] = 'att' if any('.att_gen.' in k for k in state) else 'add'
    if shape('layer1.mask_gen.0.fc_gs.weight'):
        out['groups'] = shape('layer1.mask_gen.0.fc_gs.weight')[0] // 2
    bottleneck = 'layer1.base_module.0.conv3.weight' in state
    blocks = []
    for s in (1, 2, 3):
        n = len({k.split('.')[2] for k in state if k.startswith(f'layer{s}.base_module.')})
        blocks.append(n + 1 if n else 0)
    layer4 = len({k.split('.')[1] for k in state if k.startswith('layer4.')})
    out['family'] = 'imagenet' if layer4 else 'cifar'
    if out['family'] == 'imagenet':
        layers = (*blocks, layer4)
        for depth, (block, official) in IMAGENET_LAYERS.items():
            if tuple(official) == layers and (block == 'bottleneck') == bottleneck:
                out['depth'] = depth
    else:
        for depth, n in CIFAR_BLOCKS.items():
            if blocks == [n] * 3:
                out['depth'] = depth
    fusion_in = shape('layer2.fusion.0.conv1.weight')
    last = 'conv3' if bottleneck else 'conv2'
    base_out = shape(f'layer2.base_module.0.{last}.weight')
    refine_out = shape(f'layer2.refine_module.0.{last}.weight')
    if fusion_in and base_out and refine_out:
        c = fusion_in[1]
        out['alpha'] = c // base_out[0]
        out['beta'] = refine_out[0] // c if refine_out[0] % c == 0 else refine_out[0] / c
        if out['family'] == 'cifar':
            out['width'] = shape('layer1.fusion.0.conv1.weight')[1] / 16
    return out


def read_settings(obj: Any, state: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, Any]:
    """The settings of an official SAR checkpoint.

    The architecture comes from ``model`` (the function name: ``sar_resnet{34,50,101}_1attFuse``,
    ``..._alphaBase_4stage_imgnet``, ``sar_resnet{20,32,56}[x{w}]_alphaBase_cifar``), the build
    options from ``hyper_set`` (``patch_groups``, ``alpha``, ``beta``, ``base_scale``,
    ``mask_size``, ``target_rate``), and both are checked against the tensors; what neither names is
    read from the tensors (groups, alpha, beta, depth, width, classes, deep stem, fusion).

    Args:
        obj: The official checkpoint (a dict).
        state (dict, optional): Its unwrapped state dict (default: unwrapped here).

    Returns:
        dict: ``family`` ('imagenet' / 'cifar'), ``depth``, ``width``, ``groups``, ``alpha``,
        ``beta``, ``base_scale``, ``mask_size``, ``mask_grid``, ``fusion``, ``deep_stem``,
        ``num_classes``, ``target_rate`` (None if unknown), ``model``, and ``defaulted``: the
        settings that neither the file nor its tensors give (official defaults used).

    Raises:
        ValueError: The names / hyper_set and the tensors disagree.
    """
    if not isinstance(obj, dict):
        raise ValueError(f'an official SAR checkpoint is a dict, got a {type(obj).__name__}')
    state = unwrap_state_dict(obj) if state is None else state
    hyper = parse_hyper_set(obj.get('hyper_set'))
    name = _architecture_name(obj, hyper)
    tensors = settings_from_state(state)
    named: Dict[str, Any] = {}
    lowered = name.lower()
    if lowered:
        named['family'] = 'cifar' if 'cifar' in lowered else 'imagenet'
        if 'attfuse' in lowered:
            named['fusion'] = 'att'
        elif 'alphabase' in lowered:
            named['fusion'] = 'add'
        depth = re.search(r'resnet(\d+)', lowered)
        if depth:
            named['depth'] = int(depth.group(1))
        width = re.search(r'resnet\d+x(\d+(?:_\d+)?)', lowered)
        if width:
            named['width'] = float(width.group(1).replace('_', '.'))
    for ours, theirs in (('groups', 'patch_groups'), ('alpha', 'alpha'), ('beta', 'beta'),
                         ('base_scale', 'base_scale'), ('mask_size', 'mask_size'),
                         ('deep_stem', 'use_stem'), ('num_classes', 'num_classes')):
        if theirs in hyper and isinstance(hyper[theirs], (int, float, bool)):
            named[ours] = hyper[theirs]
    conflicts = []
    for key, value in named.items():
        if key not in tensors:
            continue
        if key == 'width':
            same = abs(float(value) - float(tensors[key])) < 0.05
        elif isinstance(value, str) or isinstance(tensors[key], str):
            same = value == tensors[key]
        else:
            same = float(value) == float(tensors[key])
        if not same:
            conflicts.append(f'{key}: {value!r} by name / hyper_set, {tensors[key]!r} by the '
                             'tensors')
    if conflicts:
        raise ValueError(f'the SAR checkpoint contradicts itself ({"; ".join(conflicts)}): its '
                         'tensors are not those of the model it names')
    settings = dict(tensors, **named)
    settings.setdefault('width', 1.0)
    defaults = dict(groups=2, alpha=2, beta=1, base_scale=2,
                    mask_size=4 if settings.get('family') == 'cifar' else 7)
    defaulted = []
    for key, value in defaults.items():
        if key not in settings:
            settings[key] = value
            defaulted.append(key)
    for key in ('family', 'depth', 'num_classes'):
        if key not in settings:
            raise ValueError(f'cannot tell the {key} of this SAR checkpoint (model={name!r}, '
                             f'{len(state)} tensors): not an official SAR checkpoint?')
    if settings['family'] == 'cifar':
        settings['mask_grid'] = (settings['mask_size'], settings['mask_size'], 2)
    elif settings['fusion'] == 'att':  # sar_resnet_1attFuse: hard-coded, mask_size ignored
        settings['mask_grid'] = (14, 7, 2)
    else:
        settings['mask_grid'] = (settings['mask_size'], settings['mask_size'], 2)
    target = hyper.get('target_rate')
    settings['target_rate'] = target if isinstance(target, (int, float)) else None
    flops = hyper.get('target_flops')
    settings['target_flops'] = flops if isinstance(flops, (int, float)) else None
    settings['model'] = name or None
    settings['defaulted'] = defaulted
    return settings


def config_settings(config: str, cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    """The same settings as :func:`read_settings`, of an mmdynamic SAR classification config."""
    if not cfg_options:
        return dict(_config_settings(osp.abspath(config), osp.getmtime(config)))
    return _read_config_settings(config, cfg_options)


@functools.lru_cache(maxsize=64)
def _config_settings(path: str, mtime: float) -> Dict[str, Any]:
    return _read_config_settings(path, None)


def _read_config_settings(config: str, cfg_options: Optional[dict]) -> Dict[str, Any]:
    from mmengine.config import Config
    if not osp.isfile(config):
        raise ValueError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = cfg.model
    backbone = model.get('backbone', {})
    cifar = backbone.get('type') == 'SARResNetCifar'
    if backbone.get('type') not in ('SARResNet', 'SARResNetCifar'):
        raise ValueError(f'{config} is not a SAR classification config (backbone '
                         f'{backbone.get("type")!r})')
    head = model.get('head', {})
    out = dict(family='cifar' if cifar else 'imagenet', depth=backbone.get('depth'),
               width=float(backbone.get('width', 1.0)), groups=backbone.get('groups', 2),
               alpha=backbone.get('alpha', 2), beta=backbone.get('beta', 1),
               base_scale=2 if cifar else backbone.get('base_scale', 2),
               mask_grid=tuple(backbone.get('mask_grid', (4, 4, 2) if cifar else (14, 7, 2))),
               fusion=backbone.get('fusion', 'add' if cifar else 'att'),
               deep_stem=bool(backbone.get('deep_stem', False)),
               num_classes=head.get('num_classes'),
               target_rate=model.get('sparsity', {}).get('target'))
    if not cifar and backbone.get('stage_blocks') is not None:
        out['stage_blocks'] = tuple(backbone['stage_blocks'])
    return out


# what must agree between a checkpoint and a config (target_rate only steers training)
MATCHED = ('family', 'depth', 'width', 'groups', 'alpha', 'beta', 'base_scale', 'mask_grid',
           'fusion', 'deep_stem', 'num_classes')
# the --cfg-options that set each of them
_OPTION = dict(depth='model.backbone.depth', width='model.backbone.width',
               groups='model.backbone.groups', alpha='model.backbone.alpha',
               beta='model.backbone.beta', base_scale='model.backbone.base_scale',
               mask_grid='model.backbone.mask_grid', fusion='model.backbone.fusion',
               deep_stem='model.backbone.deep_stem', num_classes='model.head.num_classes')


def setting_differences(settings: Dict[str, Any], config: Dict[str, Any]) -> List[str]:
    """``'groups: checkpoint 4, config 2'`` for every setting of :data:`MATCHED` that differs
    (settings the checkpoint does not give, ``settings['defaulted']``, are not compared)."""
    skipped = set(settings.get('defaulted', ()))
    if 'mask_size' in skipped and not (settings['family'] == 'imagenet'
                                       and settings['fusion'] == 'att'):
        skipped.add('mask_grid')
    out = []
    for key in MATCHED:
        if key in skipped:
            continue
        mine, theirs = settings.get(key), config.get(key)
        if key == 'width':
            same = abs(float(mine) - float(theirs)) < 1e-6
        elif key == 'mask_grid':
            same = tuple(mine) == tuple(theirs)
        else:
            same = mine == theirs
        if not same:
            out.append(f'{key}: checkpoint {mine!r}, config {theirs!r}')
    if config.get('stage_blocks') is not None and settings['family'] == 'imagenet' and \
            tuple(config['stage_blocks']) != IMAGENET_LAYERS[settings['depth']][1]:
        out.append(f'stage_blocks: checkpoint {IMAGENET_LAYERS[settings["depth"]][1]}, config '
                   f'{config["stage_blocks"]}')
    return out


def describe(settings: Dict[str, Any]) -> str:
    """The settings read, in one line."""
    keys = ('model', 'family', 'depth', 'width', 'groups', 'alpha', 'beta', 'base_scale',
            'mask_grid', 'fusion', 'deep_stem', 'num_classes', 'target_rate', 'target_flops')
    text = ', '.join(f'{k}={settings.get(k)!r}' for k in keys)
    if settings.get('defaulted'):
        text += f' (not in the file, official defaults: {", ".join(settings["defaulted"])})'
    return text


def candidate_configs(config_dir: str = CONFIG_DIR, family: Optional[str] = None) -> List[str]:
    """The SAR classification configs a checkpoint may be converted for.

    Args:
        config_dir (str): Where to look.
        family (str, optional): ``'imagenet'`` (``sar-*_in1k.py``) or ``'cifar'``
            (``sar-*_cifar*.py``); None: both.
    """
    paths = set()
    for name, patterns in CONFIG_PATTERNS.items():
        if family in (None, name):
            for pattern in patterns:
                paths.update(p for p in glob.glob(osp.join(config_dir, pattern))
                             if 'demo' not in osp.basename(p))
    return sorted(paths)


def pick_config(obj: Any, state: Optional[Dict[str, torch.Tensor]] = None,
                config_dir: str = CONFIG_DIR) -> str:
    """The config under ``configs/sar`` whose model is the checkpoint's.

    Every setting of :data:`MATCHED` must agree (the base scale and the mask grid too: no tensor
    shows them, but they decide what the model computes); among equals, the config with the
    checkpoint's target rate, else the first by name.

    Args:
        obj: The official checkpoint.
        state (dict, optional): Its unwrapped state dict.
        config_dir (str): Where to look.

    Returns:
        str: The config path.

    Raises:
        ValueError: No config matches: the message gives the settings read, the closest config and
            the ``--cfg-options`` that would make it fit.
    """
    settings = read_settings(obj, state)
    scored = []
    for path in candidate_configs(config_dir, settings['family']):
        try:
            theirs = config_settings(path)
        except (ValueError, KeyError):
            continue
        diff = setting_differences(settings, theirs)
        same_target = settings['target_rate'] is not None and \
            theirs.get('target_rate') == settings['target_rate']
        scored.append((len(diff), not same_target, path, diff, theirs))
    scored.sort(key=lambda item: item[:3])
    if scored and scored[0][0] == 0:
        return scored[0][2]
    message = (f'no config under {osp.relpath(config_dir, REPO)} matches this SAR checkpoint; '
               f'settings read: {describe(settings)}.')
    if scored:
        _, _, path, diff, theirs = scored[0]
        options = ' '.join(
            f'{_OPTION[d.split(":")[0]]}={_option_value(settings[d.split(":")[0]])}'
            for d in diff if d.split(':')[0] in _OPTION)
        message += (f' The closest, {osp.relpath(path, REPO)}, differs in {"; ".join(diff)}: '
                    f'convert with --config {osp.relpath(path, REPO)}'
                    + (f' --cfg-options {options}' if options else '')
                    + ' (and evaluate with the same options).')
    raise ValueError(message)


def _option_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return '"(' + ','.join(str(v) for v in value) + ')"'
    return str(value)


def official_extras(obj: Dict, settings: Dict[str, Any]) -> Dict[str, Any]:
    """What the official file stores beyond the weights, as plain values for ``meta``."""
    def plain(value):
        if torch.is_tensor(value):
            return value.item() if value.numel() == 1 else value.tolist()
        return value

    kept = {k: plain(obj[k]) for k in ('model', 'hyper_set', 'epoch', 'best_acc1',
                                       'best_acc1_corresponding_acc5') if k in obj}
    kept['settings'] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
    return dict(sar_official=kept)


# ----------------------------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None):
    parser = converter_arg_parser(
        'Convert a checkpoint of the official SAR code (yizenghan/sarNet: sar_resnet_1attFuse,\n'
        'sar_resnet_imgnet4stage_alphaBase, sar_resnet_cifar3stage_alphaBase) into an mmdynamic\n'
        'one. Without --config, the config under configs/sar that matches the model and\n'
        'hyper_set of the checkpoint is used.')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert; returns the meta written."""
    args = parse_args(argv)
    obj = load_official(args.src)
    state = unwrap_state_dict(obj)
    settings = read_settings(obj, state)
    print(f'SAR checkpoint: {describe(settings)}')
    if args.config:
        config = args.config
        diff = setting_differences(settings, config_settings(config, args.cfg_options))
        if diff:
            raise ValueError(f'{osp.basename(args.src)} is not a checkpoint of the model of '
                             f'{config}: {"; ".join(diff)}. Nothing was written.')
    else:
        config = pick_config(obj, state)
        print(f'config: {osp.relpath(config, REPO)}')
    return convert_checkpoint(args.src, args.dst, config, RULES, METHOD,
                              cfg_options=args.cfg_options,
                              extra_meta=official_extras(obj, settings))


if __name__ == '__main__':
    run_cli(main)
