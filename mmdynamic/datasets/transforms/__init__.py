# Copyright (c) mmdynamic contributors. All rights reserved.
"""Data transforms (registered in mmdynamic's TRANSFORMS and MMEngine's root)."""
from .video_transforms import (PillowResize, SampleGlanceAndFocusFrames, TSNCenterCrop,
                               TSNThreeCrop)

__all__ = ['SampleGlanceAndFocusFrames', 'PillowResize', 'TSNCenterCrop', 'TSNThreeCrop']
