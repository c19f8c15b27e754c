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
EfficientNet names go to mmpretrain's EfficientNet (blocks in order, conv_head/bn2 = its last layer)); ``fc.rnn``/``fc.fc`` -> ``classifier.rnn``/``classifier.fc``; ``fc.fc_k`` ->
``classifier.fcs.{k-2}``; ``policy.state_encoder``/``gru``/``actor.0``/``critic.0`` -> ``policy.*``.
The stored thresholds become mmdynamic exit policies in ``meta['exit_policies']`` (one per operating
point, model 'GFNet', fitted on 'train' as in the official eval_mode 2), and the stored results and
costs are kept in ``meta['gfnet_official']``.

Example:
    python tools/model_converters/gfnet_official_to_mmdynamic.py \
        resnet50_patch_size_96_T_5.pth.tar gfnet_r50_p96_t5.pth
"""
import argparse
import math
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import torch

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
    """Remove one leading ``module.`` (nn.DataParallel) from every key, where present."""
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state.items())


def convert_encoder(state: Dict[str, torch.Tensor], prefix: str, arch: str) -> Dict:
    family = re.match(r'[a-z]+', arch).group(0)
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


def convert_classifier(state: Dict[str, torch.Tensor]) -> Dict:
    out = OrderedDict()
    for key, value in strip_module(state).items():
        cascade = re.match(r'fc_(\d+)\.(.*)', key)
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


def convert(official: Dict, arch: Optional[str] = None) -> Dict:
    """Official checkpoint dict -> ``dict(state_dict=..., meta=...)``."""
    arch = arch or official.get('model_name')
    if arch is None:
        raise ValueError('the checkpoint has no model_name: pass --arch (e.g. resnet50)')
    for key in ('model_prime_state_dict', 'model_state_dict', 'fc'):
        if key not in official:
            raise KeyError(f'not an official GFNet checkpoint: {key!r} is missing')
    state = OrderedDict()
    state.update(convert_encoder(official['model_prime_state_dict'], 'global_encoder', arch))
    state.update(convert_encoder(official['model_state_dict'], 'local_encoder', arch))
    state.update(convert_classifier(official['fc']))
    if official.get('policy') is not None:
        state.update(convert_policy(official['policy']))
    kept = {k: official[k] for k in ('model_name', 'patch_size', 'model_flops', 'policy_flops',
                                     'fc_flops', 'flops', 'anytime_classification',
                                     'budgeted_batch_classification', 'epoch', 'best_acc')
            if k in official}
    kept = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in kept.items()}
    meta = dict(gfnet_official=kept)
    policies = exit_policies(official)
    if policies:
        meta['exit_policies'] = policies
    return dict(state_dict=state, meta=meta)


def main() -> None:
    parser = argparse.ArgumentParser(description='Convert an official GFNet checkpoint')
    parser.add_argument('src', help='official checkpoint (.pth.tar)')
    parser.add_argument('dst', help='output mmdynamic checkpoint (.pth)')
    parser.add_argument('--arch', help='model_name when the checkpoint lacks it (train.py)')
    args = parser.parse_args()
    official = torch.load(args.src, map_location='cpu', weights_only=False)  # trusted file
    out = convert(official, args.arch)
    torch.save(out, args.dst)
    print(f'converted {len(out["state_dict"])} tensors, '
          f'{len(out["meta"].get("exit_policies", []))} exit policies -> {args.dst}')


if __name__ == '__main__':
    main()
