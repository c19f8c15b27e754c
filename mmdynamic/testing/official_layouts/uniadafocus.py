# Copyright (c) mmdynamic contributors. All rights reserved.
"""Files in the official Uni-AdaFocus layouts (MN2+R50, TSM, X3D; official_checkpoints.md), random
values. Used by the converter tests and tools/misc/check_released_layouts.py.

The MobileNet-V2 and ResNet-50 parts are made from torchvision's models (the spec: tonylins MobileNet-V2
holds torchvision's tensors in the same order, the ResNet-50 has torchvision's names; TSM adds ``.net``
to the shifted convs); the policies, heads and the SlowFast X3D names follow the spec's tables."""
import re
from collections import OrderedDict

import torch


# our policy module -> the index in the official nn.Sequential (the spec's tables)
SPATIAL = {'convs.0.conv': 0, 'convs.0.bn': 1, 'convs.1.conv': 3, 'convs.1.bn': 4, 'convs.2.conv': 6,
           'convs.2.bn': 7, 'out': 9}
TEMPORAL = {'convs.0.conv': 0, 'convs.0.bn': 1, 'convs.1.conv': 3, 'convs.1.bn': 4, 'out': 6}


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
    import torchvision
    net = torchvision.models.mobilenet_v2().features
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
    import torchvision
    net = torchvision.models.resnet50()
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


def mn2r50_official(ours):
    """The official MN2+R50 layout (``main.py`` of the ActivityNet / FCVID / Mini-K model) shaped as
    ``ours`` (our model's state dict: its classes and T_G = T_L heads), random values.

    Returns:
        dict: ``state`` (official keys, no ``module.``), ``mn2`` and ``r50`` (the torchvision state
        and module each encoder came from).
    """
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
    steps = sum(1 for k in ours if re.fullmatch(r'fusion_head\.glance_heads\.\d+\.weight', k))
    for k in range(steps):
        heads[f'classifier.global_classifiers.{k}.1.'] = f'fusion_head.glance_heads.{k}.'
        heads[f'classifier.local_classifiers.{k}.1.'] = f'fusion_head.focus_heads.{k}.'
    official.update(policies_and_heads(ours, heads))
    return dict(state=official, mn2=(mn2_tv, mn2_net), r50=(r50_tv, r50_net))


def tsm_official(ours):
    """The official Uni-AdaFocus-TSM layout (MobileNet-V2 + ResNet-50 under ``base_model``, TSM
    ``.net`` convs) shaped as ``ours`` (its classes), random values.

    Returns:
        dict: ``state`` (official keys, no ``module.``) and ``shifted`` (the MobileNet-V2 blocks
        whose first conv is shifted).
    """
    mn2, _, mn2_net = torchvision_mobilenet_v2('global_CNN.base_model.', tsm=True)
    r50, _, _ = torchvision_resnet50('local_CNN.base_model.', tsm=True, with_fc=False)
    official = OrderedDict(mn2)
    official.update(r50)
    heads = {'global_CNN.new_fc.': 'fc_global.1.', 'global_CNN.new_new_fc.': 'fc_global_frame.1.',
             'local_CNN.new_fc.': 'fc_local.1.', 'local_CNN.new_new_fc.': 'fc_local_frame.1.',
             'aux_fc.': 'fc_aux.'}
    official.update(policies_and_heads(ours, heads))
    shifted = [b for b in range(1, 18) if mn2_net[b].use_res_connect]
    return dict(state=official, shifted=shifted)
