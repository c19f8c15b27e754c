# Copyright (c) mmdynamic contributors. All rights reserved.
"""Files in the official AdaFocusV2 layouts (official_checkpoints.md): names and shapes from the spec,
random values. Used by the converter tests and tools/misc/check_released_layouts.py.

The encoders come from torchvision's modules (built on the meta device: names and shapes only), renamed
as the official code names them (tonylins MobileNet-V2 ``conv.{0,1,3,4,6,7}``, TSM ``.net.``); the
policies and classifiers from the spec's shapes."""
import re
from collections import OrderedDict
from typing import Dict, Tuple

import torch
import torch.nn as nn


Shapes = Dict[str, Tuple[int, ...]]


def _shapes(module: nn.Module) -> Shapes:
    return OrderedDict((k, tuple(v.shape)) for k, v in module.state_dict().items())


def tonylins_mobilenet_v2(tsm: bool = False) -> Shapes:
    """The official MobileNet-V2 ``features.*`` (tonylins layout): torchvision's tensors in the same
    order, block parts ``conv.{0,1,3,4,6,7}`` (``conv.{0,1,3,4}`` for block 1); with TSM, the first
    conv of every residual block is wrapped (``conv.0.net.weight``)."""
    import torchvision
    with torch.device('meta'):
        features = torchvision.models.mobilenet_v2().features
    out = OrderedDict()
    for key, shape in _shapes(features).items():
        block = int(key.split('.')[0])
        if 1 <= block <= 17:
            parts = {'conv.0.0': 'conv.0', 'conv.0.1': 'conv.1'}
            parts.update({'conv.1': 'conv.3', 'conv.2': 'conv.4'} if block == 1 else
                         {'conv.1.0': 'conv.3', 'conv.1.1': 'conv.4', 'conv.2': 'conv.6',
                          'conv.3': 'conv.7'})
            rest = key.split('.', 1)[1]
            part, param = rest.rsplit('.', 1)
            part = parts[part]
            if tsm and features[block].use_res_connect and part == 'conv.0':
                part = 'conv.0.net'
            key = f'{block}.{part}.{param}'
        out[key] = shape
    return out


def torchvision_resnet50(tsm: bool = False) -> Shapes:
    """torchvision's ResNet-50 (with ``fc``); TSM: every bottleneck's ``conv1`` is ``conv1.net``
    and there is no ``fc`` (a Dropout in the official TSN)."""
    import torchvision
    with torch.device('meta'):
        shapes = _shapes(torchvision.models.resnet50())
    if not tsm:
        return shapes
    return OrderedDict((re.sub(r'^(layer\d\.\d+\.conv1)\.', r'\1.net.', k), v)
                       for k, v in shapes.items() if not k.startswith('fc.'))


def _bn(name: str, channels: int) -> Shapes:
    return OrderedDict((f'{name}.{p}', (channels, )) for p in
                       ('weight', 'bias', 'running_mean', 'running_var')) | {
        f'{name}.num_batches_tracked': ()}


def _linear(name: str, out_ch: int, in_ch: int) -> Shapes:
    return OrderedDict([(f'{name}.weight', (out_ch, in_ch)), (f'{name}.bias', (out_ch, ))])


def _prefixed(prefix: str, shapes: Shapes) -> Shapes:
    return OrderedDict((prefix + k, v) for k, v in shapes.items())


def official_v2_layout(glance: str = 'mbv2', classes: int = 200, steps: int = 16) -> Shapes:
    """The MN2 + R50 model of ``main_v2.py`` (``--glance_arch mbv2|res50``), without ``module.``."""
    out = OrderedDict()
    if glance == 'mbv2':
        out.update(_prefixed('global_CNN.features.', tonylins_mobilenet_v2()))
        out.update(_linear('global_CNN.classifier.1', 1000, 1280))
        channels, size = 1280, 7
    else:
        out.update(_prefixed('global_CNN.', torchvision_resnet50()))
        channels, size = 2048, 3
    out.update(_linear('global_CNN_fc.1', classes, channels))
    out.update(_prefixed('local_CNN.', torchvision_resnet50()))
    out.update(_linear('local_CNN_fc.1', classes, 2048))
    out['policy_stn.encoder.0.weight'] = (64, channels, 1, 1)
    out.update(_bn('policy_stn.encoder.1', 64))
    out.update(_linear('policy_stn.encoder.4', 2048, 64 * size * size))
    out.update(_bn('policy_stn.encoder.5', 2048))
    for kind, shape in (('weight_ih_l0', (6144, 2048)), ('weight_hh_l0', (6144, 2048)),
                        ('bias_ih_l0', (6144, )), ('bias_hh_l0', (6144, ))):
        out[f'policy_stn.gru.{kind}'] = shape
    out.update(_linear('policy_stn.fc.0', 2, 2048))
    out.update(_linear('classifier.mlp.layers.0', 4096, channels + 2048))
    out.update(_bn('classifier.mlp.layers.1', 4096))
    for k in range(steps):
        out.update(_linear(f'classifier.classifiers.{k}.1', classes, 4096))
    return out


def official_tsm_layout(classes: int = 174) -> Shapes:
    """The AdaFocusV2-TSM model of ``main.py`` (8 glance frames), without ``module.``."""
    out = OrderedDict()
    out.update(_prefixed('global_CNN.base_model.features.', tonylins_mobilenet_v2(tsm=True)))
    out.update(_linear('global_CNN.new_fc', classes, 1280))
    out.update(_linear('global_CNN.new_new_fc', classes, 1280))
    out.update(_prefixed('local_CNN.base_model.', torchvision_resnet50(tsm=True)))
    out.update(_linear('local_CNN.new_fc', classes, 2048))
    out.update(_linear('local_CNN.new_new_fc', classes, 2048))
    out['policy_stn.0.weight'] = (64, 8 * 1280, 1, 1)
    out.update(_bn('policy_stn.1', 64))
    out.update(_linear('policy_stn.4', 1024, 3136))
    out.update(_bn('policy_stn.5', 1024))
    out.update(_linear('policy_stn.7', 512, 1024))
    out.update(_bn('policy_stn.8', 512))
    out.update(_linear('policy_stn.10', 2, 512))
    return out


def layout(setting: str, classes: int = None) -> Shapes:
    if setting == 'tsm':
        return official_tsm_layout(classes or 174)
    return official_v2_layout(setting, classes or 200)


def empty_state(shapes: Shapes) -> Dict[str, torch.Tensor]:
    """Uninitialised tensors of the layout (names and shapes only: for the mapping checks)."""
    return OrderedDict((k, torch.empty(s, dtype=torch.long if k.endswith('num_batches_tracked')
                                       else torch.float32)) for k, s in shapes.items())


def random_state(shapes: Shapes, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random values that keep a forward finite: weights ~ N(0, 1 / fan_in), BN affine near 1 / 0,
    running statistics perturbed (so that a wrong BN mapping shows), counters random."""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, shape in shapes.items():
        name = key.rsplit('.', 1)[1]
        if name == 'num_batches_tracked':
            out[key] = torch.randint(1, 1000, (), generator=gen)
        elif name == 'running_var':
            out[key] = torch.rand(shape, generator=gen) + 0.5
        elif name in ('running_mean', 'bias') or name.startswith('bias_'):
            out[key] = torch.randn(shape, generator=gen) * 0.1
        elif len(shape) == 1:  # BN weight
            out[key] = torch.rand(shape, generator=gen) * 0.5 + 0.75
        else:
            fan_in = 1
            for d in shape[1:]:
                fan_in *= d
            out[key] = torch.randn(shape, generator=gen) * fan_in ** -0.5
    return out
