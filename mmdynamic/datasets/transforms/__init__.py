# Copyright (c) mmdynamic contributors. All rights reserved.
"""Data transforms (registered in mmdynamic's TRANSFORMS and MMEngine's root)."""
from .video_transforms import SampleGlanceAndFocusFrames

__all__ = ['SampleGlanceAndFocusFrames']
