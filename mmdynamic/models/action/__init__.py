# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmaction2 recognizers: Uni-AdaFocus (MN2 + R50, TSM, X3D) and AdaFocusV2.

Imported only when mmaction2 is installed.
"""
from .adafocus_v2 import AdaFocusV2, bisection_frame_order
from .adafocus_v2_tsm import AdaFocusV2TSM
from .feature_reuse_head import ConcatMaxPoolHead, FeatureReuseHead
from .frame_sampling import (actions_to_boxes, glance_frame_indices, interpolate_actions,
                             quantile_frame_indices, quantile_levels, random_boxes)
from .losses import (box_size_regulariser, draw_without_replacement, exact_temporal_loss,
                     temporal_policy_loss)
from .multi_view import ViewAveragedSteps, average_views, split_views
from .policies import (RecurrentLocationPolicy, SpatialPolicy, TemporalPolicy,
                       VideoLocationPolicy)
from .uni_adafocus import AdaFocusRecognizerBase, InputsInState, UniAdaFocus
from .uni_adafocus_tsm import UniAdaFocusTSM
from .uni_adafocus_x3d import UniAdaFocusX3D

__all__ = [
    'AdaFocusRecognizerBase', 'UniAdaFocus', 'UniAdaFocusTSM', 'UniAdaFocusX3D', 'AdaFocusV2',
    'AdaFocusV2TSM', 'bisection_frame_order', 'VideoLocationPolicy',
    'FeatureReuseHead', 'ConcatMaxPoolHead', 'SpatialPolicy', 'TemporalPolicy',
    'RecurrentLocationPolicy', 'actions_to_boxes', 'glance_frame_indices', 'interpolate_actions',
    'quantile_frame_indices', 'quantile_levels', 'random_boxes', 'box_size_regulariser',
    'draw_without_replacement', 'exact_temporal_loss', 'temporal_policy_loss', 'InputsInState',
    'ViewAveragedSteps', 'average_views', 'split_views'
]
