# Copyright (c) mmdynamic contributors. All rights reserved.
"""Refuse a checkpoint that does not fit the model, instead of MMEngine's warning.

MMEngine loads test checkpoints with ``strict=False`` and only logs the missing and unexpected keys:
a checkpoint of another model then evaluates a partly random network without an error.
:func:`check_checkpoint_fits` compares the keys and shapes first and names what differs.
"""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

_SHOWN = 5  # names listed per kind of difference in an error message


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


def listing(names: Sequence[str], shown: int = _SHOWN) -> str:
    """``'a, b, c, ... (12 more)'``: the first ``shown`` names and how many are left out."""
    names = list(names)
    text = ', '.join(names[:shown])
    return text + (f', ... ({len(names) - shown} more)' if len(names) > shown else '')


def state_dict_differences(state_dict: Dict[str, torch.Tensor], model: nn.Module
                           ) -> Dict[str, List[str]]:
    """What keeps ``state_dict`` from loading strictly into ``model``.

    Returns:
        dict: ``missing`` (the model's keys absent from it), ``unexpected`` (its keys the model lacks)
        and ``shape`` (``'key: (its shape) vs (model shape)'``), each sorted.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shape = [f'{k}: {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}'
             for k in sorted(set(expected) & set(state_dict))
             if tuple(expected[k].shape) != tuple(state_dict[k].shape)]
    return dict(missing=missing, unexpected=unexpected, shape=shape)


def describe_differences(diff: Dict[str, List[str]], shape_note: str = '',
                         shown: int = _SHOWN) -> str:
    """The differences of :func:`state_dict_differences` as one sentence part per kind, with counts
    and the first ``shown`` names (``shape_note`` follows "differ in shape", e.g. ', file vs model')."""
    parts = []
    if diff['missing']:
        parts.append(f'{len(diff["missing"])} weights of the model are missing from it '
                     f'({listing(diff["missing"], shown)})')
    if diff['unexpected']:
        parts.append(f'{len(diff["unexpected"])} of its weights are not in the model '
                     f'({listing(diff["unexpected"], shown)})')
    if diff['shape']:
        parts.append(f'{len(diff["shape"])} weights differ in shape{shape_note} '
                     f'({listing(diff["shape"], shown)})')
    return '; '.join(parts)


def check_checkpoint_fits(model: nn.Module, path: str) -> None:
    """Raise ``ValueError`` when the checkpoint's weights do not match ``model``'s state dict.

    Args:
        model (nn.Module): The model (a DDP wrapper is unwrapped).
        path (str): The checkpoint file.
    """
    model = getattr(model, 'module', model)
    diff = state_dict_differences(checkpoint_state_dict(path), model)
    if not any(diff.values()):
        return
    raise ValueError(f'checkpoint {path} does not fit the model {type(model).__name__} of this '
                     f'config: {describe_differences(diff)}. Is it a checkpoint of another model '
                     'or config?')
