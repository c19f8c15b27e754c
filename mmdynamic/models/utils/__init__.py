# Copyright (c) mmdynamic contributors. All rights reserved.
from .confidence import CONFIDENCE_FUNCTIONS, get_confidence_fn, max_logit, max_softmax, neg_entropy
from .early_exit import (EarlyExitExecutor, EarlyExitResult, StepwiseMixin, exit_mask,
                         gather_batch)
from .patch_sampler import (affine_glimpse, crop_boxes, crop_patches, glance,
                            sample_bilinear)
from .sar_calibration import calibrate_mask_density, fit_refine_threshold
from .step_major import (StepMajorExecutor, StepMajorResult, concat_batch, executor_view,
                         exit_costs, run_stream, slice_batch)

__all__ = [
    'CONFIDENCE_FUNCTIONS', 'get_confidence_fn', 'max_logit', 'max_softmax', 'neg_entropy',
    'EarlyExitExecutor', 'EarlyExitResult', 'StepwiseMixin', 'exit_mask', 'gather_batch', 'glance',
    'crop_patches', 'crop_boxes', 'affine_glimpse', 'sample_bilinear', 'calibrate_mask_density',
    'fit_refine_threshold', 'StepMajorExecutor',
    'StepMajorResult', 'concat_batch', 'executor_view', 'exit_costs', 'run_stream', 'slice_batch'
]
