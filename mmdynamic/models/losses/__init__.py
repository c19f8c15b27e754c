# Copyright (c) mmdynamic contributors. All rights reserved.
from .sparsity_loss import LOSS_TYPES, mask_density, sparsity_loss

__all__ = ["LOSS_TYPES", "mask_density", "sparsity_loss"]
