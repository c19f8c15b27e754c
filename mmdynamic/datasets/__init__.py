# Copyright (c) mmdynamic contributors. All rights reserved.
from .demo_data import (TASKS, CanvasConfig, class_names, make_classification, make_demo_data,
                        make_detection, make_segmentation, make_video, seg_palette)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'TASKS', 'CanvasConfig', 'class_names', 'make_classification', 'make_demo_data',
    'make_detection', 'make_segmentation', 'make_video', 'seg_palette'
]
