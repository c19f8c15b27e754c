# Copyright (c) mmdynamic contributors. All rights reserved.
"""MobileNetV3 with a width multiplier (GF-MobileNetV3-Large 1.25). mmpretrain 1.2.0 only has the
1.0 Large and the Small widths."""
from typing import List, Optional


def scale_settings(settings: List[list], widen_factor: float, stem_channels: int = 16,
                   divisor: int = 8):
    """Scale a MobileNetV3 layer table (rows: kernel, mid, out, with_se, act, stride) by
    ``widen_factor`` as the gen-efficientnet / timm builders do: every output width is
    ``make_divisible(c * widen_factor)`` and every expansion keeps its ratio to the (scaled) input.

    Returns:
        tuple: the scaled stem width and the scaled table.
    """
    from mmpretrain.models.utils import make_divisible
    stem = make_divisible(stem_channels * widen_factor, divisor)
    in_orig, in_scaled, rows = stem_channels, stem, []
    for kernel, mid, out, with_se, act, stride in settings:
        out_scaled = make_divisible(out * widen_factor, divisor)
        mid_scaled = in_scaled if mid == in_orig else make_divisible(in_scaled * mid / in_orig,
                                                                     divisor)
        rows.append([kernel, mid_scaled, out_scaled, with_se, act, stride])
        in_orig, in_scaled = out, out_scaled
    return stem, rows


def _build():
    from mmcv.cnn import ConvModule
    from mmpretrain.models.backbones import MobileNetV3
    from mmpretrain.models.utils import InvertedResidual

    class MobileNetV3Wide(MobileNetV3):
        """mmpretrain's MobileNetV3 at ``widen_factor`` x its width (stem, blocks and the last
        1x1 conv; e.g. Large 1.25: stem 24, last conv 1200 channels).

        Args:
            arch (str): 'large' or 'small'.
            widen_factor (float): Width multiplier. Defaults to 1.25.
            **kwargs: See mmpretrain's ``MobileNetV3``.
        """

        def __init__(self, arch: str = 'large', widen_factor: float = 1.25, **kwargs) -> None:
            if arch not in ('large', 'small'):
                raise KeyError(f"arch must be 'large' or 'small', got {arch!r}")
            if widen_factor <= 0:
                raise ValueError(f'widen_factor must be positive, got {widen_factor}')
            self._stem, table = scale_settings(MobileNetV3.arch_settings[arch], widen_factor)
            self.arch_settings = {arch: table}  # read by MobileNetV3.__init__ / _make_layer
            self.widen_factor = widen_factor
            super().__init__(arch=arch, **kwargs)

        def _make_layer(self) -> List[str]:
            def conv(in_channels, out_channels, kernel_size, stride):
                return ConvModule(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=kernel_size // 2, conv_cfg=self.conv_cfg,
                                  norm_cfg=self.norm_cfg, act_cfg=dict(type='HSwish'))

            names = ['layer0']
            self.add_module('layer0', conv(3, self._stem, 3, 2))
            in_channels = self._stem
            table = self.arch_settings[self.arch]
            for i, (kernel, mid, out, with_se, act, stride) in enumerate(table, start=1):
                se_cfg = None if not with_se else dict(
                    channels=mid, ratio=4,
                    act_cfg=(dict(type='ReLU'), dict(type='HSigmoid', bias=3, divisor=6,
                                                     min_value=0, max_value=1)))
                self.add_module(f'layer{i}', InvertedResidual(
                    in_channels=in_channels, out_channels=out, mid_channels=mid,
                    kernel_size=kernel, stride=stride, se_cfg=se_cfg, conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg, act_cfg=dict(type=act), with_cp=self.with_cp))
                names.append(f'layer{i}')
                in_channels = out
            last = f'layer{len(table) + 1}'
            self.add_module(last, conv(in_channels, table[-1][1], 1, 1))
            names.append(last)
            return names

    return MobileNetV3Wide


def register() -> Optional[type]:
    """Register ``MobileNetV3Wide`` in mmdynamic's and MMEngine's MODELS (needs mmpretrain)."""
    from mmdynamic.registry import MODELS, register_dual
    if 'MobileNetV3Wide' in MODELS.module_dict:
        return MODELS.module_dict['MobileNetV3Wide']
    return register_dual(MODELS, 'MobileNetV3Wide')(_build())


def _register_on_import() -> None:
    from mmdynamic.registry import MODELS
    from mmdynamic.utils.frameworks import is_framework_available, register_unavailable
    if is_framework_available('mmpretrain'):
        register()
    elif 'MobileNetV3Wide' not in MODELS.module_dict:
        register_unavailable(MODELS, 'MobileNetV3Wide', 'mmpretrain')


_register_on_import()
