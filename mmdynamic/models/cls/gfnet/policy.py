# Copyright (c) mmdynamic contributors. All rights reserved.
"""The GFNet patch proposal network pi: an actor-critic with a GRU (§1.6)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch.distributions import Independent, Normal


class GFPatchPolicy(BaseModule):
    """Actor-critic over the un-pooled feature map of the previous step.

    - ``'fc'`` (ResNet, DenseNet): Flatten -> Linear(C*s*s, 2048) -> ReLU -> Linear(2048, hidden)
      -> ReLU -> GRU(hidden).
    - ``'conv'`` (RegNet, MobileNetV3, EfficientNet): Conv1x1(C, 32, no bias) -> ReLU -> Flatten ->
      Linear(32*s*s, hidden) -> ReLU -> GRU(hidden).

    The actor (Linear(hidden, 2) + sigmoid) gives the mean of a Gaussian with a fixed std
    (``action_std``, 0.1) over the (row, col) location in [0, 1]^2; the critic (Linear(hidden, 1))
    the state value. Sampled actions are clipped to [0, 1] and their log-probability is evaluated at
    the clipped value, as in the official code. The GRU state is explicit, (B, hidden), zero at the
    first focus decision.

    Args:
        in_channels (int): C_map of the encoder feature map.
        feature_size (int): s, the side of the feature map (ceil(P / 32)).
        variant (str): 'fc' or 'conv'.
        hidden_channels (int): GRU width (1024 for 'fc', 256 for 'conv').
        fc_channels (int): Width of the first linear layer of the 'fc' variant. Defaults to 2048.
        conv_channels (int): Output channels of the 1x1 conv of the 'conv' variant. Defaults to 32.
        action_std (float): Std of the Gaussian actions. Defaults to 0.1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, feature_size: int, variant: str = 'fc',
                 hidden_channels: int = 1024, fc_channels: int = 2048, conv_channels: int = 32,
                 action_std: float = 0.1, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if action_std <= 0:
            raise ValueError(f'action_std must be positive, got {action_std}')
        area = feature_size * feature_size
        if variant == 'fc':
            self.state_encoder = nn.Sequential(
                nn.Flatten(), nn.Linear(in_channels * area, fc_channels), nn.ReLU(inplace=True),
                nn.Linear(fc_channels, hidden_channels), nn.ReLU(inplace=True))
        elif variant == 'conv':
            self.state_encoder = nn.Sequential(
                nn.Conv2d(in_channels, conv_channels, 1, bias=False), nn.ReLU(inplace=True),
                nn.Flatten(), nn.Linear(conv_channels * area, hidden_channels),
                nn.ReLU(inplace=True))
        else:
            raise ValueError(f"variant must be 'fc' or 'conv', got {variant!r}")
        self.variant = variant
        self.in_channels = in_channels
        self.feature_size = feature_size
        self.hidden_channels = hidden_channels
        self.action_std = float(action_std)
        self.gru = nn.GRU(hidden_channels, hidden_channels, batch_first=True)
        self.actor = nn.Linear(hidden_channels, 2)
        self.critic = nn.Linear(hidden_channels, 1)

    def init_state(self, batch_size: int, ref: torch.Tensor) -> torch.Tensor:
        return ref.new_zeros(batch_size, self.hidden_channels)

    def forward(self, fmap: torch.Tensor, state: torch.Tensor, with_value: bool = True
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """Args:
            fmap (Tensor): (B, C_map, s, s) feature map of the previous step (detached).
            state (Tensor): (B, hidden) GRU state.
            with_value (bool): Run the critic (only the PPO update needs it). Defaults to True.

        Returns:
            tuple: action mean (B, 2) in (0, 1), value (B, ) (None without ``with_value``) and
            the new state (B, hidden).
        """
        if fmap.shape[1:] != (self.in_channels, self.feature_size, self.feature_size):
            raise ValueError(f'the policy expects feature maps of shape (B, {self.in_channels}, '
                             f'{self.feature_size}, {self.feature_size}), got {tuple(fmap.shape)}')
        out, hidden = self.gru(self.state_encoder(fmap)[:, None], state[None].contiguous())
        out = out[:, 0]
        value = self.critic(out)[:, 0] if with_value else None
        return torch.sigmoid(self.actor(out)), value, hidden[0]

    def distribution(self, mean: torch.Tensor) -> Independent:
        """The action distribution: independent Normals with std ``action_std`` per coordinate."""
        return Independent(Normal(mean, torch.full_like(mean, self.action_std)), 1)

    def sample(self, mean: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sample clipped actions. Returns: actions (B, 2) in [0, 1], log-probs (B, ) at them."""
        action = self.distribution(mean).sample().clamp(0, 1)
        return action, self.distribution(mean).log_prob(action)

    def evaluate(self, fmaps: torch.Tensor,
                 actions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Re-run the policy over stored states (the PPO update), GRU from zero.

        Args:
            fmaps (Tensor): (B, N, C_map, s, s), the feature maps the N decisions were taken on.
            actions (Tensor): (B, N, 2), the clipped actions taken.

        Returns:
            tuple: log-probs (B, N), values (B, N), entropies (B, N).
        """
        state = self.init_state(fmaps.shape[0], fmaps)
        logps, values, entropies = [], [], []
        for n in range(fmaps.shape[1]):
            mean, value, state = self(fmaps[:, n], state)
            dist = self.distribution(mean)
            logps.append(dist.log_prob(actions[:, n]))
            values.append(value)
            entropies.append(dist.entropy())
        return torch.stack(logps, 1), torch.stack(values, 1), torch.stack(entropies, 1)
