# Copyright (c) mmdynamic contributors. All rights reserved.
"""Robustness evaluation of any mmpretrain classifier: PGD (l_inf) and ImageNet-C corruptions."""
from .common import ExitAccuracy, classifier_exit_logits, normalization_of
from .corruptions import (CORRUPTIONS, SEVERITIES, SHORT_NAMES, ImageCorruption, corrupt_image,
                          corruption_pipeline, summarize_corruptions)
from .pgd import (PGD_PRESETS, PGDConfig, PGDResult, evaluate_pgd, pgd_attack_steps,
                  unscaled_gradients)

__all__ = [
    'ExitAccuracy', 'classifier_exit_logits', 'normalization_of', 'CORRUPTIONS', 'SEVERITIES',
    'SHORT_NAMES', 'ImageCorruption', 'corrupt_image', 'corruption_pipeline',
    'summarize_corruptions', 'PGD_PRESETS', 'PGDConfig', 'PGDResult', 'evaluate_pgd',
    'pgd_attack_steps', 'unscaled_gradients'
]
