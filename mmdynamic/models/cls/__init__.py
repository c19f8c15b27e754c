# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmpretrain classifiers (imported only when mmpretrain is installed)."""
from .sar_classifier import SARImageClassifier
from .stepwise_classifier import StepwiseClassifier

__all__ = ['SARImageClassifier', 'StepwiseClassifier']
