# Copyright (c) mmdynamic contributors. All rights reserved.
"""Models of mmdynamic, plus (on import) its hooks, loops, metrics and transforms.

``custom_imports=dict(imports=['mmdynamic.models'])`` in any framework's config registers everything
mmdynamic has, under plain type names. Parts that need a framework are imported only when that framework
is installed; otherwise their type names are registered as placeholders whose construction raises an
error naming the missing package.
"""
from mmdynamic.utils.frameworks import is_framework_available

# Framework adapters: {framework import name: [(submodule, [type names it registers])]}.
FRAMEWORK_MODULES = {
    'mmpretrain': [('mmdynamic.models.cls', ['SARImageClassifier']),
                   ('mmdynamic.models.cls.gfnet', ['GFNet']),
                   ('mmdynamic.models.cls.mgnet', ['MGNet'])],
    'mmdet': [('mmdynamic.models.det', ['SARFasterRCNN', 'SARRetinaNet'])],
    'mmseg': [('mmdynamic.models.seg', ['SAREncoderDecoder'])],
    'mmaction': [('mmdynamic.models.action',
                  ['UniAdaFocus', 'UniAdaFocusTSM', 'UniAdaFocusX3D', 'AdaFocusV2',
                   'AdaFocusV2TSM'])],
}


def _import_framework_modules() -> None:
    import importlib

    from mmdynamic.registry import MODELS
    from mmdynamic.utils.frameworks import register_unavailable
    for framework, modules in FRAMEWORK_MODULES.items():
        for module, type_names in modules:
            if is_framework_available(framework):
                importlib.import_module(module)
            else:
                for name in type_names:
                    register_unavailable(MODELS, name, framework)


_import_framework_modules()

from .backbones import *  # noqa: E402,F401,F403  (framework-free)

# Everything else that configs refer to by type name.
import mmdynamic.datasets  # noqa: E402,F401
import mmdynamic.engine  # noqa: E402,F401
import mmdynamic.evaluation  # noqa: E402,F401
import mmdynamic.visualization  # noqa: E402,F401

__all__ = ['FRAMEWORK_MODULES']
