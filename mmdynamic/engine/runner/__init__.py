# Copyright (c) mmdynamic contributors. All rights reserved.
from .exact_resume import (ExactResumeEpochBasedTrainLoop, ExactResumeIterBasedTrainLoop,
                           RNGStateHook, exact_resume_loop, get_rng_states,
                           restore_pending_rng_states, set_rng_states)
from .step_major_loop import StepMajorTestLoop

__all__ = [
    'ExactResumeEpochBasedTrainLoop', 'ExactResumeIterBasedTrainLoop', 'RNGStateHook',
    'exact_resume_loop', 'get_rng_states', 'restore_pending_rng_states', 'set_rng_states',
    'StepMajorTestLoop'
]
