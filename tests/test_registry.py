# Copyright (c) mmdynamic contributors. All rights reserved.
"""Plain, prefixed and dotted type names of mmdynamic resolve from every framework's scope."""
import importlib

import pytest
from mmengine.registry import DefaultScope, Registry

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401
from mmdynamic import registry as dyn_registry
from mmdynamic.registry import MODELS, register_dual

SCOPES = {
    'mmpretrain': 'mmpretrain.registry',
    'mmdet': 'mmdet.registry',
    'mmseg': 'mmseg.registry',
    'mmaction': 'mmaction.registry',
}
TOY = dict(base_channels=4, num_stages=2, out_indices=(1, ))


@pytest.fixture(params=sorted(SCOPES))
def scope_models(request):
    """The framework's MODELS registry, with its scope as the default scope."""
    module = importlib.import_module(SCOPES[request.param])
    name = f'test_registry_{request.param}'
    with DefaultScope.overwrite_default_scope(request.param) if DefaultScope.check_instance_created(
            name) else _scope(name, request.param):
        yield module.MODELS


class _scope:

    def __init__(self, name, scope):
        self.name, self.scope = name, scope

    def __enter__(self):
        DefaultScope.get_instance(self.name, scope_name=self.scope)
        return self

    def __exit__(self, *exc):
        DefaultScope._instance_dict.pop(self.name, None)


@pytest.mark.parametrize('type_name', [
    'DynToyBackbone', 'mmdynamic.DynToyBackbone', 'mmdynamic.testing.toy_models.DynToyBackbone'
])
def test_build_by_name_in_every_scope(scope_models, type_name):
    model = scope_models.build(dict(type=type_name, **TOY))
    assert type(model).__name__ == 'DynToyBackbone'


def test_nested_upstream_build_finds_plain_name(scope_models):
    """A framework model whose backbone is ours, by plain name (the downstream use)."""
    scope = DefaultScope.get_current_instance().scope_name
    cfgs = {
        'mmpretrain': dict(type='ImageClassifier', backbone=dict(type='DynToyBackbone', **TOY),
                           neck=dict(type='GlobalAveragePooling'),
                           head=dict(type='LinearClsHead', num_classes=3, in_channels=8)),
        'mmdet': dict(type='RPN', backbone=dict(type='DynToyBackbone', **TOY),
                      neck=dict(type='FPN', in_channels=[8], out_channels=8, num_outs=1),
                      rpn_head=dict(type='RPNHead', in_channels=8, feat_channels=8,
                                    anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                                          ratios=[1.0], strides=[4]),
                                    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                                    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
                                    loss_bbox=dict(type='L1Loss')),
                      train_cfg=None,
                      test_cfg=dict(rpn=dict(nms_pre=10, max_per_img=5,
                                             nms=dict(type='nms', iou_threshold=0.7)))),
        'mmseg': dict(type='EncoderDecoder', backbone=dict(type='DynToyBackbone', **TOY),
                      decode_head=dict(type='FCNHead', in_channels=8, channels=8, num_convs=1,
                                       num_classes=3, in_index=0)),
        'mmaction': dict(type='Recognizer2D', backbone=dict(type='DynToyBackbone', **TOY),
                         cls_head=dict(type='TSNHead', num_classes=3, in_channels=8)),
    }
    model = scope_models.build(cfgs[scope])
    assert type(model.backbone).__name__ == 'DynToyBackbone'


def test_no_name_shadows_an_upstream_name():
    """Every mmdynamic name is absent from all upstream registries (all four frameworks loaded)."""
    for pkg in ('mmpretrain', 'mmdet', 'mmseg', 'mmaction'):
        importlib.import_module(f'{pkg}.utils').register_all_modules(init_default_scope=False)
    ours = [
        v for v in vars(dyn_registry).values()
        if isinstance(v, Registry) and v.scope == dyn_registry.SCOPE
    ]
    clashes = []
    for child in ours:
        for scope, sibling in child.parent.children.items():
            if scope == 'mmdynamic':
                continue
            clashes += [f'{scope}::{child.name}.{n}' for n in child.module_dict
                        if n in sibling.module_dict]
        # upstream classes registered straight into the root would also clash
        clashes += [f'mmengine::{child.name}.{n}' for n in child.module_dict
                    if child.parent.module_dict.get(n) is not child.module_dict[n]]
    assert not clashes, clashes


def test_register_dual_refuses_upstream_and_duplicate_names():
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS  # noqa: F401
    import mmpretrain.models  # noqa: F401
    with pytest.raises(KeyError, match='must not shadow upstream'):
        register_dual(MODELS)(type('ResNet', (), {}))
    with pytest.raises(KeyError):
        register_dual(MODELS)(type('DynToyBackbone', (), {}))
    with pytest.raises(ValueError, match='expects an mmdynamic registry'):
        register_dual(Registry('x'))
