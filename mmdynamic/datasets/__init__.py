# Copyright (c) mmdynamic contributors. All rights reserved.
from .demo_data import (TASKS, CanvasConfig, DemoBoxes, class_names, demo_batches,
                        make_classification, make_demo_data, make_detection, make_segmentation,
                        make_video, seg_palette, write_classification_set, write_video_set)
from .demo_data_alt import (ALT_TASKS, AltCanvasConfig, make_alt_classification,
                            make_alt_demo_data, make_alt_video)
from .input_errors import UndecodableInputError, install_clear_decode_errors
from .transforms import *  # noqa: F401,F403

install_clear_decode_errors()

__all__ = [
    'TASKS', 'CanvasConfig', 'DemoBoxes', 'demo_batches', 'class_names', 'make_classification',
    'make_demo_data', 'make_detection', 'make_segmentation', 'make_video', 'seg_palette',
    'UndecodableInputError', 'install_clear_decode_errors', 'write_classification_set',
    'write_video_set', 'ALT_TASKS', 'AltCanvasConfig', 'make_alt_classification',
    'make_alt_demo_data', 'make_alt_video'
]
