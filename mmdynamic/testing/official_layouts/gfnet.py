# Copyright (c) mmdynamic contributors. All rights reserved.
"""Files in the official GFNet layout (GFNet-Pytorch's released ``*.pth.tar``; official_checkpoints.md,
GFNet): encoders in the official names (torchvision ResNet / DenseNet, pycls RegNet-Y, gen-efficientnet
EfficientNet / MobileNetV3), ``fc`` and ``policy`` from our model, random values. Used by the
converter tests and tools/misc/check_released_layouts.py."""
import torch


def _official_layout(model, prefix='module.'):
    """Write ``model``'s weights the way the official code names them (inverse mapping)."""
    import torch
    state = model.state_dict()

    def encoder(name):
        out = {}
        for key, value in state.items():
            if key.startswith(f'{name}.backbone.'):
                out[prefix + key[len(f'{name}.backbone.'):]] = value.clone()
            elif key.startswith(f'{name}.head.'):
                out[prefix + 'fc.' + key[len(f'{name}.head.'):]] = value.clone()
        return out

    fc = {k[len('classifier.'):]: v.clone() for k, v in state.items()
          if k.startswith('classifier.')}
    policy = {}
    for key, value in state.items():
        if key.startswith('policy.state_encoder.'):
            index, rest = key[len('policy.state_encoder.'):].split('.', 1)
            policy[f'state_encoder.{int(index) - 1}.{rest}'] = value.clone()
        elif key.startswith(('policy.actor.', 'policy.critic.')):
            head, rest = key[len('policy.'):].split('.', 1)
            policy[f'{head}.0.{rest}'] = value.clone()
        elif key.startswith('policy.gru.'):
            policy[key[len('policy.'):]] = value.clone()
    thresholds = torch.rand(39, 3)
    thresholds[:, -1] = -1e8
    flops = [1.0e8, 2.1e8, 3.2e8]
    return dict(model_name='resnet18', patch_size=32, model_prime_state_dict=encoder(
        'global_encoder'), model_state_dict=encoder('local_encoder'), fc=fc, policy=policy,
        model_flops=1.0e8, policy_flops=1e6, fc_flops=1e5, flops=flops,
        anytime_classification=[50.0, 60.0, 65.0], dynamic_threshold=thresholds,
        budgeted_batch_classification=[[1e8 + 5e6 * i for i in range(39)], [60.0] * 39])


def _pycls_regnety(ours, seed=0):
    """Random weights and BN statistics for a pycls RegNet-Y in the official key layout, shaped
    as ``ours`` (mmdynamic RegNetY) needs: stem.{conv,bn}, s{i}.b{j}.{proj,bn} (first block),
    s{i}.b{j}.f.{a,a_bn,b,b_bn,se.f_ex.0/2,c,c_bn}."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    target = ours.state_dict()
    bn = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
    official = {}

    def put(name, our_name):
        like = target[our_name]
        if name.endswith('num_batches_tracked'):
            value = torch.tensor(5)
        elif name.endswith('running_var'):
            value = 0.5 + torch.rand(like.shape, generator=gen)
        elif like.dim() == 4:
            value = torch.randn(like.shape, generator=gen) * (2 / like[0].numel()) ** 0.5
        else:
            value = (name.endswith('.weight') and 1.0 or 0.0) + 0.2 * torch.randn(
                like.shape, generator=gen)
        official[name] = value

    put('stem.conv.weight', 'conv1.weight')
    for p in bn:
        put(f'stem.bn.{p}', f'bn1.{p}')
    parts = dict(a='conv1', a_bn='bn1', b='conv2', b_bn='bn2', c='conv3', c_bn='bn3')
    for i in range(1, 5):
        for j in range(len(getattr(ours, f'layer{i}'))):
            ours_prefix, pycls = f'layer{i}.{j}', f's{i}.b{j + 1}'
            if j == 0:
                put(f'{pycls}.proj.weight', f'{ours_prefix}.downsample.0.weight')
                for p in bn:
                    put(f'{pycls}.bn.{p}', f'{ours_prefix}.downsample.1.{p}')
            for short, name in parts.items():
                for p in (bn if short.endswith('bn') else ('weight', )):
                    put(f'{pycls}.f.{short}.{p}', f'{ours_prefix}.{name}.{p}')
            for k, name in (('0', 'reduce'), ('2', 'expand')):
                for p in ('weight', 'bias'):
                    put(f'{pycls}.f.se.f_ex.{k}.{p}', f'{ours_prefix}.se.{name}.{p}')
    return official


# gen-efficientnet EfficientNet (the official GF-EfficientNet encoders), written from its definition:
# B0 stages (block type, repeats, kernel, stride, expansion, channels), SE on every block (reduced to
# a quarter of the block's input channels, Swish then a sigmoid gate), ceil depth scaling, widths
# rounded to multiples of 8, symmetric padding, BN eps 1e-5, Swish.
_EFFNET_B0 = [('ds', 1, 3, 1, 1, 16), ('ir', 2, 3, 2, 6, 24), ('ir', 2, 5, 2, 6, 40),
              ('ir', 3, 3, 2, 6, 80), ('ir', 3, 5, 1, 6, 112), ('ir', 4, 5, 2, 6, 192),
              ('ir', 1, 3, 1, 6, 320)]


def _round_channels(channels, multiplier):
    channels *= multiplier
    rounded = max(8, int(channels + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * channels else rounded


class _OfficialState:
    """Random weights and BN statistics written under official key names (``state``), seeded."""

    def __init__(self, seed: int, batches_tracked: int) -> None:
        import torch
        self.gen = torch.Generator().manual_seed(seed)
        self.state = {}
        self.batches_tracked = batches_tracked

    def conv(self, name, out_c, in_c, k, bias=False):
        import torch
        self.state[f'{name}.weight'] = torch.randn(out_c, in_c, k, k, generator=self.gen) * (
            2 / (in_c * k * k)) ** 0.5
        if bias:
            self.state[f'{name}.bias'] = torch.randn(out_c, generator=self.gen) * 0.1

    def bn(self, name, c):
        import torch
        self.state[f'{name}.weight'] = 1 + 0.2 * torch.randn(c, generator=self.gen)
        self.state[f'{name}.bias'] = 0.1 * torch.randn(c, generator=self.gen)
        self.state[f'{name}.running_mean'] = 0.1 * torch.randn(c, generator=self.gen)
        self.state[f'{name}.running_var'] = 0.5 + torch.rand(c, generator=self.gen)
        self.state[f'{name}.num_batches_tracked'] = torch.tensor(self.batches_tracked)

    def classifier(self, num_classes, channels):
        import torch
        self.state['classifier.weight'] = torch.randn(num_classes, channels, generator=self.gen) * 0.05
        self.state['classifier.bias'] = torch.randn(num_classes, generator=self.gen) * 0.05


def _gen_efficientnet(width, depth, num_classes=1000, seed=0):
    """Random weights (and BN statistics) in the official key layout, and the block plan."""
    import math
    writer = _OfficialState(seed, batches_tracked=7)
    conv, bn, state = writer.conv, writer.bn, writer.state

    stem = _round_channels(32, width)
    conv('conv_stem', stem, 3, 3)
    bn('bn1', stem)
    plan, in_c = [], stem
    for s, (kind, repeats, k, stride, expand, out_c) in enumerate(_EFFNET_B0):
        out_c = _round_channels(out_c, width)
        for j in range(int(math.ceil(repeats * depth))):
            p, mid, se = f'blocks.{s}.{j}', in_c * expand, max(1, int(in_c * 0.25))
            if kind == 'ds':
                conv(f'{p}.conv_dw', mid, 1, k)
                bn(f'{p}.bn1', mid)
            else:
                conv(f'{p}.conv_pw', mid, in_c, 1)
                bn(f'{p}.bn1', mid)
                conv(f'{p}.conv_dw', mid, 1, k)
                bn(f'{p}.bn2', mid)
            conv(f'{p}.se.conv_reduce', se, mid, 1, bias=True)
            conv(f'{p}.se.conv_expand', mid, se, 1, bias=True)
            if kind == 'ds':
                conv(f'{p}.conv_pw', out_c, mid, 1)
                bn(f'{p}.bn2', out_c)
            else:
                conv(f'{p}.conv_pwl', out_c, mid, 1)
                bn(f'{p}.bn3', out_c)
            plan.append((p, kind, k, stride if j == 0 else 1, in_c, out_c))
            in_c = out_c
    head = _round_channels(1280, width)
    conv('conv_head', head, in_c, 1)
    bn('bn2', head)
    writer.classifier(num_classes, head)
    return state, plan


# gen-efficientnet MobileNetV3-Large-1.00 (the official GF-MobileNetV3 encoders) from its definition:
# (block type, kernel, stride, expanded channels, output channels, SE, activation); SE reduced to a
# quarter of the expanded channels rounded to a multiple of 8, ReLU then a hard-sigmoid gate;
# hard-swish stem (16); the last stage a 1x1 conv + BN + hard-swish (960); BN eps 1e-5; the pooled
# vector is hard-swish(conv_head(GAP(map))) with a biased 1x1 conv_head (960 -> 1280).
_MBV3_LARGE = [
    [('ds', 3, 1, 16, 16, False, 'relu')],
    [('ir', 3, 2, 64, 24, False, 'relu'), ('ir', 3, 1, 72, 24, False, 'relu')],
    [('ir', 5, 2, 72, 40, True, 'relu')] + [('ir', 5, 1, 120, 40, True, 'relu')] * 2,
    [('ir', 3, 2, 240, 80, False, 'hswish'), ('ir', 3, 1, 200, 80, False, 'hswish')]
    + [('ir', 3, 1, 184, 80, False, 'hswish')] * 2,
    [('ir', 3, 1, 480, 112, True, 'hswish'), ('ir', 3, 1, 672, 112, True, 'hswish')],
    [('ir', 5, 2, 672, 160, True, 'hswish')] + [('ir', 5, 1, 960, 160, True, 'hswish')] * 2,
]


def _gen_mobilenetv3_large(num_classes=1000, seed=0, width=1.0):
    """Random weights of gen-efficientnet's ``mobilenetv3_large_100`` (``width`` 1.25:
    ``mobilenetv3_large_125``: every width times ``width`` rounded to a multiple of 8, expansions
    kept in ratio to the scaled input, the 1280 head unscaled) and the block plan."""
    writer = _OfficialState(seed, batches_tracked=3)
    conv, bn, state = writer.conv, writer.bn, writer.state

    stem = _round_channels(16, width)
    conv('conv_stem', stem, 3, 3)
    bn('bn1', stem)
    plan, in_c, in_ref = [], stem, 16
    for s, stage in enumerate(_MBV3_LARGE):
        for j, (kind, k, stride, mid, out_c, se, act) in enumerate(stage):
            if width != 1.0:
                mid = _round_channels(in_c * mid / in_ref, 1)
                in_ref, out_c = out_c, _round_channels(out_c, width)
            else:
                in_ref = out_c
            p, reduced = f'blocks.{s}.{j}', _round_channels(mid / 4, 1)
            if kind == 'ds':
                conv(f'{p}.conv_dw', mid, 1, k)
                bn(f'{p}.bn1', mid)
                conv(f'{p}.conv_pw', out_c, mid, 1)
                bn(f'{p}.bn2', out_c)
            else:
                conv(f'{p}.conv_pw', mid, in_c, 1)
                bn(f'{p}.bn1', mid)
                conv(f'{p}.conv_dw', mid, 1, k)
                bn(f'{p}.bn2', mid)
                if se:
                    conv(f'{p}.se.conv_reduce', reduced, mid, 1, bias=True)
                    conv(f'{p}.se.conv_expand', mid, reduced, 1, bias=True)
                conv(f'{p}.conv_pwl', out_c, mid, 1)
                bn(f'{p}.bn3', out_c)
            plan.append((p, kind, k, stride, in_c, out_c, se, act))
            in_c = out_c
    last = _round_channels(960, width)
    conv('blocks.6.0.conv', last, in_c, 1)
    bn('blocks.6.0.bn1', last)
    conv('conv_head', 1280, last, 1, bias=True)
    writer.classifier(num_classes, 1280)
    return state, plan


def _official_cascade(model, num_steps=3, with_results=True):
    """A T = ``num_steps`` cascade model in the official layout: ``fc_2`` .. ``fc_5`` always (the
    heads of steps > T untrained), the ResNet encoder keys as torchvision names them."""
    import torch
    state = model.state_dict()

    def encoder(name):
        out = {}
        for key, value in state.items():
            if key.startswith(f'{name}.backbone.'):
                out['module.' + key[len(f'{name}.backbone.'):]] = value.clone()
            elif key.startswith(f'{name}.head.'):
                out['module.fc.' + key[len(f'{name}.head.'):]] = value.clone()
        return out

    feature = model.local_encoder.feature_dim
    fc = {}
    for k in range(2, 6):
        if k <= num_steps:
            fc[f'fc_{k}.weight'] = state[f'classifier.fcs.{k - 2}.weight'].clone()
            fc[f'fc_{k}.bias'] = state[f'classifier.fcs.{k - 2}.bias'].clone()
        else:
            fc[f'fc_{k}.weight'] = torch.randn(model.num_classes, k * feature)
            fc[f'fc_{k}.bias'] = torch.randn(model.num_classes)
    official = dict(model_name='resnet50', patch_size=32, model_prime_state_dict=encoder(
        'global_encoder'), model_state_dict=encoder('local_encoder'), fc=fc, policy=None)
    if with_results:
        official.update(flops=[1e8 * (t + 1) for t in range(num_steps)],
                        anytime_classification=[50.0] * num_steps)
    return official


# the released GFNet models: official model_name -> how its encoders are written
_EFFNET_SCALES = {'efficientnet_b2': (1.1, 1.2), 'efficientnet_b3': (1.2, 1.4)}


def official_encoder_state(arch, backbone, num_classes=1000, seed=0):
    """One official GFNet encoder (fG or fL, without ``module.``) of the official ``model_name``
    ``arch``, random values, in the names of the library the official code builds it with.

    Args:
        arch (str): The official ``model_name`` (``resnet50``, ``densenet121``, ``regnety_600m``,
            ``mobilenetv3_large_125``, ``efficientnet_b3``, ...).
        backbone (nn.Module): Our encoder's backbone (RegNet-Y: the shapes it needs).
        num_classes (int): Classes of the encoder's own (DSN) head.
        seed (int): Random seed.
    """
    import torchvision
    torch.manual_seed(seed)
    if arch == 'resnet50' or arch.startswith('densenet'):
        net = getattr(torchvision.models, arch)(num_classes=num_classes)
        return {k: v.clone() for k, v in net.state_dict().items()}
    if arch.startswith('regnety'):
        state = _pycls_regnety(backbone, seed)
        channels = state[max((k for k in state if k.endswith('.f.c.weight')),
                             key=lambda k: (int(k.split('.')[0][1:]),
                                            int(k.split('.')[1][1:])))].shape[0]
        state['fc.weight'] = torch.randn(num_classes, channels) * channels ** -0.5
        state['fc.bias'] = torch.zeros(num_classes)
        return state
    if arch.startswith('mobilenetv3_large_'):
        return _gen_mobilenetv3_large(num_classes, seed, width=int(arch[-3:]) / 100)[0]
    if arch in _EFFNET_SCALES:
        return _gen_efficientnet(*_EFFNET_SCALES[arch], num_classes=num_classes, seed=seed)[0]
    raise ValueError(f'no official layout for the GFNet model_name {arch!r}')


def official_gfnet_file(model, arch, patch_size, num_steps, seed=0):
    """A released GFNet ``*.pth.tar`` (the 13 keys that ``inference.py`` needs) for our ``model``
    (a GFNet built from the released config): the encoders of :func:`official_encoder_state` with
    ``module.``, ``fc`` (GRU or cascade ``fc_2`` .. ``fc_5``) and ``policy`` (conv or FC state
    encoder) from ``model`` in the official names, made-up MACs, results and thresholds."""
    state = model.state_dict()
    classes = model.num_classes
    encoders = {}
    for name, key in (('global_encoder', 'model_prime_state_dict'),
                      ('local_encoder', 'model_state_dict')):
        enc = official_encoder_state(arch, getattr(model, name).backbone, classes, seed)
        encoders[key] = {'module.' + k: v for k, v in enc.items()}
        seed += 1
    fc = {}
    for key, value in state.items():
        if key.startswith('classifier.fcs.'):
            index, rest = key[len('classifier.fcs.'):].split('.', 1)
            fc[f'fc_{int(index) + 2}.{rest}'] = value.clone()
        elif key.startswith('classifier.'):
            fc[key[len('classifier.'):]] = value.clone()
    if any(k.startswith('fc_') for k in fc):  # the official cascade always has fc_2 .. fc_5
        feature = model.local_encoder.feature_dim
        for k in range(num_steps + 1, 6):
            fc[f'fc_{k}.weight'] = torch.randn(classes, k * feature) * 0.01
            fc[f'fc_{k}.bias'] = torch.zeros(classes)
    fc_variant = 'policy.state_encoder.0.weight' not in state  # ours starts with a Flatten
    policy = {}
    for key, value in state.items():
        if key.startswith('policy.state_encoder.'):
            index, rest = key[len('policy.state_encoder.'):].split('.', 1)
            policy[f'state_encoder.{int(index) - int(fc_variant)}.{rest}'] = value.clone()
        elif key.startswith(('policy.actor.', 'policy.critic.')):
            head, rest = key[len('policy.'):].split('.', 1)
            policy[f'{head}.0.{rest}'] = value.clone()
        elif key.startswith('policy.gru.'):
            policy[key[len('policy.'):]] = value.clone()
    flops = [1e8 * (t + 1) for t in range(num_steps)]
    thresholds = torch.rand(39, num_steps)
    thresholds[:, -1] = -1e8
    return dict(model_name=arch, patch_size=patch_size, model_prime_state_dict=encoders[
        'model_prime_state_dict'], model_state_dict=encoders['model_state_dict'], fc=fc,
        policy=policy, model_flops=1e8, policy_flops=1e6, fc_flops=1e5, flops=flops,
        anytime_classification=[50.0 + t for t in range(num_steps)], dynamic_threshold=thresholds,
        budgeted_batch_classification=[[1e8 + 5e6 * i for i in range(39)], [60.0] * 39])
