# Copyright (c) mmdynamic contributors. All rights reserved.
"""Adds SAR's sparsity loss to any framework's task model without forking it."""
from typing import Dict, Optional

import torch

from mmdynamic.models.losses.sparsity_loss import LOSS_TYPES, sparsity_loss


class SARLossMixin:
    """Mixin for task models (classifier, detector, segmentor) whose backbone is a SAR-ResNet.

    The subclass calls :meth:`_init_sparsity` in ``__init__`` and passes its task losses through
    :meth:`add_sparsity_loss`. Adds ``loss_sparsity = weight * L_refine(masks, current target)``, and logs
    ``density`` (mean over masks), ``density_m<i>`` (each mask) and ``gmacs`` (realised, per sample).
    The current target and the backbone temperature are set by
    :class:`~mmdynamic.engine.hooks.SARScheduleHook`; without the hook the final target is used.

    Args (of :meth:`_init_sparsity`, from the model config's ``sparsity`` dict):
        target (float): Final target density t. Defaults to 0.5.
        weight (float): lambda (0.5 ImageNet, 1 CIFAR). Defaults to 0.5.
        loss_type (str): 'batch' (Eq. 10), 'sample' (Eq. 11), 'group' (Eq. 10 for each group of a
            mask, so that a mask cannot meet the target by dropping whole groups) or 'total' (one
            budget for the mean density of all masks; see :func:`sparsity_loss`). Defaults to
            'batch'.

    With mask cells in pixels the loss and the logged densities weight every cell by its area
    cropped to the map (:meth:`SARResNet.mask_fractions`), as the realised MACs do.
    """

    def _init_sparsity(self, sparsity: Optional[Dict] = None) -> None:
        cfg = dict(target=0.5, weight=0.5, loss_type='batch')
        cfg.update(sparsity or {})
        unknown = set(cfg) - {'target', 'weight', 'loss_type'}
        if unknown:
            raise ValueError(f'unknown sparsity options {sorted(unknown)}; use target, weight, '
                             'loss_type')
        if not 0.0 <= cfg['target'] <= 1.0:
            raise ValueError(f"sparsity target must be in [0, 1], got {cfg['target']}")
        if cfg['loss_type'] not in LOSS_TYPES:
            raise ValueError(f"sparsity loss_type must be one of {LOSS_TYPES}, got "
                             f"{cfg['loss_type']!r}")
        if not hasattr(self.backbone, 'last_masks'):
            raise TypeError(f'{type(self).__name__} needs a SAR backbone (SARResNet or '
                            f'SARResNetCifar), got {type(self.backbone).__name__}')
        self.sparsity_cfg = cfg
        # the scheduled target; a plain attribute recomputed by the hook from the iteration
        self.current_target = float(cfg['target'])

    def add_sparsity_loss(self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Add the weighted sparsity loss and the density/MACs statistics to ``losses``."""
        backbone = self.backbone
        losses['loss_sparsity'] = self.sparsity_cfg['weight'] * sparsity_loss(
            backbone.last_loss_masks, self.current_target, self.sparsity_cfg['loss_type'],
            backbone.last_mask_sizes, backbone.last_mask_cells)
        with torch.no_grad():
            densities = backbone.density()
            losses['density'] = densities.mean()
            for i, d in enumerate(densities):
                losses[f'density_m{i}'] = d
            losses['gmacs'] = self.backbone.last_flops.float().mean() / 1e9
            losses['target_density'] = densities.new_tensor(self.current_target)
        return losses
