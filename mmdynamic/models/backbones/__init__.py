# Copyright (c) mmdynamic contributors. All rights reserved.
from . import mobilenet_v3_wide, regnety  # noqa: F401  (need mmpretrain; registered if present)
from .sar_resnet import SARResNet, SARResNetCifar, SARStage

__all__ = ["SARResNet", "SARResNetCifar", "SARStage"]
