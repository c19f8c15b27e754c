# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus-X3D: the Kinetics-400 setting (spec §2.2-2.3, §2.6-2.7, §8.18).

Like :class:`UniAdaFocusTSM` (two clips, one box per video, two exits) with 3D encoders: X3D-S reads the
T_G = 16 glance frames resized to ``glance_size`` (160: 5 x 5 maps), X3D-L reads the T_L = 32 chosen
focus frames (of T_0 = 96 candidates) as one clip of P x P crops. The prediction is the sum of the two
X3D heads' logits (pool -> Linear without bias -> ReLU -> dropout -> Linear); the frame-wise logits of the
auxiliary losses and of the temporal policy loss use the same heads on each time step.
"""
from typing import Dict

import torch
import torch.nn as nn

from mmdynamic.models.utils.patch_sampler import crop_boxes, glance
from mmdynamic.registry import MODELS, register_dual
from .uni_adafocus import encode, gather_frames
from .uni_adafocus_tsm import UniAdaFocusTSM


def x3d_head(in_channels: int, num_classes: int, mid_channels: int, dropout: float) -> nn.Module:
    """X3D's classification head on pooled features: (N, C) -> (N, num_classes)."""
    return nn.Sequential(nn.Linear(in_channels, mid_channels, bias=False), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(mid_channels, num_classes))


@register_dual(MODELS)
class UniAdaFocusX3D(UniAdaFocusTSM):
    """Uni-AdaFocus with X3D encoders (Table 5: X3D-S + X3D-L, 16 + 32 frames, P = 128).

    Args:
        head_channels (int): Hidden width of the X3D heads. Defaults to 2048.
        glance_size (int): Side of the glance frames for X3D-S. Defaults to 160.
        **kwargs: See :class:`UniAdaFocusTSM` (defaults here: T_G 16, T_0 96, T_L 32, feature size 5,
            432 channels, dropout 0.5, alpha 0.5).
    """

    def __init__(self, head_channels: int = 2048, glance_size: int = 160, num_glance: int = 16,
                 num_candidates: int = 96, num_focus: int = 32, global_channels: int = 432,
                 local_channels: int = 432, feature_size: int = 5, **kwargs) -> None:
        super().__init__(glance_size=glance_size, num_glance=num_glance,
                         num_candidates=num_candidates, num_focus=num_focus,
                         global_channels=global_channels, local_channels=local_channels,
                         feature_size=feature_size, **kwargs)
        dropout = self.fc_global[0].p
        self.fc_global = x3d_head(global_channels, self.num_classes, head_channels, dropout)
        self.fc_local = x3d_head(local_channels, self.num_classes, head_channels, dropout)

    @staticmethod
    def _encode_clip(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
        """A 3D encoder on (B, T, C, H, W) frames. Returns (B, T', C', h, w)."""
        maps = encode(encoder, frames.transpose(1, 2).contiguous())  # (B, C', T', h, w)
        return maps.transpose(1, 2)

    def glance_features(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """X3D-S on the glance clip (the first T_G frames) resized to ``glance_size``."""
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        frames = inputs[:, :self.num_glance].flatten(0, 1)
        if self.glance_size is not None:
            frames = glance(frames, self.glance_size, mode='bilinear', align_corners=False)
        maps = self._encode_clip(self.backbone, frames.view(batch, self.num_glance,
                                                            *frames.shape[1:]))
        return dict(maps=maps, feats=maps.mean(dim=(-2, -1)))

    def local_features(self, inputs: torch.Tensor, index: torch.Tensor,
                       boxes: torch.Tensor) -> torch.Tensor:
        """X3D-L on the clip of P x P crops of the chosen candidates. Returns (B, T', C_L)."""
        batch, num = index.shape
        frames = gather_frames(inputs[:, self.num_glance:], index).flatten(0, 1)
        patches = crop_boxes(frames, boxes.reshape(-1, 4), self.patch_size)
        maps = self._encode_clip(self.local_backbone, patches.view(batch, num, *patches.shape[1:]))
        return maps.mean(dim=(-2, -1))

    def glance_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """X3D-S's head on the clip-pooled features."""
        return self.fc_global(global_feats.mean(dim=1))

    def focus_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """X3D-L's head on the clip-pooled features."""
        return self.fc_local(local_feats.mean(dim=1))
