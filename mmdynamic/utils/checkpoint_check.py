# Copyright (c) mmdynamic contributors. All rights reserved.
"""Refuse a checkpoint that does not fit the model, instead of MMEngine's warning.

MMEngine loads test checkpoints with ``strict=False`` and only logs the missing and unexpected keys:
a checkpoint of another model then evaluates a partly random network without an error.
:func:`check_checkpoint_fits` compares the keys and shapes first and names what differs.
"""
from typing import Dict, List

import torch
import torch.nn as nn

_SHOWN = 5


def checkpoint_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The weights of an MMEngine (or plain) checkpoint, without a DDP ``module.`` prefix."""
    from .run_config import is_complete_checkpoint
    if not is_complete_checkpoint(path):
        raise ValueError(f'checkpoint {path} is truncated or not a torch checkpoint')
    ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'checkpoint {path} holds no state dict')
    if state and all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def _listing(keys: List[str]) -> str:
    shown = ', '.join(keys[:_SHOWN])
    return shown + (f', ... ({len(keys) - _SHOWN} more)' if len(keys) > _SHOWN else '')


def check_checkpoint_fits(model: nn.Module, path: str) -> None:
    """Raise ``ValueError`` when the checkpoint's weights do not match ``model``'s state dict.

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        path (str): The checkpoint file.
    """
    model = getattr(model, 'module', model)
    expected = model.state_dict()
    state = checkpoint_state_dict(path)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state)
                    if tuple(expected[k].shape) != tuple(state[k].shape))
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f'{len(missing)} weights of the model are missing from it ({_listing(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} of its weights are not in the model '
                     f'({_listing(unexpected)})')
    if shapes:
        shown = [f'{k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}' for k in shapes]
        parts.append(f'{len(shapes)} weights differ in shape ({_listing(shown)})')
    raise ValueError(f'checkpoint {path} does not fit the model {type(model).__name__} of this '
                     f'config: ' + '; '.join(parts) + '. Is it a checkpoint of another model or '
                     'config?')
