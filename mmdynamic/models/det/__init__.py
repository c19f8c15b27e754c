# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmdet detectors (imported only when mmdet is installed)."""
from .sar_detectors import SARFasterRCNN, SARRetinaNet

__all__ = ['SARFasterRCNN', 'SARRetinaNet']
