# Copyright (c) mmdynamic contributors. All rights reserved.
"""MGNet (Multi-Glimpse Network, BMVC 2021) for mmpretrain."""
from .macs import PAPER_UNCOUNTED_OPS, count_mgnet_macs, mgnet_paper_macs
from .mgnet import MGNet
from .modules import (GlimpseAttention, GlimpseGenerator, LocalizationHead, grad_scale,
                      identity_params)

__all__ = [
    'MGNet', 'GlimpseAttention', 'GlimpseGenerator', 'LocalizationHead', 'grad_scale',
    'identity_params', 'PAPER_UNCOUNTED_OPS', 'count_mgnet_macs', 'mgnet_paper_macs'
]
