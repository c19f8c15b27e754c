# Copyright (c) mmdynamic contributors. All rights reserved.
from .sar_resnet import SARResNet, SARResNetCifar, SARStage

__all__ = ["SARResNet", "SARResNetCifar", "SARStage"]
