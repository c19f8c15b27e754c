# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmpretrain image classifier with a SAR-ResNet backbone and its sparsity loss."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample

from mmdynamic.models.utils.sar_mixin import SARLossMixin
from mmdynamic.registry import MODELS, register_dual


@register_dual(MODELS)
class SARImageClassifier(SARLossMixin, ImageClassifier):
    """:class:`ImageClassifier` + ``sparsity`` loss (checkpoint keys as the upstream classifier).

    Args:
        sparsity (dict, optional): ``target``, ``weight``, ``loss_type`` (see :class:`SARLossMixin`).
        **kwargs: Arguments of :class:`ImageClassifier` (backbone must be a SAR-ResNet).
    """

    def __init__(self, sparsity: Optional[Dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_sparsity(sparsity)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict:
        return self.add_sparsity_loss(super().loss(inputs, data_samples))
