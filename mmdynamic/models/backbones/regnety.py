# Copyright (c) mmdynamic contributors. All rights reserved.
"""RegNet-Y: mmpretrain's RegNet with squeeze-and-excitation in every block (Radosavovic et al.,
"Designing Network Design Spaces", CVPR 2020). mmpretrain 1.2.0 only has the RegNet-X archs."""
from typing import Optional

import torch
import torch.nn as nn


def _build():
    """Defined lazily: the classes need mmpretrain, which mmdynamic's backbones do not import
    eagerly."""
    from mmpretrain.models.backbones.regnet import RegNet
    from mmpretrain.models.backbones.resnet import ResLayer
    from mmpretrain.models.backbones.resnext import Bottleneck

    class SqueezeExcitation(nn.Module):
        """Global average pool -> 1x1 conv (reduce, bias) -> ReLU -> 1x1 conv (expand, bias) ->
        sigmoid gate on the input.

        Args:
            channels (int): Channels of the gated map.
            squeeze_channels (int): Channels of the bottleneck.
        """

        def __init__(self, channels: int, squeeze_channels: int) -> None:
            super().__init__()
            self.reduce = nn.Conv2d(channels, squeeze_channels, 1, bias=True)
            self.act = nn.ReLU(inplace=True)
            self.expand = nn.Conv2d(squeeze_channels, channels, 1, bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = self.expand(self.act(self.reduce(x.mean(dim=(2, 3), keepdim=True))))
            return x * torch.sigmoid(scale)

    class RegNetYBottleneck(Bottleneck):
        """The RegNet (X) block with SE after the grouped 3x3 conv; the squeeze width is
        ``round(se_ratio * in_channels)`` (the block's input width, as in pycls)."""

        def __init__(self, in_channels: int, out_channels: int, se_ratio: float = 0.25,
                     **kwargs) -> None:
            super().__init__(in_channels, out_channels, **kwargs)
            self.se = SqueezeExcitation(self.mid_channels,
                                        max(1, int(round(se_ratio * in_channels))))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.relu(self.norm2(self.conv2(out)))
            out = self.norm3(self.conv3(self.se(out)))
            return self.relu(out + identity)

    class RegNetY(RegNet):
        """RegNet-Y backbone (RegNet-X + SE, ratio 0.25 of the block input width).

        Args:
            arch (str | dict): 'regnety_600mf', 'regnety_800mf', 'regnety_1.6gf' or a dict with
                ``w0, wa, wm, group_w, depth, bot_mul``.
            se_ratio (float): Squeeze ratio. Defaults to 0.25.
            **kwargs: See mmpretrain's ``RegNet``.
        """
        arch_settings = {
            'regnety_600mf': dict(w0=48, wa=32.54, wm=2.32, group_w=16, depth=15, bot_mul=1.0),
            'regnety_800mf': dict(w0=56, wa=38.84, wm=2.40, group_w=16, depth=14, bot_mul=1.0),
            'regnety_1.6gf': dict(w0=48, wa=20.71, wm=2.65, group_w=24, depth=27, bot_mul=1.0),
        }

        def __init__(self, arch, se_ratio: float = 0.25, **kwargs) -> None:
            if not 0 < se_ratio <= 1:
                raise ValueError(f'se_ratio must be in (0, 1], got {se_ratio}')
            if isinstance(arch, str) and arch not in self.arch_settings:
                raise KeyError(f'unknown RegNet-Y arch {arch!r}; choose from '
                               f'{sorted(self.arch_settings)}')
            self._se_ratio = se_ratio
            super().__init__(arch, **kwargs)

        def make_res_layer(self, **kwargs):
            kwargs['block'] = RegNetYBottleneck
            return ResLayer(se_ratio=self._se_ratio, **kwargs)

    return RegNetY


def register() -> Optional[type]:
    """Register ``RegNetY`` in mmdynamic's and MMEngine's MODELS (once; needs mmpretrain)."""
    from mmdynamic.registry import MODELS, register_dual
    if 'RegNetY' in MODELS.module_dict:
        return MODELS.module_dict['RegNetY']
    return register_dual(MODELS, 'RegNetY')(_build())


def _register_on_import() -> None:
    from mmdynamic.registry import MODELS
    from mmdynamic.utils.frameworks import is_framework_available, register_unavailable
    if is_framework_available('mmpretrain'):
        register()
    elif 'RegNetY' not in MODELS.module_dict:
        register_unavailable(MODELS, 'RegNetY', 'mmpretrain')


_register_on_import()
