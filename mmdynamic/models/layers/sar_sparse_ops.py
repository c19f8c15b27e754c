# Copyright (c) mmdynamic contributors. All rights reserved.
"""oneDNN convolutions for CPU inference of the SAR sparse path and of the dense parts.

Eager PyTorch runs a stride-1 1x1 convolution of a batch below 16 on one thread with its own
kernel (``_slow_conv2d_forward``: a GEMM through the BLAS library) instead of oneDNN, and every
matrix product (``torch.addmm``) through that BLAS library. On the development VM (AMD EPYC with
AVX-512, MKL 2024.2, oneDNN 3.x) both run at about 55 GMAC/s, oneDNN's direct convolution at
105-130 GMAC/s on the same 1x1 shapes (batch 1, 14-56 px maps, 64-1024 channels) and at
65-85 GMAC/s on the pixel rows of the sparse path. This module calls oneDNN directly
(``torch.mkldnn_convolution``, the op ``F.conv2d`` dispatches to for every other shape) where
autograd is not needed, and falls back to ``F.conv2d`` otherwise (autograd on, other devices or
dtypes, a PyTorch built without oneDNN).

- :func:`conv_rows`: a 1x1 convolution on a pixel matrix (P, C_in) (one row per pixel) as a
  channels-last (1, C_in, P, 1) map, returning (P, C_out) without a copy.
- :func:`conv_windows`: a convolution with padding 0 on a batch of channels-last windows.
- :func:`use_onednn_convs`: route every ``nn.Conv2d`` of a model through oneDNN at inference (a
  deployment choice: apply it alike to a dynamic model and its baseline).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def onednn_usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``torch.mkldnn_convolution`` may run ``x`` with ``weight``: oneDNN present and
    enabled, float32 CPU tensors, no autograd graph to record and not inside ``torch.compile``
    (Inductor lowers ``F.conv2d`` to oneDNN itself, and its fake tensors cannot run the direct
    call with symbolic sizes)."""
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.compiler.is_compiling()
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch, 'mkldnn_convolution')
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride=1,
           padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (zero padding), through oneDNN whenever :func:`onednn_usable`.

    Args:
        x (Tensor): (N, C_in, H, W), preferably channels-last.
        weight (Tensor): (C_out, C_in / groups, k_h, k_w).
        bias (Tensor, optional): (C_out, ).
        stride, padding, dilation (int | tuple): As ``F.conv2d``.
        groups (int): As ``F.conv2d``.

    Returns:
        Tensor: (N, C_out, H_out, W_out); channels-last for a channels-last input on oneDNN.
    """
    if not onednn_usable(x, weight):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    pair = nn.modules.utils._pair
    return torch.mkldnn_convolution(x, weight, bias, list(pair(padding)), list(pair(stride)),
                                    list(pair(dilation)), groups)


def conv_rows(rows: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
              groups: int = 1) -> torch.Tensor:
    """A (grouped) 1x1 convolution on a pixel matrix.

    Args:
        rows (Tensor): (P, C_in), one row per pixel.
        weight (Tensor): (C_out, C_in / groups, 1, 1).
        bias (Tensor, optional): (C_out, ).
        groups (int): Groups of the conv. Defaults to 1.

    Returns:
        Tensor: (P, C_out) contiguous.
    """
    rows = rows.contiguous()
    pixels, channels = rows.shape
    if torch.compiler.is_compiling():
        return _rows_matmul(rows, weight, bias, groups)
    # (P, C) row-major is a channels-last (1, C, P, 1) map: no copy either way
    out = conv2d(rows.view(1, pixels, 1, channels).permute(0, 3, 1, 2), weight, bias,
                 groups=groups)
    return out.permute(0, 2, 3, 1).reshape(pixels, -1)


def _rows_matmul(rows: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 groups: int) -> torch.Tensor:
    """:func:`conv_rows` as (batched) matrix products, the form it takes under ``torch.compile``:
    Inductor runs them as GEMMs (oneDNN-packed with its freezing), and a (1, C, P, 1) map, both
    contiguous and channels-last, gets output strides from Inductor's oneDNN convolution that its
    own layout checks reject (torch 2.13).

    Args:
        rows (Tensor): (P, C_in) contiguous.
        weight (Tensor): (C_out, C_in / groups, 1, 1).
        bias (Tensor, optional): (C_out, ).
        groups (int): Groups of the conv.

    Returns:
        Tensor: (P, C_out).
    """
    pixels = rows.shape[0]
    matrix = weight.flatten(1)  # (C_out, C_in / G)
    if groups == 1:
        return F.linear(rows, matrix, bias)
    per_group = rows.view(pixels, groups, -1).transpose(0, 1)  # (G, P, C_in / G)
    out = torch.bmm(per_group, matrix.view(groups, -1, matrix.shape[1]).transpose(1, 2))
    out = out.transpose(0, 1).reshape(pixels, -1)  # (P, C_out), groups side by side
    return out if bias is None else out + bias


def conv_windows(windows: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 dilation: int, groups: int = 1) -> torch.Tensor:
    """A (grouped) k x k convolution with padding 0 on a batch of windows (cells with their halo).

    Args:
        windows (Tensor): (N, ph + 2 d (k // 2), pw + 2 d (k // 2), C_in) pixel-major windows.
        weight (Tensor): (C_out, C_in / groups, k, k).
        bias (Tensor, optional): (C_out, ).
        dilation (int): d.
        groups (int): Groups of the conv. Defaults to 1.

    Returns:
        Tensor: (N * ph * pw, C_out) rows, ordered (window, row, column) like the windows' pixels.
    """
    out = conv2d(windows.permute(0, 3, 1, 2), weight, bias, dilation=dilation, groups=groups)
    return out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])


class OneDNNConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose inference forward calls oneDNN for every shape (:func:`conv2d`); with
    autograd recording, other dtypes or devices it is ``nn.Conv2d``. Made by
    :func:`use_onednn_convs`."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: Optional[torch.Tensor]) -> torch.Tensor:
        if self.padding_mode != 'zeros' or isinstance(self.padding, str):
            return super()._conv_forward(input, weight, bias)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def use_onednn_convs(model: nn.Module) -> nn.Module:
    """Make every plain ``nn.Conv2d`` of ``model`` an :class:`OneDNNConv2d`, in place (same
    parameters, same outputs up to float rounding; subclasses such as mmcv's are left alone).

    Args:
        model (nn.Module): Any model.

    Returns:
        nn.Module: ``model``.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = OneDNNConv2d
    return model
