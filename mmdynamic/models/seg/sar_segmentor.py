# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmseg encoder-decoder with a SAR-ResNet backbone and its sparsity loss (keys as upstream)."""
from typing import Dict, Optional

from mmseg.models.segmentors import EncoderDecoder

from mmdynamic.models.utils.sar_mixin import SARLossMixin
from mmdynamic.registry import MODELS, register_dual


@register_dual(MODELS)
class SAREncoderDecoder(SARLossMixin, EncoderDecoder):
    """:class:`EncoderDecoder` (DeepLabV3, PSPNet, ...) + ``sparsity`` loss (see
    :class:`SARLossMixin`)."""

    def __init__(self, sparsity: Optional[Dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_sparsity(sparsity)

    def loss(self, inputs, data_samples) -> Dict:
        return self.add_sparsity_loss(super().loss(inputs, data_samples))
