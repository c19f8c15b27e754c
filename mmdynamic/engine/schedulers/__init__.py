# Copyright (c) mmdynamic contributors. All rights reserved.
from .one_cycle_momentum import OneCycleMomentum, OneCycleParamCycleScheduler

__all__ = ['OneCycleMomentum', 'OneCycleParamCycleScheduler']
