# Copyright (c) mmdynamic contributors. All rights reserved.
"""MACs of MGNet in the paper's convention (Table 1, Table 2) and from our counter.

The paper counts with fvcore (one multiply-add = one "FLOP"), convolutions and linear/matmul only:
batch norm, layer norm, pooling and ``grid_sample`` are not counted. Exit k costs

    k * MACs_conv(backbone at g x g) + sum_{t=1..k} (4 t d^2 + 2 t^2 d) + k * (d C + 3 d)

with d = D + 3: the attention is recomputed over all t tokens at every step and the global and
localisation classifiers run at every step. Our model computes the localisation of glimpse t + 1 at the
start of step t + 1, so its exit k has (k - 1) localisations (3 d MACs less than the paper, below
1e-5 G). :func:`count_mgnet_macs` counts the modules with MMEngine's counter in either convention.
"""
from typing import List, Sequence

import torch.nn as nn

from mmdynamic.utils.flops import count_macs

# Ops MMEngine's counter prices by default and the paper's fvcore count does not.
PAPER_UNCOUNTED_OPS = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm',
                       'aten::instance_norm', 'aten::upsample_nearest2d', 'aten::upsample_bilinear2d',
                       'aten::adaptive_avg_pool2d', 'aten::grid_sampler')


def mgnet_paper_macs(backbone_macs: float, feat_dim: int, num_classes: int, num_glimpses: int,
                     locations_per_exit: str = 'paper') -> List[float]:
    """Cumulative MACs of exits 1..T by the paper's formula.

    Args:
        backbone_macs (float): Conv (+ linear) MACs of one backbone pass at the glimpse size.
        feat_dim (int): D (d = D + 3).
        num_classes (int): C.
        num_glimpses (int): T.
        locations_per_exit (str): ``'paper'``: the localisation head runs at every step (k per exit
            k); ``'model'``: our step order, k - 1 per exit k.

    Returns:
        list[float]: (T, ) MACs of exits 1..T.
    """
    if locations_per_exit not in ('paper', 'model'):
        raise ValueError(f"locations_per_exit must be 'paper' or 'model', got {locations_per_exit}")
    d = feat_dim + 3
    out, total = [], 0.0
    for t in range(1, num_glimpses + 1):
        total += backbone_macs + 4 * t * d * d + 2 * t * t * d + d * num_classes
        locations = t if locations_per_exit == 'paper' else t - 1
        out.append(total + locations * 3 * d)
    return out


def count_mgnet_macs(model: nn.Module, input_shape: Sequence[int], convention: str = 'paper'
                     ) -> List[int]:
    """Cumulative MACs per sample of every exit of an :class:`MGNet`, counted from its modules.

    Args:
        model (MGNet): The model.
        input_shape (Sequence[int]): (C, H, W).
        convention (str): ``'paper'``: convolutions and linear/matmul only (fvcore as the paper
            used it); ``'mmengine'``: MMEngine's default handles (norms, pooling and sampling
            included), what :meth:`MGNet.exit_macs` and the budget tools use.

    Returns:
        list[int]: (T, ) MACs of exits 1..T.
    """
    if convention not in ('paper', 'mmengine'):
        raise ValueError(f"convention must be 'paper' or 'mmengine', got {convention}")
    if convention == 'mmengine':
        return model.exit_macs(input_shape)
    import torch
    param = next(model.parameters())
    inputs = torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device)
    return [
        count_macs(model, (inputs, ), fn=lambda x, n=n: model.forward_exits(x, num_steps=n),
                   op_handles={op: None for op in PAPER_UNCOUNTED_OPS})
        for n in range(1, model.num_exits + 1)
    ]
