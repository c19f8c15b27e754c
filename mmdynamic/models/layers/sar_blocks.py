# Copyright (c) mmdynamic contributors. All rights reserved.
"""Residual blocks of SAR-ResNet (``shared/specs/sar.md`` §2.1-2.3, §2.6).

Regular blocks (base branch, fusion blocks, the plain last stage) are torchvision-v1.5 style (stride on
the 3x3) with AvgPool(3, 2, 1) downsampling shortcuts, and an optional final ReLU. Refine blocks run at
full resolution with grouped convolutions whose inputs are masked per group.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from .sar_layers import (MacsMeter, conv_macs, expand_group_mask, pool_macs,
                         refined_fraction)


def _norm(norm_cfg: dict, channels: int, module: nn.Module, name: str) -> str:
    """Add a norm layer to ``module``; return its attribute name."""
    layer_name, layer = build_norm_layer(norm_cfg, channels, postfix=name)
    module.add_module(layer_name, layer)
    return layer_name


class _Shortcut(nn.Module):
    """AvgPool(3, 2, 1) when strided, then Conv1x1 + BN when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm_cfg: dict) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride, 1) if stride > 1 else None
        self.conv = None
        if in_channels != out_channels:
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.norm_name = _norm(norm_cfg, out_channels, self, '')

    def forward(self, x: torch.Tensor, meter: Optional[MacsMeter] = None) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
            if meter is not None:
                meter.add(pool_macs(x))
        if self.conv is not None:
            out = self.conv(x)
            if meter is not None:
                meter.add(conv_macs(self.conv, out))
            x = getattr(self, self.norm_name)(out)
        return x


def make_shortcut(in_channels: int, out_channels: int, stride: int,
                  norm_cfg: dict) -> Optional[_Shortcut]:
    if stride == 1 and in_channels == out_channels:
        return None
    return _Shortcut(in_channels, out_channels, stride, norm_cfg)


class _RegularBlock(nn.Module):
    """A residual block: (conv -> norm -> ReLU)* -> conv -> norm, plus the shortcut, optional ReLU."""
    shortcut: Optional[_Shortcut]
    last_relu: bool

    def conv_norms(self):
        """The (conv, norm) pairs in order."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, meter: Optional[MacsMeter] = None) -> torch.Tensor:
        """Args: x (Tensor): (B, C_in, H, W). Returns: (B, C_out, H / stride, W / stride)."""
        layers = self.conv_norms()
        h, macs = x, 0.0
        for i, (conv, norm) in enumerate(layers):
            h = conv(h)
            macs += conv_macs(conv, h)
            h = norm(h)
            if i < len(layers) - 1:
                h = F.relu(h, inplace=True)  # h is a fresh conv / norm output
        res = x if self.shortcut is None else self.shortcut(x, meter)
        if meter is not None:
            meter.add(macs)
        out = h.add_(res)  # neither the conv nor the norm backward needs h
        return F.relu(out, inplace=True) if self.last_relu else out


class SARBasicBlock(_RegularBlock):
    """Regular BasicBlock (3x3, 3x3). Args as :class:`SARBottleneck`."""
    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 last_relu: bool = True, norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, dilation, dilation, bias=False)
        self.norm1_name = _norm(norm_cfg, planes, self, '1')
        self.conv2 = nn.Conv2d(planes, out_channels, 3, 1, dilation, dilation, bias=False)
        self.norm2_name = _norm(norm_cfg, out_channels, self, '2')
        self.shortcut = make_shortcut(in_channels, out_channels, stride, norm_cfg)
        self.last_relu = last_relu

    def conv_norms(self):
        return [(self.conv1, getattr(self, self.norm1_name)), (self.conv2, self.last_norm)]

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.norm2_name)


class SARBottleneck(_RegularBlock):
    """Regular Bottleneck (1x1, 3x3 with the stride, 1x1 x4).

    Args:
        in_channels (int): Input channels.
        planes (int): Width of the 3x3; the output has ``4 * planes`` channels.
        stride (int): Stride of the 3x3 (and of the AvgPool shortcut).
        dilation (int): Dilation of the 3x3.
        last_relu (bool): Apply the final ReLU. Defaults to True.
        norm_cfg (dict): Norm layer config.
    """
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 last_relu: bool = True, norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.norm1_name = _norm(norm_cfg, planes, self, '1')
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.norm2_name = _norm(norm_cfg, planes, self, '2')
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.norm3_name = _norm(norm_cfg, out_channels, self, '3')
        self.shortcut = make_shortcut(in_channels, out_channels, stride, norm_cfg)
        self.last_relu = last_relu

    def conv_norms(self):
        return [(self.conv1, getattr(self, self.norm1_name)),
                (self.conv2, getattr(self, self.norm2_name)), (self.conv3, self.last_norm)]

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.norm3_name)


class _RefineBase(nn.Module):
    """Common parts of the masked refine blocks.

    ``sparse_infer`` (set by the backbone): in eval mode, compute only the selected patches by
    gather-convolve-scatter (:func:`mmdynamic.models.layers.sar_sparse.sparse_refine_forward`), which
    equals this dense masked computation. With a fixed grid (``mask_cell_size`` None) patches must
    tile the feature map: a map that the mask grid does not divide raises an error (pad the inputs,
    or turn ``sparse_infer`` off); the dense path upsamples the mask to the map (nearest).

    ``mask_cell_size`` (set by the SAR stage): mask cells of c x c pixels from the top-left corner,
    the grid is (ceil(H / c), ceil(W / c)) and the cells of the last row / column are cropped to the
    map (the mask repeated c times along each axis, then cropped to H x W). The sparse path pads the
    map internally to whole cells and gives the same result for every map size.

    The output is ``F(x * m) + shortcut(x)``: every conv input is masked with its group's mask, the last
    BN output is not (as in the authors' code). In a Bottleneck (last conv 1x1) unselected positions
    therefore get the constant ``BN_last(0)``; in a BasicBlock (last conv 3x3) that holds only farther
    than the dilation from a selected patch, the 3x3 spreads the refined values into the halo. With
    ``mask_output`` the block is ``x + m * F(x * m)``: exactly no change where nothing is selected.
    The shortcut (1x1 conv + BN, only when the width changes) is dense and unmasked.

    ``sparse_impl``: the sparse path's implementation, ``'halo'`` (default; cells gathered with
    their halo, oneDNN convolutions) or ``'gemm'`` (the reference: matrix products on im2col rows);
    set it on a whole model with :func:`mmdynamic.models.layers.sar_sparse.set_sparse_impl`.
    """
    expansion = 1
    sparse_infer = False
    sparse_impl = 'halo'
    mask_cell_size: Optional[int] = None

    def _use_sparse(self, x: torch.Tensor, mask: torch.Tensor) -> bool:
        if not self.sparse_infer or self.training:
            return False
        if self.mask_cell_size is not None:
            return True  # partial edge cells are handled by padding to whole cells
        grid_h, grid_w = mask.shape[-2:]
        height, width = x.shape[-2:]
        if height % grid_h or width % grid_w:
            raise ValueError(
                f'sparse_infer: the {height}x{width} feature map of this refine block is not '
                f'divisible by its {grid_h}x{grid_w} mask grid, so the patches do not tile it. Pad '
                'the inputs so that every SAR stage\'s map is a multiple of its grid (e.g. '
                '`pad_size_divisor` of the data preprocessor = stage stride x grid), choose a '
                'mask_grid that divides the maps, or use the dense path (sparse_infer=False).')
        return True

    def _init_shortcut(self, in_channels: int, out_channels: int, norm_cfg: dict) -> None:
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = _Shortcut(in_channels, out_channels, 1, norm_cfg)

    def _finish(self, h: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                meter: Optional[MacsMeter]) -> torch.Tensor:
        if self.mask_output:
            h = h * expand_group_mask(mask, h.shape[1], h.shape[-2:], self.mask_cell_size)
        res = x if self.shortcut is None else self.shortcut(x, meter)
        if meter is not None:
            meter.add_masked(self.dense_macs(h.shape[-2:]),
                             refined_fraction(mask, h.shape[-2:], self.mask_cell_size))
        out = h + res
        return F.relu(out) if self.last_relu else out

    def dense_macs(self, size) -> float:
        """MACs of the grouped convs if every position were refined, per sample."""
        area = size[0] * size[1]
        return sum(c.in_channels * c.out_channels * c.kernel_size[0] * c.kernel_size[1] / c.groups
                   for c in self.masked_convs()) * area

    def conv_norms(self):
        """The masked (conv, norm) pairs in order."""
        raise NotImplementedError

    def masked_convs(self):
        return tuple(conv for conv, _ in self.conv_norms())

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                meter: Optional[MacsMeter] = None) -> torch.Tensor:
        """Args: x (Tensor): (B, C_in, H, W). mask (Tensor): (B, G, K_h, K_w) in {0, 1}.

        Every conv input is multiplied by the group masks, each conv but the last is followed by its
        norm and a ReLU, the last by its norm only.
        """
        if self._use_sparse(x, mask):
            from .sar_sparse import sparse_refine_forward
            return sparse_refine_forward(self, x, mask, meter)
        size = x.shape[-2:]
        expanded = {}  # the expanded mask per channel count, shared by convs of equal width
        layers = self.conv_norms()
        h = x
        for i, (conv, norm) in enumerate(layers):
            channels = h.shape[1]
            if channels not in expanded:
                expanded[channels] = expand_group_mask(mask, channels, size, self.mask_cell_size)
            h = norm(conv(h * expanded[channels]))
            if i < len(layers) - 1:
                h = F.relu(h)
        return self._finish(h, x, mask, meter)


class RefineBasicBlock(_RefineBase):
    """Masked, grouped BasicBlock: x*m -> conv3x3_g -> BN -> ReLU -> *m -> conv3x3_g -> BN (+res).

    Args:
        in_channels (int): Input channels.
        planes (int): Output channels.
        groups (int): G; channel slice g is gated by mask g.
        dilation (int): Dilation of the 3x3 convs.
        last_relu (bool): Final ReLU.
        mask_output (bool): Also mask the block's output (see :class:`_RefineBase`).
        norm_cfg (dict): Norm layer config.
    """
    expansion = 1

    def __init__(self, in_channels: int, planes: int, groups: int = 1, dilation: int = 1,
                 last_relu: bool = True, mask_output: bool = False,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        for c in (in_channels, planes):
            if c % groups:
                raise ValueError(f'groups={groups} does not divide {c} channels')
        self.groups, self.dilation = groups, dilation
        self.conv1 = nn.Conv2d(in_channels, planes, 3, 1, dilation, dilation, groups=groups,
                               bias=False)
        self.norm1_name = _norm(norm_cfg, planes, self, '1')
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, groups=groups, bias=False)
        self.norm2_name = _norm(norm_cfg, planes, self, '2')
        self._init_shortcut(in_channels, planes, norm_cfg)
        self.last_relu, self.mask_output = last_relu, mask_output

    def conv_norms(self):
        return [(self.conv1, getattr(self, self.norm1_name)), (self.conv2, self.last_norm)]

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.norm2_name)


class RefineBottleneck(_RefineBase):
    """Masked, grouped Bottleneck: x*m -> 1x1_g -> BN -> ReLU -> *m -> 3x3_g -> BN -> ReLU -> *m ->
    1x1_g -> BN (+res). Output channels ``4 * planes``. Args as :class:`RefineBasicBlock`."""
    expansion = 4

    def __init__(self, in_channels: int, planes: int, groups: int = 1, dilation: int = 1,
                 last_relu: bool = True, mask_output: bool = False,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        for c in (in_channels, planes):
            if c % groups:
                raise ValueError(f'groups={groups} does not divide {c} channels')
        self.groups, self.dilation = groups, dilation
        self.conv1 = nn.Conv2d(in_channels, planes, 1, groups=groups, bias=False)
        self.norm1_name = _norm(norm_cfg, planes, self, '1')
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, groups=groups, bias=False)
        self.norm2_name = _norm(norm_cfg, planes, self, '2')
        self.conv3 = nn.Conv2d(planes, out_channels, 1, groups=groups, bias=False)
        self.norm3_name = _norm(norm_cfg, out_channels, self, '3')
        self._init_shortcut(in_channels, out_channels, norm_cfg)
        self.last_relu, self.mask_output = last_relu, mask_output

    def conv_norms(self):
        return [(self.conv1, getattr(self, self.norm1_name)),
                (self.conv2, getattr(self, self.norm2_name)), (self.conv3, self.last_norm)]

    @property
    def last_norm(self) -> nn.Module:
        return getattr(self, self.norm3_name)
