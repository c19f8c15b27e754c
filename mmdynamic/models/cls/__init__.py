# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmpretrain classifiers (imported only when mmpretrain is installed)."""
from .stepwise_classifier import StepwiseClassifier

__all__ = ['StepwiseClassifier']
