# Copyright (c) mmdynamic contributors. All rights reserved.
"""The shared converter core (mmdynamic/utils/official_converter.py) on a tiny model: safe reading,
unwrapping, the ordered rule table, the strict check and the atomic end-to-end conversion."""
import hashlib
import os
import os.path as osp
from collections import OrderedDict

import pytest
import torch

from mmdynamic.utils.official_converter import (CONVERTER_VERSION, Rule, RuleResult, apply_rules,
                                                check_strict, convert_checkpoint,
                                                converter_arg_parser, load_official, run_cli,
                                                unwrap_state_dict)

TINY_CONFIG = """
default_scope = 'mmpretrain'
model = dict(type='ImageClassifier', backbone=dict(type='LeNet5', num_classes=-1),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes={num_classes}, in_channels=120))
"""


class UntrustedPayload:
    """Stands for any object that only arbitrary unpickling can restore."""

    def __init__(self, value):
        self.value = value


def _official(num_classes=3, seed=0, prefix='module.'):
    """A tiny 'official' LeNet layout: conv1 packs weight and bias in one flat tensor (a split), the
    classifier is stored as a 1x1 conv (a reshape), and an auxiliary head the model lacks."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    state['conv1.packed'] = torch.randn(6 * 25 + 6, generator=gen)
    state['conv2.weight'] = torch.randn(16, 6, 5, 5, generator=gen)
    state['conv2.bias'] = torch.randn(16, generator=gen)
    state['conv3.weight'] = torch.randn(120, 16, 5, 5, generator=gen)
    state['conv3.bias'] = torch.randn(120, generator=gen)
    state['classifier.weight'] = torch.randn(num_classes, 120, 1, 1, generator=gen)
    state['classifier.bias'] = torch.randn(num_classes, generator=gen)
    state['aux_head.weight'] = torch.randn(7, 120, generator=gen)
    state['aux_head.bias'] = torch.randn(7, generator=gen)
    return OrderedDict((prefix + k, v) for k, v in state.items())


def _split_packed(key, value):
    weight, bias = value[:150], value[150:]
    return {f'{key}.weight': weight.reshape(6, 1, 5, 5), f'{key}.bias': bias}


RULES = [
    Rule(r'conv1\.packed', 'backbone.features.0', transform=_split_packed),
    Rule(r'conv(\d)\.(weight|bias)',
         lambda m: f'backbone.features.{3 * (int(m[1]) - 1)}.{m[2]}'),
    Rule(r'classifier\.weight', r'head.fc.weight',
         transform=lambda key, value: {key: value.flatten(1)}),
    Rule(r'classifier\.(.*)', r'head.fc.\1'),
    Rule(r'aux_head\..*', None, note='the auxiliary head is used in training only'),
]


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / 'tiny.py'
    path.write_text(TINY_CONFIG.format(num_classes=3))
    return str(path)


# ----------------------------------------------------------------------------------------------
def test_load_official_refuses_unsafe_truncated_and_missing_files(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=_official(), epoch=3, arch='lenet'), good)
    assert load_official(good)['epoch'] == 3
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save(dict(state_dict=_official(), args=UntrustedPayload(1)), unsafe)
    with pytest.raises(ValueError, match=r'weights_only=True.*UntrustedPayload.*arbitrary code') \
            as err:
        load_official(unsafe)
    assert 're-save' in str(err.value) and 'trusted environment' in str(err.value)
    truncated = str(tmp_path / 'truncated.pth')
    with open(good, 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match='truncated or not a torch checkpoint'):
        load_official(truncated)
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='truncated or not a torch checkpoint'):
        load_official(str(text))
    with pytest.raises(ValueError, match='not found'):
        load_official(str(tmp_path / 'missing.pth'))


def test_unwrap_containers_and_prefixes():
    plain = _official(prefix='')
    for container in ('state_dict', 'model_state', 'model'):
        state = unwrap_state_dict({container: _official(), 'epoch': 1})
        assert list(state) == list(plain)
    # SAR keeps the architecture name under 'model': the string is not the container
    state = unwrap_state_dict(dict(model='sar_resnet', state_dict=_official()))
    assert list(state) == list(plain)
    assert list(unwrap_state_dict(_official(prefix='model.'))) == list(plain)
    assert list(unwrap_state_dict(_official(prefix='module.model.'))) == list(plain)
    # a prefix only some keys carry is kept
    mixed = _official(prefix='')
    mixed['module.extra'] = torch.zeros(1)
    assert 'module.extra' in unwrap_state_dict(mixed)
    with pytest.raises(ValueError, match=r'not tensors \(epoch\)'):
        unwrap_state_dict(dict(_official(), epoch=3))
    with pytest.raises(ValueError, match='not a dict'):
        unwrap_state_dict([torch.zeros(1)])
    with pytest.raises(ValueError, match='empty'):
        unwrap_state_dict(dict(state_dict={}))


def test_apply_rules_order_drops_transforms_and_collisions():
    state = _official(prefix='')
    state['stray.weight'] = torch.zeros(2)
    result = apply_rules(state, RULES)
    assert isinstance(result, RuleResult)
    assert result.unmatched == ['stray.weight']
    assert result.dropped == {'aux_head.weight': 'the auxiliary head is used in training only',
                              'aux_head.bias': 'the auxiliary head is used in training only'}
    out = result.state_dict
    assert out['backbone.features.0.weight'].shape == (6, 1, 5, 5)
    assert torch.equal(out['backbone.features.0.bias'], state['conv1.packed'][150:])
    assert torch.equal(out['backbone.features.6.weight'], state['conv3.weight'])
    # the first matching rule wins: classifier.weight is reshaped, classifier.bias renamed
    assert out['head.fc.weight'].shape == (3, 120)
    assert torch.equal(out['head.fc.bias'], state['classifier.bias'])
    assert result.sources['backbone.features.0.weight'] == 'conv1.packed'
    assert result.sources['backbone.features.0.bias'] == 'conv1.packed'
    assert result.sources['head.fc.weight'] == 'classifier.weight'
    assert set(result.sources) == set(out)
    # order matters: a general rule first shadows the reshape
    general_first = apply_rules({'classifier.weight': state['classifier.weight']},
                                [Rule(r'classifier\.(.*)', r'head.fc.\1'), RULES[2]])
    assert general_first.state_dict['head.fc.weight'].dim() == 4
    with pytest.raises(ValueError, match="'conv2.weight' and 'conv3.weight' both map to 'x'"):
        apply_rules(state, [Rule(r'conv[23]\.weight', 'x')])


def test_check_strict_lists_what_differs():
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(type='LeNet5', num_classes=3))
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    check_strict(state, model)
    del state['features.0.bias']
    state['extra.weight'] = torch.zeros(1)
    state['classifier.2.weight'] = torch.zeros(5, 84)
    with pytest.raises(ValueError) as err:
        check_strict(state, model, what='lenet.pth')
    message = str(err.value)
    assert message.startswith('lenet.pth does not fit the model LeNet5')
    assert '1 weights of the model are missing from it (features.0.bias)' in message
    assert '1 of its weights are not in the model (extra.weight)' in message
    assert 'classifier.2.weight: (5, 84) vs (3, 84)' in message
    many = {f'k{i}': torch.zeros(1) for i in range(20)}
    with pytest.raises(ValueError, match=r'20 of its weights .*\(12 more\)'):
        check_strict(dict(model.state_dict(), **many), model)


def test_convert_checkpoint_end_to_end_and_atomic(tmp_path, tiny_config, capsys):
    from mmdynamic.utils.official_converter import build_model_from_config
    src, dst = str(tmp_path / 'official.pth.tar'), str(tmp_path / 'out' / 'converted.pth')
    official = _official()
    torch.save(dict(state_dict=official, best_acc1=71.5, arch='lenet'), src)
    meta = convert_checkpoint(src, dst, tiny_config, RULES, 'TinyNet',
                              extra_meta=dict(best_acc1=71.5))
    printed = capsys.readouterr().out
    assert 'TinyNet: 8 tensors of official.pth.tar converted' in printed
    assert 'dropped 2 keys (aux_head.weight, aux_head.bias): the auxiliary head' in printed
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved) == {'state_dict', 'meta'} and saved['meta'] == meta
    with open(src, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert meta['source'] == 'official.pth.tar' and meta['source_sha256'] == digest
    assert meta['config'] == tiny_config and meta['method'] == 'TinyNet'
    assert meta['converter_version'] == CONVERTER_VERSION and meta['best_acc1'] == 71.5
    assert set(meta['dropped']) == {'aux_head.weight', 'aux_head.bias'}
    model = build_model_from_config(tiny_config)
    model.load_state_dict(saved['state_dict'], strict=True)
    assert torch.equal(model.head.fc.weight, official['module.classifier.weight'].flatten(1))
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = torch.nn.functional.conv2d(
            x, official['module.conv1.packed'][:150].reshape(6, 1, 5, 5),
            official['module.conv1.packed'][150:])
        assert torch.allclose(model.backbone.features[0](x), expected, atol=1e-6)
        assert model(x, mode='tensor').shape == (2, 3)
    # the prepare hook sees the whole object and the unwrapped state
    seen = {}

    def prepare(obj, state):
        seen.update(arch=obj['arch'], keys=len(state))
        return state

    convert_checkpoint(src, dst, tiny_config, RULES, 'TinyNet', prepare=prepare)
    assert seen == dict(arch='lenet', keys=9)

    # refusals write nothing: an existing dst stays as it was, no temporary file is left
    with open(dst, 'rb') as f:
        before = f.read()
    other = str(tmp_path / 'other_classes.pth')
    torch.save(dict(state_dict=_official(num_classes=5)), other)
    with pytest.raises(ValueError, match=r'head.fc.weight: \(5, 120\) vs \(3, 120\)'):
        convert_checkpoint(other, dst, tiny_config, RULES, 'TinyNet')
    stray = dict(_official(prefix=''), **{'layer9.weight': torch.zeros(1)})
    torch.save(stray, other)
    with pytest.raises(ValueError, match=r'1 keys of other_classes.pth match no rule .*layer9'):
        convert_checkpoint(other, dst, tiny_config, RULES, 'TinyNet')
    with open(dst, 'rb') as f:
        assert f.read() == before
    assert os.listdir(osp.dirname(dst)) == ['converted.pth']
    fresh = str(tmp_path / 'fresh.pth')
    with pytest.raises(ValueError):
        convert_checkpoint(other, fresh, tiny_config, RULES, 'TinyNet')
    assert not osp.exists(fresh)
    with pytest.raises(ValueError, match='official file itself'):
        convert_checkpoint(src, src, tiny_config, RULES, 'TinyNet')


def test_converter_arg_parser_and_cli_errors(capsys):
    parser = converter_arg_parser('Convert a tiny checkpoint')
    args = parser.parse_args(['a.pth', 'b.pth', '--cfg-options', 'model.head.num_classes=5'])
    assert (args.src, args.dst, args.config) == ('a.pth', 'b.pth', None)
    assert args.cfg_options == {'model.head.num_classes': 5}
    args = parser.parse_args(['a.pth', 'b.pth', '--config', 'c.py'])
    assert args.config == 'c.py' and args.cfg_options is None

    def main(argv=None):
        raise ValueError('the file is of another method')

    with pytest.raises(SystemExit) as err:
        run_cli(main, [])
    assert err.value.code == 1
    assert 'error: the file is of another method' in capsys.readouterr().err
