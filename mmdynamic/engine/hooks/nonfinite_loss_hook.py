# Copyright (c) mmdynamic contributors. All rights reserved.
"""Stop training at the first non-finite loss, naming the iteration and every loss term."""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook

from mmdynamic.registry import HOOKS, register_dual


def _as_floats(values: Dict) -> Dict[str, Optional[float]]:
    """Every value as a Python float (a tensor: its mean; None for empty tensors and non-numbers).

    The tensors (on the model's device) are stacked and copied to the host together: one device
    synchronisation per iteration instead of one per loss term.
    """
    tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor) and v.numel()}
    out: Dict[str, Optional[float]] = {
        k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        for k, v in values.items()}
    if tensors:
        means = torch.stack([v.detach().float().mean().to(next(iter(tensors.values())).device)
                             for v in tensors.values()])
        out.update(zip(tensors, means.tolist()))
    return out


@register_dual(HOOKS)
class NonFiniteLossHook(Hook):
    """Raise :class:`FloatingPointError` when a logged loss term of a training iteration is NaN or
    infinite.

    It runs before the checkpoint hook of the same iteration (priority ``ABOVE_NORMAL`` against the
    checkpoint hook's ``VERY_LOW``), so no checkpoint of the broken weights is written: the last
    checkpoint on disk is the last good one, and the error names it. ``tools/train.py`` adds this hook
    to every run (``--allow-nonfinite`` leaves it out).

    Args:
        keys (str): Substring of the logged values to check (default: every key containing 'loss').
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, keys: str = 'loss') -> None:
        self.keys = keys

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        if not outputs:
            return
        values = _as_floats({k: v for k, v in outputs.items() if self.keys in k})
        bad = [k for k, v in values.items() if v is not None and not math.isfinite(v)]
        if not bad:
            return
        terms = ', '.join(f'{k}={v:.4g}' for k, v in values.items() if v is not None)
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'the last checkpoint written, {last}, is kept (resume with --resume after fixing '
                'the cause)' if last else 'no checkpoint had been written yet')
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): {terms}; '
            f'training stopped before saving: {kept}. Typical causes: a learning rate too high for '
            'the batch size, a label out of range, or corrupt input values.')
