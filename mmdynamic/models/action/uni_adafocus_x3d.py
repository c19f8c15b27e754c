# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus-X3D: the Kinetics-400 setting (spec §2.2-2.3, §2.6-2.7, §8.18).

Like :class:`UniAdaFocusTSM` (two clips, one box per video, two exits, two heads per encoder) with 3D
encoders: X3D-S reads the T_G = 16 glance frames resized to ``glance_size`` (160: 5 x 5 maps), X3D-L
reads the T_L = 32 chosen focus frames (of T_0 = 96 candidates) as one clip of P x P crops. Every head has
X3D's form (Linear without bias -> ReLU -> dropout -> Linear). The prediction is the sum of the two X3D
heads on the clip-pooled detached features; exit 0 averages the glance frame head's per-frame logits; the
auxiliary losses are the CE of the frame heads' logits averaged over the frames, and the temporal loss
reads the glance frame head's per-frame logits (all as in the official code).
"""
from typing import Dict

import torch
import torch.nn as nn

from mmdynamic.models.utils.patch_sampler import glance
from mmdynamic.registry import MODELS, register_dual
from .uni_adafocus import encode
from .uni_adafocus_tsm import UniAdaFocusTSM


def x3d_head(in_channels: int, num_classes: int, mid_channels: int, dropout: float) -> nn.Module:
    """X3D's classification head on pooled features: (..., C) -> (..., num_classes)."""
    return nn.Sequential(nn.Linear(in_channels, mid_channels, bias=False), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(mid_channels, num_classes))


@register_dual(MODELS)
class UniAdaFocusX3D(UniAdaFocusTSM):
    """Uni-AdaFocus with X3D encoders (Table 5: X3D-S + X3D-L, 16 + 32 frames, P = 128).

    Heads (two per encoder, each Linear without bias -> ReLU -> Dropout -> Linear; the official
    layout, key names for a checkpoint converter, one to one):

    - ``fc_global.{0,3}`` = ``global_CNN.head.lin_5`` (a 1x1x1 conv: squeeze it to 2D) and
      ``global_CNN.head.projection``: the prediction of X3D-S, on its (T, h, w)-pooled *detached*
      features; ``fc_local.{0,3}`` = ``local_CNN.head.{lin_5, projection}`` likewise for X3D-L.
    - ``fc_global_frame.{0,3}`` = ``global_CNN_head.{0,3}``: on every glance frame; exit 0 (its logits
      averaged over T), loss_global and the temporal-loss logits. ``fc_local_frame.{0,3}`` =
      ``local_CNN_head.{0,3}``: on every focus frame; loss_local.

    Exit 1 (the prediction) is the sum of the two prediction heads; as the official heads read
    detached features, its loss trains them only.

    The frame heads start as copies of the prediction heads (:meth:`init_weights`, the official
    ``share_head_params``) and are trained separately.

    Args:
        head_channels (int): Hidden width of the X3D heads. Defaults to 2048.
        glance_size (int): Side of the glance frames for X3D-S. Defaults to 160.
        glance_exit (str): Exit 0: 'frame_heads' (official: the frame head on every glance frame,
            logits averaged over the frames) or 'prediction_heads' (X3D-S's prediction head on the
            frame-averaged features). Defaults to 'frame_heads'.
        **kwargs: See :class:`UniAdaFocusTSM` (defaults here: T_G 16, T_0 96, T_L 32, feature size 5,
            432 channels, dropout 0.5, alpha 0.5).
    """
    clip_level_aux_losses = True

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
        self.fc_global_frame = x3d_head(global_channels, self.num_classes, head_channels, dropout)
        self.fc_local_frame = x3d_head(local_channels, self.num_classes, head_channels, dropout)
        self.copy_prediction_heads()

    @torch.no_grad()
    def copy_prediction_heads(self) -> None:
        """Set the frame heads to copies of the prediction heads (official ``share_head_params``)."""
        self.fc_global_frame.load_state_dict(self.fc_global.state_dict())
        self.fc_local_frame.load_state_dict(self.fc_local.state_dict())

    def init_weights(self) -> None:
        """Initialise as configured, then copy the prediction heads into the frame heads (unless the
        whole model is initialised from a checkpoint, which holds trained frame heads)."""
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if not any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs):
            self.copy_prediction_heads()

    @staticmethod
    def _encode_clip(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
        """A 3D encoder on (B, T, C, H, W) frames. Returns (B, T', C', h, w)."""
        maps = encode(encoder, frames.transpose(1, 2).contiguous())  # (B, C', T', h, w)
        return maps.transpose(1, 2)

    def glance_features(self, inputs: torch.Tensor, generator=None) -> Dict[str, torch.Tensor]:
        """X3D-S on the glance clip (the first T_G frames) resized to ``glance_size``."""
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        frames = inputs[:, :self.num_glance].flatten(0, 1)
        if self.glance_size is not None:
            frames = glance(frames, self.glance_size, mode='bilinear', align_corners=False)
        maps = self._encode_clip(self.backbone, frames.view(batch, self.num_glance,
                                                            *frames.shape[1:]))
        return dict(maps=maps, feats=maps.mean(dim=(-2, -1)))

    def encode_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """X3D-L on the clips of P x P crops (B, T_L, C, P, P). Returns (B, T', C_L)."""
        return self._encode_clip(self.local_backbone, patches).mean(dim=(-2, -1))

    def glance_prediction(self, global_feats: torch.Tensor) -> torch.Tensor:
        """X3D-S's prediction head on the clip-pooled detached features. (B, T, C_G) -> (B, C)."""
        return self.fc_global(global_feats.detach().mean(dim=1))

    def focus_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """X3D-L's prediction head on the clip-pooled detached features. (B, T, C_L) -> (B, C)."""
        return self.fc_local(local_feats.detach().mean(dim=1))
