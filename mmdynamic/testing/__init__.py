# Copyright (c) mmdynamic contributors. All rights reserved.
"""Helpers for tests: tiny components and inputs. Importing this module registers the toy components."""
from .toy_models import DynToyBackbone

__all__ = ['DynToyBackbone']
