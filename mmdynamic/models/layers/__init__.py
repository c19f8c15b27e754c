# Copyright (c) mmdynamic contributors. All rights reserved.
from .sar_blocks import (RefineBasicBlock, RefineBottleneck, SARBasicBlock, SARBottleneck)
from .sar_layers import (ChannelAttentionFusion, MacsMeter, MaskGenerator, expand_group_mask,
                         masks_from_logits, straight_through_gumbel)

__all__ = [
    'RefineBasicBlock', 'RefineBottleneck', 'SARBasicBlock', 'SARBottleneck',
    'ChannelAttentionFusion', 'MacsMeter', 'MaskGenerator', 'expand_group_mask',
    'masks_from_logits', 'straight_through_gumbel'
]
