# Copyright (c) mmdynamic contributors. All rights reserved.
"""The GFNet encoders fG / fL: any mmpretrain backbone, giving its pooled vector and feature map."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule


class GFEncoder(BaseModule):
    """An mmpretrain backbone that returns ``(pooled, feature_map)`` (GFNet §1.4).

    ``feature_map`` is the last backbone output, **detached** (the policy never back-propagates into
    the encoders); ``pooled`` is its global average, optionally followed by a linear pre-logits
    layer (MobileNetV3's ``conv_head``: 960 -> 1280 + HSwish) and dropout. The encoder's own
    linear head (``head``) is the deep-supervision (DSN) head of Eq. 6 and, for the cascade classifier, the
    glance-step prediction.

    Args:
        backbone (dict): An mmpretrain backbone config (its last output is the feature map).
        in_channels (int): Channels of the feature map (C_map).
        num_classes (int): Classes of the DSN head.
        pre_logits_channels (int, optional): Width F of a linear pre-logits layer after the pooling
            (MobileNetV3: 1280). None: F = C_map.
        pre_logits_act (str): Activation of that layer: 'hswish', 'relu' or 'none'.
        dropout (float): Dropout on the pooled vector in training (MBv3 0.2, EffNet 0.3).
        init_cfg (dict, optional): Initialisation config.
    """

    _ACTS = {'hswish': nn.Hardswish, 'relu': nn.ReLU, 'none': nn.Identity}

    def __init__(self, backbone: dict, in_channels: int, num_classes: int,
                 pre_logits_channels: Optional[int] = None, pre_logits_act: str = 'hswish',
                 dropout: float = 0.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        from mmpretrain.registry import MODELS
        if pre_logits_act not in self._ACTS:
            raise ValueError(f'pre_logits_act must be one of {sorted(self._ACTS)}, '
                             f'got {pre_logits_act!r}')
        if not 0 <= dropout < 1:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.backbone = MODELS.build(backbone)
        self.in_channels = in_channels
        if pre_logits_channels is None:
            self.pre_logits = None
            self.feature_dim = in_channels
        else:
            self.pre_logits = nn.Sequential(nn.Linear(in_channels, pre_logits_channels),
                                            self._ACTS[pre_logits_act]())
            self.feature_dim = pre_logits_channels
        self.dropout = dropout
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: images (Tensor): (B, 3, P, P).

        Returns:
            tuple: pooled (B, F) and the detached feature map (B, C_map, s, s), s = ceil(P / 32)
            for stride-32 backbones.
        """
        fmap = self.backbone(images)[-1]
        if fmap.shape[1] != self.in_channels:
            raise ValueError(f'the backbone gives {fmap.shape[1]} channels but in_channels is '
                             f'{self.in_channels}')
        pooled = fmap.mean(dim=(2, 3))
        if self.pre_logits is not None:
            pooled = self.pre_logits(pooled)
        if self.dropout > 0:
            pooled = F.dropout(pooled, p=self.dropout, training=self.training)
        return pooled, fmap.detach()
