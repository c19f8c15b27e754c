# Copyright (c) mmdynamic contributors. All rights reserved.
"""Convert a checkpoint of the official GFNet code (GFNet-Pytorch) into an mmdynamic checkpoint.

Accepts both official layouts (``configs/gfnet/README.md``):

- released ``*.pth.tar`` files: ``model_prime_state_dict`` (fG) and ``model_state_dict`` (fL) with
  ``module.`` prefixes, ``fc`` (fC), ``policy`` (pi), the cost keys ``model_flops``/``policy_flops``
  /``fc_flops``/``flops``, ``anytime_classification``, ``dynamic_threshold`` [39, T] and
  ``budgeted_batch_classification``;
- ``train.py`` checkpoints: the same state dicts without prefixes, ``policy`` None in stage 1, no
  result keys.

Key mapping: encoders -> ``global_encoder`` / ``local_encoder`` (their ``fc``/``classifier`` -> the
encoder's DSN ``head``; the backbone keys are mapped per architecture: torchvision ResNet names
equal mmpretrain's, torchvision DenseNet, pycls RegNet-Y and gen-efficientnet MobileNetV3 names are renamed
(MobileNetV3's conv_head becomes the encoder's linear pre-logits layer), and gen-efficientnet
EfficientNet names go to mmpretrain's EfficientNet (blocks in order, conv_head/bn2 = its last
layer)); ``fc.rnn``/``fc.fc`` -> ``classifier.rnn``/``classifier.fc``; ``fc.fc_k`` ->
``classifier.fcs.{k-2}``; ``policy.state_encoder``/``gru``/``actor.0``/``critic.0`` -> ``policy.*``.
The stored thresholds become mmdynamic exit policies in ``meta['exit_policies']`` (one per operating
point, model 'GFNet', fitted on 'train' as in the official eval_mode 2), and the stored results and
costs are kept in ``meta['gfnet_official']``, with the number of steps T and the ``glance_head`` the
official inference uses for this architecture.

Unused heads: the official cascade classifier always has ``fc_2`` .. ``fc_5``; the heads of steps
beyond T (``fc_4``/``fc_5`` of a T = 3 model) are dropped, with a note, so that the converted state
dict loads strictly. T comes from ``--num-steps``, the ``--config`` or the checkpoint
(``len(flops)``, how the official inference gets it).

Checks against a config (``--config``): the official inference predicts step 1 with fG's own head
for RegNet-Y (and, as the cascade has no step-1 layer, for MobileNetV3 / EfficientNet) and with fC
for ResNet / DenseNet. A config whose ``model.glance_head`` (or ``num_steps``) disagrees with the
checkpoint would not give the authors' predictions: the converter refuses it
(``--allow-mismatch`` turns the refusal into a warning).

The converter runs on the shared core (``mmdynamic/utils/official_converter.py``): the official
file is read with ``torch.load(..., weights_only=True)`` (tensors and plain containers only, nothing
that unpickling could execute; a file that needs more is refused), the ``module.`` prefixes are
stripped by its unwrapping, and the output is an MMEngine checkpoint (``state_dict`` + ``meta`` with
the source file name and sha256, the config, the method, the converter version and the dropped keys),
written atomically. With ``--config`` the converted weights are also checked strictly against the
model the config builds (missing / unexpected / shape-mismatched keys are listed, nothing is written).

Example:
    python tools/model_converters/gfnet_official_to_mmdynamic.py \
        resnet50_patch_size_96_T_5.pth.tar gfnet_r50_p96_t5.pth \
        --config configs/gfnet/gfnet-r50-p96-t5_stage3_4xb64-60e_in1k.py
"""
import glob
import math
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import torch

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmdynamic.utils.official_converter import (build_model_from_config,  # noqa: E402
                                                check_strict, converter_arg_parser,
                                                load_official, official_meta, run_cli,
                                                save_checkpoint, unwrap_state_dict)

METHOD = 'GFNet'

# ``--model_arch`` names of the official code (configs.py) that have a converter here
OFFICIAL_ARCHS = ('resnet50', 'densenet121', 'densenet169', 'densenet201', 'regnety_600m',
                  'regnety_800m', 'regnety_1.6g', 'mobilenetv3_large_100', 'mobilenetv3_large_125',
                  'efficientnet_b2', 'efficientnet_b3')
# what predicts step 1 in the official inference, per architecture family
OFFICIAL_GLANCE_HEADS = {'resnet': 'classifier', 'densenet': 'classifier', 'regnety': 'encoder',
                         'mobilenetv': 'encoder', 'efficientnet': 'encoder'}
# the official cascade classifier has the heads of steps 2..5 whatever T is
CASCADE_HEAD = re.compile(r'fc_(\d+)\.(.*)')

ENCODER_HEADS = ('fc.', 'classifier.')
_DENSENET_RULES = [  # torchvision DenseNet -> mmpretrain DenseNet (4 dense blocks)
    (r'features\.conv0\.(.*)', lambda m: f'stem.0.{m[1]}'),
    (r'features\.norm0\.(.*)', lambda m: f'stem.1.{m[1]}'),
    (r'features\.denseblock(\d+)\.denselayer(\d+)\.(.*)',
     lambda m: f'stages.{int(m[1]) - 1}.block.{int(m[2]) - 1}.{m[3]}'),
    (r'features\.transition(\d+)\.(.*)', lambda m: f'transitions.{int(m[1]) - 1}.{m[2]}'),
    (r'features\.norm5\.(.*)', lambda m: f'transitions.3.0.{m[1]}'),
]


def densenet_key(key: str) -> str:
    """A torchvision DenseNet key (current names: ``norm1``, not ``norm.1``) in mmpretrain's."""
    return _rename(_DENSENET_RULES, key, 'DenseNet')


_REGNET_PARTS = {'a': 'conv1', 'a_bn': 'bn1', 'b': 'conv2', 'b_bn': 'bn2', 'c': 'conv3',
                 'c_bn': 'bn3', 'se.f_ex.0': 'se.reduce', 'se.f_ex.2': 'se.expand'}
_REGNET_RULES = [  # pycls AnyNet (RegNet-Y) -> mmdynamic RegNetY (mmpretrain RegNet names)
    (r'stem\.conv\.(.*)', lambda m: f'conv1.{m[1]}'),
    (r'stem\.bn\.(.*)', lambda m: f'bn1.{m[1]}'),
    (r's(\d+)\.b(\d+)\.proj\.(.*)', lambda m: f'layer{m[1]}.{int(m[2]) - 1}.downsample.0.{m[3]}'),
    (r's(\d+)\.b(\d+)\.bn\.(.*)', lambda m: f'layer{m[1]}.{int(m[2]) - 1}.downsample.1.{m[3]}'),
    (r's(\d+)\.b(\d+)\.f\.(a|a_bn|b|b_bn|c|c_bn|se\.f_ex\.[02])\.(weight|bias|running_mean|'
     r'running_var|num_batches_tracked)',
     lambda m: f'layer{m[1]}.{int(m[2]) - 1}.{_REGNET_PARTS[m[3]]}.{m[4]}'),
]


def _rename(rules, key: str, family: str) -> str:
    for pattern, target in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return target(match)
    raise KeyError(f'unexpected {family} key: {key}')


def regnet_key(key: str) -> str:
    """A pycls RegNet-Y key in mmdynamic's RegNetY (``stem``/``s{i}.b{j}.f.*``)."""
    return _rename(_REGNET_RULES, key, 'RegNet')


_MBV3_PARTS = {  # gen-efficientnet block part -> mmpretrain InvertedResidual part
    'conv_pw': 'expand_conv.conv', 'bn1': 'expand_conv.bn', 'conv_dw': 'depthwise_conv.conv',
    'bn2': 'depthwise_conv.bn', 'se.conv_reduce': 'se.conv1.conv',
    'se.conv_expand': 'se.conv2.conv', 'conv_pwl': 'linear_conv.conv', 'bn3': 'linear_conv.bn'}
_MBV3_DS_PARTS = {  # the first (depthwise-separable) block
    'conv_dw': 'depthwise_conv.conv', 'bn1': 'depthwise_conv.bn', 'conv_pw': 'linear_conv.conv',
    'bn2': 'linear_conv.bn', 'se.conv_reduce': 'se.conv1.conv', 'se.conv_expand': 'se.conv2.conv'}


def convert_mobilenetv3(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A gen-efficientnet MobileNetV3 encoder state (conv_stem, bn1, blocks.{s}.{j}.*, conv_head,
    classifier) as mmpretrain ``MobileNetV3`` / ``MobileNetV3Wide`` keys (layer0..layerN+1) plus
    the GFEncoder parts: ``conv_head`` (1x1 conv with bias) -> ``pre_logits.0`` (Linear),
    ``classifier`` -> ``head``. Returns keys relative to the encoder."""
    blocks = sorted({tuple(int(v) for v in k.split('.')[1:3]) for k in state
                     if k.startswith('blocks.')})
    last_stage = blocks[-1][0]
    index = {b: i + 1 for i, b in enumerate(b for b in blocks if b[0] != last_stage)}
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('conv_stem.'):
            out['backbone.layer0.conv.' + key.split('.', 1)[1]] = value
        elif key.startswith('bn1.'):
            out['backbone.layer0.bn.' + key.split('.', 1)[1]] = value
        elif key.startswith('conv_head.'):
            name = key.split('.', 1)[1]
            out[f'pre_logits.0.{name}'] = value.flatten(1) if name == 'weight' else value
        elif key.startswith('classifier.'):
            out['head.' + key.split('.', 1)[1]] = value
        elif key.startswith('blocks.'):
            _, stage, block, rest = key.split('.', 3)
            stage, block = int(stage), int(block)
            part, param = rest.rsplit('.', 1)
            if stage == last_stage:  # the final 1x1 conv + BN
                layer, target = len(index) + 1, {'conv': 'conv', 'bn1': 'bn'}[part]
            else:
                layer = index[(stage, block)]
                parts = _MBV3_DS_PARTS if (stage, block) == blocks[0] else _MBV3_PARTS
                target = parts[part]
            out[f'backbone.layer{layer}.{target}.{param}'] = value
        else:
            raise KeyError(f'unexpected MobileNetV3 key: {key}')
    return out


# gen-efficientnet EfficientNet stages (0..6: 16/24/40/80/112/192/320 channels at B0 width) -> the
# layer of mmpretrain's EfficientNet that holds their blocks (it merges 80+112 and 192+320)
_EFFNET_STAGE_LAYERS = (1, 2, 3, 4, 4, 5, 5)
_EFFNET_DS_PARTS = {  # the depthwise-separable blocks of stage 0 (SE after the depthwise conv)
    'conv_dw': 'depthwise_conv.conv', 'bn1': 'depthwise_conv.bn', 'se.conv_reduce': 'se.conv1.conv',
    'se.conv_expand': 'se.conv2.conv', 'conv_pw': 'linear_conv.conv', 'bn2': 'linear_conv.bn'}


def convert_efficientnet(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A gen-efficientnet EfficientNet encoder state (conv_stem, bn1, blocks.{s}.{j}.*, conv_head,
    bn2, classifier) as mmpretrain ``EfficientNet`` keys (layers.0 stem, layers.1-5 blocks,
    layers.6 the 1x1 head conv + BN) plus the GFEncoder's ``head`` (from ``classifier``).

    The blocks keep their order: official stage s goes to layer ``_EFFNET_STAGE_LAYERS[s]``, after
    the blocks of the official stages merged into the same layer. Numerical parity needs the
    official conv padding and BN eps in the backbone config (``conv_cfg=None``,
    ``norm_cfg=dict(type='BN', eps=1e-5)``, as ``configs/gfnet/_base_/gfnet-efficientnet.py``).
    Returns keys relative to the encoder."""
    blocks = sorted({tuple(int(v) for v in k.split('.')[1:3]) for k in state
                     if k.startswith('blocks.')})
    stages = sorted({stage for stage, _ in blocks})
    if stages != list(range(len(_EFFNET_STAGE_LAYERS))):
        raise KeyError(f'an EfficientNet has {len(_EFFNET_STAGE_LAYERS)} block stages '
                       f'(blocks.0 .. blocks.6), got stages {stages}')
    index = {}
    for layer in sorted(set(_EFFNET_STAGE_LAYERS)):
        members = [b for b in blocks if _EFFNET_STAGE_LAYERS[b[0]] == layer]
        index.update({b: (layer, i) for i, b in enumerate(members)})
    top = {'conv_stem': 'backbone.layers.0.conv', 'bn1': 'backbone.layers.0.bn',
           'conv_head': 'backbone.layers.6.conv', 'bn2': 'backbone.layers.6.bn',
           'classifier': 'head'}
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('blocks.'):
            _, stage, block, rest = key.split('.', 3)
            part, param = rest.rsplit('.', 1)
            layer, position = index[(int(stage), int(block))]
            parts = _EFFNET_DS_PARTS if int(stage) == 0 else _MBV3_PARTS
            if part not in parts:
                raise KeyError(f'unexpected EfficientNet key: {key}')
            out[f'backbone.layers.{layer}.{position}.{parts[part]}.{param}'] = value
        else:
            module, param = key.rsplit('.', 1)
            if module not in top:
                raise KeyError(f'unexpected EfficientNet key: {key}')
            out[f'{top[module]}.{param}'] = value
    return out


# backbone key mappers: official (torchvision / timm / pycls) name -> mmpretrain backbone name
BACKBONE_MAPPERS: Dict[str, Callable[[str], str]] = {
    'resnet': lambda key: key,  # torchvision ResNet names are mmpretrain's
    'densenet': densenet_key,
    'regnety': regnet_key,
}


def strip_module(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """One official sub-state dict without the ``module.`` prefix of nn.DataParallel (the core's
    :func:`unwrap_state_dict`: stripped when every key carries it; non-tensor values refused)."""
    return unwrap_state_dict(state, containers=(), prefixes=('module.', ))


def arch_family(arch: str) -> str:
    """``'regnety_600m'`` -> ``'regnety'``, ``'mobilenetv3_large_100'`` -> ``'mobilenetv'``."""
    return re.match(r'[a-z]+', arch).group(0)


def official_glance_head(arch: str) -> str:
    """The ``glance_head`` of :class:`GFNet` that reproduces the official inference of ``arch``."""
    family = arch_family(arch)
    if family not in OFFICIAL_GLANCE_HEADS:
        raise NotImplementedError(
            f'no converter for {arch!r} (supported: {", ".join(OFFICIAL_ARCHS)})')
    return OFFICIAL_GLANCE_HEADS[family]


def convert_encoder(state: Dict[str, torch.Tensor], prefix: str, arch: str) -> Dict:
    family = arch_family(arch)
    whole = {'mobilenetv': convert_mobilenetv3, 'efficientnet': convert_efficientnet}
    if family in whole:
        return OrderedDict((f'{prefix}.{k}', v)
                           for k, v in whole[family](strip_module(state)).items())
    if family not in BACKBONE_MAPPERS:
        raise NotImplementedError(
            f'no key mapping for {arch!r} encoders (supported: '
            f'{sorted(list(BACKBONE_MAPPERS) + list(whole))})')
    out = OrderedDict()
    for key, value in strip_module(state).items():
        if key.startswith(ENCODER_HEADS):
            out[f'{prefix}.head.{key.split(".", 1)[1]}'] = value
        else:
            out[f'{prefix}.backbone.{BACKBONE_MAPPERS[family](key)}'] = value
    return out


def drop_unused_heads(state: Dict[str, torch.Tensor], num_steps: Optional[int]
                      ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Remove the cascade heads ``fc_k`` of steps k > T from an official ``fc`` state dict.

    Args:
        state (dict): The official classifier state (``fc_2`` .. ``fc_5`` or ``rnn``/``fc``).
        num_steps (int, optional): T. None keeps every head.

    Returns:
        tuple: the state without the unused heads, and the names of the heads dropped.
    """
    if num_steps is None:
        return state, []
    kept, dropped = OrderedDict(), []
    for key, value in state.items():
        cascade = CASCADE_HEAD.fullmatch(key)
        if cascade and int(cascade.group(1)) > num_steps:
            name = f'fc_{cascade.group(1)}'
            if name not in dropped:
                dropped.append(name)
        else:
            kept[key] = value
    return kept, dropped


def convert_classifier(state: Dict[str, torch.Tensor]) -> Dict:
    out = OrderedDict()
    for key, value in strip_module(state).items():
        cascade = CASCADE_HEAD.fullmatch(key)
        if cascade:
            out[f'classifier.fcs.{int(cascade.group(1)) - 2}.{cascade.group(2)}'] = value
        elif key.startswith(('rnn.', 'fc.')):
            out[f'classifier.{key}'] = value
        else:
            raise KeyError(f'unexpected key in the official classifier: {key}')
    return out


def convert_policy(state: Dict[str, torch.Tensor]) -> Dict:
    state = strip_module(state)
    fc_variant = state['state_encoder.0.weight'].dim() == 2
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('state_encoder.'):
            index, rest = key[len('state_encoder.'):].split('.', 1)
            # ours starts with Flatten in the FC variant: Linear layers move up by one
            index = int(index) + 1 if fc_variant else int(index)
            out[f'policy.state_encoder.{index}.{rest}'] = value
        elif key.startswith(('actor.0.', 'critic.0.')):
            head, _, rest = key.split('.', 2)
            out[f'policy.{head}.{rest}'] = value
        elif key.startswith('gru.'):
            out[f'policy.{key}'] = value
        else:
            raise KeyError(f'unexpected key in the official policy: {key}')
    return out


def exit_policies(official: Dict) -> List[Dict]:
    """The stored thresholds as mmdynamic exit policies (empty if the checkpoint has none)."""
    thresholds = official.get('dynamic_threshold')
    flops = official.get('flops')
    if thresholds is None or flops is None:
        return []
    from mmdynamic.evaluation.functional.budget import GFNET_RATIOS, ExitPolicy
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64)
    costs = [float(f) for f in flops]
    curve = official.get('budgeted_batch_classification') or [[None] * len(thresholds)] * 2
    policies = []
    for i, row in enumerate(thresholds.tolist()):
        row = [float(t) for t in row]
        row[-1] = -math.inf  # the last exit accepts everything (official: -1e8)
        expected = curve[0][i]
        policies.append(ExitPolicy(
            thresholds=row, exit_costs=costs, confidence='max_softmax', model='GFNet',
            fit_split='train', ratio=GFNET_RATIOS[i] if i < len(GFNET_RATIOS) else float('nan'),
            expected_cost=float(expected) if expected is not None else float('nan'),
            budget=float(expected) if expected is not None else None,
            meta=dict(source='official GFNet checkpoint',
                      val_top1=curve[1][i] if curve[1][i] is not None else None)).to_dict())
    return policies


def checkpoint_num_steps(official: Dict) -> Optional[int]:
    """T as the official inference gets it (``len(flops)``), else from the stored results; None
    for a ``train.py`` checkpoint, which stores none of them."""
    if official.get('flops') is not None:
        return len(official['flops'])
    if official.get('anytime_classification') is not None:
        return len(official['anytime_classification'])
    if official.get('dynamic_threshold') is not None:
        return int(torch.as_tensor(official['dynamic_threshold']).shape[-1])
    return None


# the name of each official architecture in the config file names (configs/gfnet)
CONFIG_ARCH_NAMES = {
    'resnet50': 'r50', 'densenet121': 'densenet121', 'densenet169': 'densenet169',
    'densenet201': 'densenet201', 'regnety_600m': 'regnety-600mf', 'regnety_800m': 'regnety-800mf',
    'regnety_1.6g': 'regnety-1.6gf', 'mobilenetv3_large_100': 'mbv3-l-100',
    'mobilenetv3_large_125': 'mbv3-l-125', 'efficientnet_b2': 'effnet-b2',
    'efficientnet_b3': 'effnet-b3'}
CONFIG_DIR = osp.join(REPO, 'configs', 'gfnet')


def pick_config(obj: Dict, state: Optional[Dict] = None, arch: Optional[str] = None,
                num_steps: Optional[int] = None) -> str:
    """The stage-3 config under ``configs/gfnet`` of a released checkpoint: its ``model_name``,
    ``patch_size`` and T (``len(flops)``), e.g. ``gfnet-r50-p96-t5_stage3_4xb64-60e_in1k.py``.

    Args:
        obj (dict): The official checkpoint.
        state: Unused (the GFNet file holds several state dicts); for the common signature.
        arch (str, optional): ``--arch`` when the file has no ``model_name``.
        num_steps (int, optional): ``--num-steps`` when the file has no ``flops``.

    Raises:
        ValueError: Not enough is known, or no config has these settings.
    """
    arch = arch or obj.get('model_name')
    patch = obj.get('patch_size')
    steps = num_steps or checkpoint_num_steps(obj)
    if obj.get('policy') is None:
        raise ValueError('the checkpoint has no policy (a stage-1 train.py checkpoint): no stage-3 '
                         'config fits it')
    if arch not in CONFIG_ARCH_NAMES or patch is None or steps is None:
        raise ValueError(f'cannot pick a config: model_name={arch!r}, patch_size={patch!r}, '
                         f'T={steps!r}')
    pattern = f'gfnet-{CONFIG_ARCH_NAMES[arch]}-p{int(patch)}-t{int(steps)}_stage3_*.py'
    found = sorted(glob.glob(osp.join(CONFIG_DIR, pattern)))
    if not found:
        raise ValueError(f'no config configs/gfnet/{pattern} for model_name={arch!r}, '
                         f'patch_size={patch}, T={steps}')
    return found[0]


def check_model_config(model_cfg: Dict, arch: str, num_steps: Optional[int],
                       allow_mismatch: bool = False, notes: Optional[List[str]] = None) -> None:
    """Refuse (or, with ``allow_mismatch``, note) a GFNet model config that would not reproduce the
    official inference of the checkpoint: another ``glance_head``, another number of steps.

    Args:
        model_cfg (dict): The ``model`` of an mmdynamic config.
        arch (str): The official architecture name.
        num_steps (int, optional): T of the checkpoint (None: unknown, not checked).
        allow_mismatch (bool): Note the disagreement instead of raising.
        notes (list, optional): Where notes go.

    Raises:
        ValueError: When they disagree and ``allow_mismatch`` is False.
    """
    problems = []
    expected = official_glance_head(arch)
    glance_head = model_cfg.get('glance_head', 'classifier')
    if glance_head != expected:
        who = "fG's own head" if expected == 'encoder' else "fC (GRU + linear layer)"
        problems.append(
            f"the config sets glance_head={glance_head!r} but the official {arch} inference "
            f"predicts step 1 with {who}: set model.glance_head={expected!r} to get the authors' "
            'step-1 predictions')
    cfg_steps = model_cfg.get('num_steps', 5)
    if num_steps is not None and cfg_steps != num_steps:
        problems.append(f'the config has num_steps={cfg_steps} but the checkpoint T={num_steps}')
    for problem in problems:
        if not allow_mismatch:
            raise ValueError(f'config and checkpoint disagree: {problem} (--allow-mismatch to '
                             'convert anyway)')
        if notes is not None:
            notes.append(f'WARNING: config and checkpoint disagree: {problem}')


def convert(official: Dict, arch: Optional[str] = None, num_steps: Optional[int] = None,
            notes: Optional[List[str]] = None) -> Dict:
    """Official checkpoint dict -> ``dict(state_dict=..., meta=...)``.

    Args:
        official (dict): The loaded official checkpoint.
        arch (str, optional): The official ``model_name`` when the checkpoint lacks it.
        num_steps (int, optional): T; defaults to the checkpoint's (:func:`checkpoint_num_steps`).
            Cascade heads of later steps are dropped.
        notes (list, optional): Receives human-readable notes (dropped heads, unknown T).
    """
    notes = [] if notes is None else notes
    arch = arch or official.get('model_name')
    if arch is None:
        raise ValueError('the checkpoint has no model_name: pass --arch (one of '
                         f'{", ".join(OFFICIAL_ARCHS)})')
    for key in ('model_prime_state_dict', 'model_state_dict', 'fc'):
        if key not in official:
            raise KeyError(f'not an official GFNet checkpoint: {key!r} is missing')
    stored_steps = checkpoint_num_steps(official)
    if num_steps is not None and stored_steps is not None and num_steps != stored_steps:
        raise ValueError(f'num_steps={num_steps} but the checkpoint was evaluated with '
                         f'T={stored_steps} (len(flops))')
    num_steps = num_steps or stored_steps
    state = OrderedDict()
    state.update(convert_encoder(official['model_prime_state_dict'], 'global_encoder', arch))
    state.update(convert_encoder(official['model_state_dict'], 'local_encoder', arch))
    classifier, dropped = drop_unused_heads(strip_module(official['fc']), num_steps)
    if dropped:
        notes.append(f'dropped the unused classifier heads {", ".join(dropped)} (the official '
                     f'cascade always has fc_2..fc_5; this model has T={num_steps} steps)')
    elif num_steps is None and any(CASCADE_HEAD.fullmatch(k) for k in classifier):
        notes.append('T is unknown (no flops in the checkpoint): every cascade head is kept; pass '
                     '--num-steps or --config to drop the unused ones for a strict load')
    state.update(convert_classifier(classifier))
    dropped_keys = OrderedDict(
        (f'fc.{key}', f'the cascade head of step {CASCADE_HEAD.fullmatch(key).group(1)} > '
         f'T={num_steps} (the official cascade always has fc_2..fc_5)')
        for key in strip_module(official['fc']) if key not in classifier)
    if official.get('policy') is not None:
        state.update(convert_policy(official['policy']))
    kept = {k: official[k] for k in ('model_name', 'patch_size', 'model_flops', 'policy_flops',
                                     'fc_flops', 'flops', 'anytime_classification',
                                     'budgeted_batch_classification', 'epoch', 'best_acc')
            if k in official}
    kept = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in kept.items()}
    kept.update(num_steps=num_steps, glance_head=official_glance_head(arch))
    meta = dict(gfnet_official=kept)
    policies = exit_policies(official)
    if policies:
        meta['exit_policies'] = policies
    return dict(state_dict=state, meta=meta, dropped=dropped_keys)


def parse_args(argv: Optional[List[str]] = None):
    parser = converter_arg_parser(
        'Convert an official GFNet checkpoint (GFNet-Pytorch) into an mmdynamic one')
    parser.add_argument('--arch', choices=OFFICIAL_ARCHS, metavar='ARCH',
                        help='model_name when the checkpoint lacks it (train.py), one of: '
                        + ', '.join(OFFICIAL_ARCHS))
    parser.add_argument('--num-steps', type=int, help='T when the checkpoint lacks it (train.py): '
                        'cascade heads of later steps are dropped')
    for action in parser._actions:  # the common --config: say what is checked for GFNet
        if action.dest == 'config':
            action.help = ('the mmdynamic config the checkpoint will be used with: its '
                           'model.glance_head and num_steps are checked against the checkpoint, '
                           'and the converted weights must load strictly into its model')
    parser.add_argument('--allow-mismatch', action='store_true',
                        help='warn instead of refusing when --config disagrees with the checkpoint')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    official = load_official(args.src)
    if not isinstance(official, dict):
        raise ValueError(f'{args.src} holds a {type(official).__name__}, not an official GFNet '
                         'checkpoint (a dict)')
    arch = args.arch or official.get('model_name')
    notes: List[str] = []
    num_steps = args.num_steps
    if not args.config:
        try:
            args.config = pick_config(official, arch=arch, num_steps=num_steps)
            print(f'config: {osp.relpath(args.config, REPO)} (from model_name, patch_size, T)')
        except ValueError as why:
            notes.append(f'no config picked ({why}): the weights are not checked against a model')
    if args.config:
        from mmengine.config import Config
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        model_cfg = cfg.model
        if arch is None:
            raise ValueError('the checkpoint has no model_name: pass --arch')
        check_model_config(model_cfg, arch, num_steps or checkpoint_num_steps(official),
                           args.allow_mismatch, notes)
        if num_steps is None and checkpoint_num_steps(official) is None:
            num_steps = model_cfg.get('num_steps', 5)
    try:
        out = convert(official, arch, num_steps, notes)
    except KeyError as err:  # a key of no official GFNet layout
        raise ValueError(f'{args.src} is not an official GFNet checkpoint of {arch}: '
                         f'{err.args[0]}') from err
    state = out['state_dict']
    if args.config:
        model = build_model_from_config(args.config, args.cfg_options)
        check_strict(state, model, what=f'{osp.basename(args.src)} (converted as {METHOD})')
        model.load_state_dict(state, strict=True)
        state = model.state_dict()
    else:
        glance_head = out['meta']['gfnet_official']['glance_head']
        notes.append(f'evaluate with model.glance_head={glance_head!r} (the official inference of '
                     'this architecture); pass --config to check the weights strictly against '
                     'the model of a config')
    for note in notes:
        print(f'note: {note}')
    meta = official_meta(args.src, args.config, METHOD, out['dropped'], out['meta'])
    if args.cfg_options:
        meta['cfg_options'] = dict(args.cfg_options)
    save_checkpoint(state, meta, args.dst)
    print(f'converted {len(state)} tensors, '
          f'{len(meta.get("exit_policies", []))} exit policies -> {args.dst}')


if __name__ == '__main__':
    run_cli(main)
