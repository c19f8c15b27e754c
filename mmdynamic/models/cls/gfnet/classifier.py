# Copyright (c) mmdynamic contributors. All rights reserved.
"""The GFNet classifier fC (§1.5): a GRU + linear layer, or a cascade of linear layers.

Both take the pooled feature of the current step and an explicit, batch-first state and return the
logits of the step and the next state; nothing is stored on the module between calls.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule


class GFRecurrentClassifier(BaseModule):
    """GRU (one layer, reset to zeros at the glance) followed by a linear layer (ResNet, DenseNet,
    RegNet GFNets).

    Args:
        in_channels (int): F, the pooled feature width.
        num_classes (int): Number of classes.
        hidden_channels (int): GRU width. Defaults to 1024.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden_channels: int = 1024,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.hidden_channels = hidden_channels
        self.rnn = nn.GRU(in_channels, hidden_channels, batch_first=True)
        self.fc = nn.Linear(hidden_channels, num_classes)

    def init_state(self, batch_size: int, ref: torch.Tensor) -> torch.Tensor:
        """The zero hidden state (B, hidden) on ``ref``'s device and dtype."""
        return ref.new_zeros(batch_size, self.hidden_channels)

    def forward(self, index: int, feature: torch.Tensor, state: torch.Tensor,
                with_logits: bool = True) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """Args:
            index (int): 0-based step (unused; same signature as the cascade).
            feature (Tensor): (B, F) pooled feature of the step.
            state (Tensor): (B, hidden) hidden state.
            with_logits (bool): Run the linear layer. False: only the GRU update (the glance step
                of a model that predicts it with fG's head). Defaults to True.

        Returns:
            tuple: logits (B, num_classes) (None without ``with_logits``) and the new hidden state
            (B, hidden).
        """
        out, hidden = self.rnn(feature[:, None], state[None].contiguous())
        return (self.fc(out[:, 0]) if with_logits else None), hidden[0]


class GFCascadeClassifier(BaseModule):
    """T linear classifiers on the concatenated pooled features (MobileNetV3, EfficientNet GFNets):
    step t (0-based) applies ``Linear((t + 1) * F, C)`` to ``[e_1, ..., e_{t+1}]``.

    The glance step has no layer here when ``glance_head`` is False (the official code predicts it
    with fG's own head, see :class:`GFNet`); the state is the concatenation so far, (B, t * F).

    Args:
        in_channels (int): F.
        num_classes (int): Number of classes.
        num_steps (int): T.
        glance_head (bool): Also build the 1-feature layer of step 0. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: int, num_classes: int, num_steps: int,
                 glance_head: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        self.in_channels = in_channels
        self.first = 1 if not glance_head else 0
        self.fcs = nn.ModuleList(
            nn.Linear((t + 1) * in_channels, num_classes) for t in range(self.first, num_steps))

    def init_state(self, batch_size: int, ref: torch.Tensor) -> torch.Tensor:
        return ref.new_zeros(batch_size, 0)

    def forward(self, index: int, feature: torch.Tensor, state: torch.Tensor,
                with_logits: bool = True) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """Returns: logits (B, C), or None at the glance without ``glance_head`` or without
        ``with_logits``; the state (B, (index + 1) * F)."""
        state = torch.cat([state, feature], dim=1)
        if index < self.first or not with_logits:
            return None, state
        return self.fcs[index - self.first](state), state
