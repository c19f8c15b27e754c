# Copyright (c) mmdynamic contributors. All rights reserved.
from . import regnety  # noqa: F401  (registers RegNetY when mmpretrain is installed)
from .sar_resnet import SARResNet, SARResNetCifar, SARStage

__all__ = ["SARResNet", "SARResNetCifar", "SARStage"]
