# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmdynamic: spatially and temporally adaptive vision networks for OpenMMLab 2.x.

Importing the package applies the compatibility fixes of :mod:`mmdynamic.utils.compat`. Add
``custom_imports=dict(imports=['mmdynamic.models'], allow_failed_imports=False)`` to a config of
mmpretrain, mmdet, mmseg or mmaction2 to use mmdynamic's components by their plain type names.
"""
from .utils.compat import apply_runtime_patches
from .version import __version__, version_info

apply_runtime_patches()

__all__ = ['__version__', 'version_info']
