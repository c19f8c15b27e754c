# Copyright (c) mmdynamic contributors. All rights reserved.
"""A tiny glance-and-focus classifier with known exits, for tests of the dynamic-inference core."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from mmdynamic.models.cls.stepwise_classifier import StepwiseClassifier
from mmdynamic.models.utils.patch_sampler import crop_patches, glance
from mmdynamic.registry import MODELS, register_dual


@register_dual(MODELS)
class DynToyStepwiseClassifier(StepwiseClassifier):
    """Step 0 classifies a glance (the image resized to ``patch_size``); step t >= 1 classifies a
    ``patch_size`` crop at a location predicted from the previous hidden state, with a GRU cell
    accumulating the steps. One linear head per exit.

    Args:
        num_classes (int): Number of classes.
        num_steps (int): Number of steps (= exits). Defaults to 3.
        patch_size (int): Side of the glance and of the patches. Defaults to 32.
        channels (int): Width of the encoders. Defaults to 16.
        hidden (int): GRU width. Defaults to 32.
    """

    def __init__(self, num_classes: int, num_steps: int = 3, patch_size: int = 32,
                 channels: int = 16, hidden: int = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        self.num_exits = num_steps
        self.patch_size = patch_size
        self.hidden = hidden

        def encoder() -> nn.Module:
            return nn.Sequential(
                nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels),
                nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

        self.global_encoder = encoder()
        self.local_encoder = encoder()
        self.gru = nn.GRUCell(channels, hidden)
        self.policy = nn.Linear(hidden, 2)
        self.heads = nn.ModuleList(nn.Linear(hidden, num_classes) for _ in range(num_steps))

    def init_state(self, inputs: torch.Tensor) -> Dict[str, Optional[torch.Tensor]]:
        return dict(hidden=inputs.new_zeros(inputs.shape[0], self.hidden))

    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if index == 0:
            feat = self.global_encoder(glance(inputs, self.patch_size, mode='bilinear'))
        else:
            location = torch.sigmoid(self.policy(state['hidden']))
            feat = self.local_encoder(crop_patches(inputs, location, self.patch_size))
        hidden = self.gru(feat, state['hidden'])
        return self.heads[index](hidden), dict(hidden=hidden)
