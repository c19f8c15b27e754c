# Copyright (c) mmdynamic contributors. All rights reserved.
"""Helpers for tests: tiny components. Importing this module registers the toy components."""
from mmdynamic.utils.frameworks import is_framework_available

from .toy_models import DynToyBackbone

__all__ = ['DynToyBackbone']

if is_framework_available('mmpretrain'):
    from .toy_stepwise import DynToyStepwiseClassifier  # noqa: F401
    __all__.append('DynToyStepwiseClassifier')
