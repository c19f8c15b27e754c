# Copyright (c) mmdynamic contributors. All rights reserved.
"""Tiny registered components for tests of the plumbing (registry, tools, distributed runs)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdynamic.registry import MODELS, register_dual


@register_dual(MODELS)
class DynToyBackbone(BaseModule):
    """A small conv backbone: ``num_stages`` stages of one stride-2 3x3 ConvModule each.

    Works as the backbone of mmpretrain classifiers, mmdet detectors, mmseg segmentors and mmaction2 2D
    recognizers, like their ResNets.

    Args:
        in_channels (int): Input channels. Defaults to 3.
        base_channels (int): Channels of stage 0; stage ``i`` has ``base_channels * 2**i``.
            Defaults to 8.
        num_stages (int): Number of stages. Defaults to 4.
        out_indices (Sequence[int]): Stages whose outputs are returned. Defaults to (3, ).
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        return_tuple (bool): Return a tuple even for one output index (mmpretrain, mmdet, mmseg);
            False returns the bare tensor, as mmaction2's 2D backbones do. Defaults to True.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> m = DynToyBackbone(out_indices=(1, 3))
        >>> [tuple(o.shape) for o in m(torch.rand(2, 3, 64, 64))]
        [(2, 16, 16, 16), (2, 64, 4, 4)]
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 8, num_stages: int = 4,
                 out_indices: Sequence[int] = (3, ), norm_cfg: dict = dict(type='BN'),
                 return_tuple: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.return_tuple = return_tuple
        if not all(0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} must lie in [0, {num_stages})')
        self.out_indices = tuple(out_indices)
        self.out_channels = tuple(base_channels * 2**i for i in range(num_stages))
        channels = (in_channels, ) + self.out_channels
        self.stages = nn.ModuleList(
            ConvModule(channels[i], channels[i + 1], 3, stride=2, padding=1, norm_cfg=norm_cfg)
            for i in range(num_stages))

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        """Args: x (Tensor): (N, C, H, W). Returns: the outputs of ``out_indices``, each
        (N, base_channels * 2**i, H / 2**(i+1), W / 2**(i+1))."""
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        if len(outs) == 1 and not self.return_tuple:
            return outs[0]
        return tuple(outs)
