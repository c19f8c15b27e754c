# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmdet detectors with a SAR-ResNet backbone and its sparsity loss (keys as upstream)."""
from typing import Dict, Optional

from mmdet.models.detectors import FasterRCNN, RetinaNet

from mmdynamic.models.utils.sar_mixin import SARLossMixin
from mmdynamic.registry import MODELS, register_dual


@register_dual(MODELS)
class SARFasterRCNN(SARLossMixin, FasterRCNN):
    """:class:`FasterRCNN` + ``sparsity`` loss (see :class:`SARLossMixin`)."""

    def __init__(self, sparsity: Optional[Dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_sparsity(sparsity)

    def loss(self, batch_inputs, batch_data_samples) -> Dict:
        return self.add_sparsity_loss(super().loss(batch_inputs, batch_data_samples))


@register_dual(MODELS)
class SARRetinaNet(SARLossMixin, RetinaNet):
    """:class:`RetinaNet` + ``sparsity`` loss (see :class:`SARLossMixin`)."""

    def __init__(self, sparsity: Optional[Dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_sparsity(sparsity)

    def loss(self, batch_inputs, batch_data_samples) -> Dict:
        return self.add_sparsity_loss(super().loss(batch_inputs, batch_data_samples))
