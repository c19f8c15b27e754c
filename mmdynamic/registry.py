# Copyright (c) mmdynamic contributors. All rights reserved.
"""Registries of mmdynamic.

Every registry here is a child of the MMEngine root registry with the scope ``mmdynamic``, so
``type='mmdynamic.SARResNet'`` works from any scope. Classes are registered with
:func:`register_dual`, which also puts them into the MMEngine *root* registry: a plain
``type='SARResNet'`` then resolves from the mmpretrain, mmdet, mmseg and mmaction scopes alike,
because an unprefixed lookup walks from the current scope's registry up to the root
(see ``../shared/specs/openmmlab.md`` §1). Names must therefore be unique across OpenMMLab: a plain
name that an upstream registry already owns would be shadowed by the upstream class, and
:func:`register_dual` refuses it.
"""
from typing import Callable, Optional, Type

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

SCOPE = 'mmdynamic'

#: Models: backbones, classifiers, recognizers, wrappers, heads, losses.
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['mmdynamic.models'])
#: Model wrappers (DDP variants).
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope=SCOPE, locations=['mmdynamic.models'])
#: Hooks: schedules of temperatures and targets, budget evaluation, visualisation.
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope=SCOPE, locations=['mmdynamic.engine'])
#: Loops: e.g. the PPO policy loop of GFNet.
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope=SCOPE, locations=['mmdynamic.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE, locations=['mmdynamic.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope=SCOPE,
    locations=['mmdynamic.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope=SCOPE,
    locations=['mmdynamic.engine'])
#: Metrics: anytime and budgeted accuracy, video mAP.
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope=SCOPE, locations=['mmdynamic.evaluation'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, scope=SCOPE, locations=['mmdynamic.evaluation'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope=SCOPE, locations=['mmdynamic.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE, locations=['mmdynamic.datasets'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, scope=SCOPE, locations=['mmdynamic.models'])
VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, scope=SCOPE, locations=['mmdynamic.visualization'])


def register_dual(registry: Registry, name: Optional[str] = None) -> Callable[[Type], Type]:
    """Register a class into an mmdynamic registry and into its MMEngine root parent.

    Args:
        registry (Registry): One of the registries of this module.
        name (str, optional): Registered name. Defaults to the class name.

    Returns:
        Callable: A class decorator.

    Raises:
        KeyError: If the name is already taken in the root registry or in a child registry of
            another scope (an upstream class of the same name would shadow ours there).
    """
    if registry.scope != SCOPE or registry.parent is None:
        raise ValueError(f'register_dual expects an mmdynamic registry, got {registry!r}')

    def _register(cls: Type) -> Type:
        key = name or cls.__name__
        root = registry.parent
        for scope, child in root.children.items():
            if scope != SCOPE and key in child.module_dict:
                raise KeyError(f'{key!r} is already registered in the {scope}::{root.name} '
                               'registry; mmdynamic names must not shadow upstream names.')
        registry.register_module(name=key, module=cls)
        root.register_module(name=key, module=cls)
        return cls

    return _register
