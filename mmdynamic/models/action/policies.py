# Copyright (c) mmdynamic contributors. All rights reserved.
"""Policy networks of Uni-AdaFocus (spec §2.4).

Both read the (stop-gradient) features of the global encoder on the T_G glance frames:

- :class:`TemporalPolicy` (temporal branch): pooled features -> two (3 x 1) temporal convolutions ->
  one logit per glance frame; ``softmax(logits / temperature)`` gives the frame weights.
- :class:`SpatialPolicy` (spatial branch): feature maps (B, C, T_G, h, w) -> 1x1x1 conv to
  ``hidden_channels`` -> two 3x3x3 convs -> a conv over the whole h x w map (a per-frame FC) ->
  sigmoid: four numbers (a_y, a_x, a_h, a_w) in (0, 1) per glance frame, or one 4-tuple per video
  (``per_video=True``, the TSM/X3D settings: the last kernel spans all T_G frames).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule


class TemporalPolicy(BaseModule):
    """Frame weights over the glance frames.

    Args:
        in_channels (int): Channels of the pooled global features (1280 for MobileNet-V2).
        hidden_channels (int): Channels of the temporal convolutions. Defaults to 64.
        kernel_size (int): Temporal kernel of the two convolutions. Defaults to 3.
        temperature (float): Softmax temperature of the frame weights. Defaults to 1.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> policy = TemporalPolicy(32, hidden_channels=8)
        >>> logits, weights = policy(torch.rand(2, 16, 32))
        >>> tuple(weights.shape), bool(torch.allclose(weights.sum(1), torch.ones(2)))
        ((2, 16), True)
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, kernel_size: int = 3,
                 temperature: float = 1.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        self.temperature = temperature
        pad = (kernel_size // 2, 0)
        norm = dict(type='BN')
        self.convs = nn.Sequential(
            ConvModule(in_channels, hidden_channels, (kernel_size, 1), padding=pad, bias=False,
                       norm_cfg=norm),
            ConvModule(hidden_channels, hidden_channels, (kernel_size, 1), padding=pad,
                       bias=False, norm_cfg=norm))
        self.out = nn.Conv2d(hidden_channels, 1, 1, bias=False)

    def forward(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: feats (Tensor): (B, T_G, C) pooled global features.

        Returns:
            tuple: logits (B, T_G) and weights ``softmax(logits / temperature)`` (B, T_G).
        """
        x = feats.transpose(1, 2).unsqueeze(-1)  # (B, C, T_G, 1)
        logits = self.out(self.convs(x)).flatten(1)
        return logits, (logits / self.temperature).softmax(dim=1)


class SpatialPolicy(BaseModule):
    """Deformable box parameters from the global feature maps.

    Args:
        in_channels (int): Channels of the global feature maps (1280 for MobileNet-V2).
        feature_size (int | tuple): (h, w) of the global feature maps (7 for 224 frames).
        hidden_channels (int): Channels after the 1x1x1 compression. Defaults to 128.
        num_frames (int): T_G; only used when ``per_video``. Defaults to 16.
        per_video (bool): One box per video instead of one per glance frame. Defaults to False.
        num_outputs (int): Numbers per box (4: a_y, a_x, a_h, a_w). Defaults to 4.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> policy = SpatialPolicy(32, feature_size=4, hidden_channels=8)
        >>> tuple(policy(torch.rand(2, 16, 32, 4, 4)).shape)
        (2, 16, 4)
    """

    def __init__(self, in_channels: int, feature_size, hidden_channels: int = 128,
                 num_frames: int = 16, per_video: bool = False, num_outputs: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        size = (feature_size, feature_size) if isinstance(feature_size, int) else tuple(feature_size)
        self.feature_size = size
        self.per_video = per_video
        norm = dict(type='BN3d')
        conv = dict(type='Conv3d')
        self.convs = nn.Sequential(
            ConvModule(in_channels, hidden_channels, 1, bias=False, conv_cfg=conv, norm_cfg=norm),
            ConvModule(hidden_channels, hidden_channels, 3, padding=1, bias=False, conv_cfg=conv,
                       norm_cfg=norm),
            ConvModule(hidden_channels, hidden_channels, 3, padding=1, bias=False, conv_cfg=conv,
                       norm_cfg=norm))
        kernel = ((num_frames if per_video else 1), ) + size
        self.out = nn.Conv3d(hidden_channels, num_outputs, kernel, bias=False)

    def forward(self, feat_maps: torch.Tensor) -> torch.Tensor:
        """Args: feat_maps (Tensor): (B, T_G, C, h, w).

        Returns:
            Tensor: (B, T_G, 4) per glance frame, or (B, 1, 4) with ``per_video``, in (0, 1).
        """
        if tuple(feat_maps.shape[-2:]) != self.feature_size:
            raise ValueError(f'the spatial policy was built for {self.feature_size} feature maps, '
                             f'got {tuple(feat_maps.shape[-2:])}; set feature_size')
        x = self.out(self.convs(feat_maps.transpose(1, 2)))  # (B, 4, T', 1, 1)
        return x.flatten(3).squeeze(-1).transpose(1, 2).sigmoid()


def location_embedding(in_channels: int, feature_size: Tuple[int, int], mid_channels: int,
                       out_channels: int) -> nn.Sequential:
    """The state encoder of the AdaFocusV2 policies (official ``PolicySTN.encoder`` and the first
    layers of the TSM ``policy_stn``): Conv 1x1 (no bias) -> BN -> Tanh -> Flatten (order c, y, x) ->
    Linear -> BN1d -> Tanh; indices 0, 1, 4, 5 hold the parameters.

    Args:
        in_channels (int): Channels of the feature maps. feature_size (tuple): Their (h, w).
        mid_channels (int): Channels after the 1x1 conv (64). out_channels (int): Output width.

    Returns:
        nn.Sequential: (N, in_channels, h, w) -> (N, out_channels).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels),
        nn.Tanh(), nn.Flatten(), nn.Linear(mid_channels * feature_size[0] * feature_size[1],
                                           out_channels),
        nn.BatchNorm1d(out_channels), nn.Tanh())


class RecurrentLocationPolicy(BaseModule):
    """AdaFocusV2's policy: a GRU over the glance feature maps -> patch location per frame (§2.8b).

    Conv 1x1 (C -> ``mid_channels``) -> BN -> Tanh -> flatten -> Linear -> BN1d -> Tanh -> GRU ->
    Linear -> Sigmoid: the normalised top-left (a_y, a_x) in (0, 1)^2 of the frame's P x P patch. The
    recurrent state is explicit (batch-first), so the policy runs causally frame by frame.

    Args:
        in_channels (int): Channels of the glance feature maps (1280 for MobileNet-V2).
        feature_size (int | tuple): (h, w) of the feature maps (7 for 224 frames).
        hidden_channels (int): GRU width. Defaults to 2048.
        mid_channels (int): Channels after the 1x1 conv. Defaults to 64.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, feature_size, hidden_channels: int = 2048,
                 mid_channels: int = 64, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        size = (feature_size, feature_size) if isinstance(feature_size, int) else tuple(feature_size)
        self.feature_size = size
        self.hidden_channels = hidden_channels
        self.embed = location_embedding(in_channels, size, mid_channels, hidden_channels)
        self.gru = nn.GRU(hidden_channels, hidden_channels, batch_first=True)
        self.out = nn.Linear(hidden_channels, 2)

    def forward(self, feat_maps: torch.Tensor,
                hidden: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Locations for a sequence of frames.

        Args:
            feat_maps (Tensor): (B, T, C, h, w) glance feature maps (detach them for stop-gradient).
            hidden (Tensor, optional): (B, hidden) state after the previous frames (zeros if None).

        Returns:
            tuple: locations (B, T, 2) in (0, 1) and the state after the last frame (B, hidden).
        """
        if tuple(feat_maps.shape[-2:]) != self.feature_size:
            raise ValueError(f'the policy was built for {self.feature_size} feature maps, got '
                             f'{tuple(feat_maps.shape[-2:])}; set feature_size')
        batch, steps = feat_maps.shape[:2]
        x = self.embed(feat_maps.flatten(0, 1)).view(batch, steps, -1)
        if hidden is None:
            hidden = x.new_zeros(batch, self.hidden_channels)
        out, last = self.gru(x, hidden[None].contiguous())
        return self.out(out).sigmoid(), last[0]


class VideoLocationPolicy(BaseModule):
    """AdaFocusV2-TSM's policy: one patch location per video from the glance maps of all its frames.

    The T_G maps are stacked on the channel axis (channel ``t * C + c``, the official order) ->
    :func:`location_embedding` (Conv 1x1 T_G C -> ``mid_channels``, ..., Linear -> ``hidden_channels[0]``)
    -> [Linear -> BN1d -> Tanh] for each further hidden width -> Linear -> Sigmoid: the normalised
    top-left (a_y, a_x) in (0, 1)^2 of the P x P patch shared by the video's focus frames.

    Args:
        in_channels (int): Channels of one glance frame's maps (1280 for MobileNet-V2).
        num_frames (int): T_G glance frames (8).
        feature_size (int | tuple): (h, w) of the maps (7 for 224 frames).
        hidden_channels (Sequence[int]): Widths of the hidden layers. Defaults to (1024, 512).
        mid_channels (int): Channels after the 1x1 conv. Defaults to 64.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> policy = VideoLocationPolicy(8, num_frames=4, feature_size=3, hidden_channels=(16, 8))
        >>> tuple(policy(torch.rand(2, 4, 8, 3, 3)).shape)
        (2, 2)
    """

    def __init__(self, in_channels: int, num_frames: int, feature_size,
                 hidden_channels: Sequence[int] = (1024, 512), mid_channels: int = 64,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(hidden_channels) < 1:
            raise ValueError('hidden_channels needs at least one width')
        size = (feature_size, feature_size) if isinstance(feature_size, int) else tuple(feature_size)
        self.feature_size = size
        self.num_frames = num_frames
        self.in_channels = in_channels
        self.embed = location_embedding(in_channels * num_frames, size, mid_channels,
                                        hidden_channels[0])
        layers = []
        for width_in, width_out in zip(hidden_channels[:-1], hidden_channels[1:]):
            layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.Tanh()]
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(hidden_channels[-1], 2)

    def forward(self, feat_maps: torch.Tensor) -> torch.Tensor:
        """Args: feat_maps (Tensor): (B, T_G, C, h, w) glance maps (detach them for stop-gradient).

        Returns:
            Tensor: (B, 2) normalised top-left (a_y, a_x) in (0, 1).
        """
        expected = (self.num_frames, self.in_channels) + self.feature_size
        if feat_maps.dim() != 5 or tuple(feat_maps.shape[1:]) != expected:
            raise ValueError(f'the policy was built for maps (B, T_G, C, h, w) = (B, '
                             f'{", ".join(map(str, expected))}), got {tuple(feat_maps.shape)}; '
                             'set num_glance, global_channels and feature_size')
        return self.out(self.hidden(self.embed(feat_maps.flatten(1, 2)))).sigmoid()
