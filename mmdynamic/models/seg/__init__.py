# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmseg segmentors (imported only when mmseg is installed)."""
from .sar_segmentor import SAREncoderDecoder

__all__ = ['SAREncoderDecoder']
