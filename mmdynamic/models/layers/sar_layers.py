# Copyright (c) mmdynamic contributors. All rights reserved.
"""Building blocks of SAR-ResNet: masks, mask generators, fusion attention and a MACs meter.

Spec: ``shared/specs/sar.md`` §2.4-2.6, §5. MACs follow the paper's code convention (one per
multiply-add; convs, linear layers, 3x3 pools at their output size and global pools are counted; BN,
ReLU, upsampling, additions and masking are not; masked refine convs cost their density times the dense
grouped cost).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer


class MacsMeter:
    """Per-sample MACs of one forward pass, filled by the blocks it is passed to.

    Args:
        batch_size (int): B.
        device (torch.device): Device of the per-sample tensor.
    """

    def __init__(self, batch_size: int, device: torch.device) -> None:
        self.static = 0.0
        self.dynamic = torch.zeros(batch_size, dtype=torch.float64, device=device)

    def add(self, macs: float) -> None:
        """Add MACs that every sample spends."""
        self.static += float(macs)

    def add_masked(self, macs: float, density: torch.Tensor) -> None:
        """Add ``macs`` x per-sample ``density`` (B, ) for a masked (refine) computation."""
        self.dynamic += float(macs) * density.detach().to(torch.float64)

    def total(self) -> torch.Tensor:
        """(B, ) MACs of each sample."""
        return self.dynamic + self.static


def conv_macs(conv: nn.Conv2d, out: torch.Tensor) -> float:
    """MACs of ``conv`` that produced ``out`` (N, C, H, W), per sample."""
    kh, kw = conv.kernel_size
    return conv.in_channels * conv.out_channels * kh * kw * out.shape[-2] * out.shape[-1] / conv.groups


def pool_macs(out: torch.Tensor, kernel: int = 3) -> float:
    """MACs of a k x k pool producing ``out`` (N, C, H, W), per sample."""
    return kernel * kernel * out.shape[1] * out.shape[-2] * out.shape[-1]


def gumbel_noise(logits: torch.Tensor, noise_scale: float = 1.0,
                 eps: float = 1e-10) -> torch.Tensor:
    """Gumbel(0, 1) noise shaped like ``logits``, times ``noise_scale`` (zeros at 0, drawing no
    random numbers)."""
    if noise_scale < 0:
        raise ValueError(f'noise_scale must be >= 0, got {noise_scale}')
    if noise_scale == 0:
        return torch.zeros_like(logits)
    uniform = torch.rand_like(logits)
    return -noise_scale * torch.log(eps - torch.log(uniform + eps))


def straight_through_gumbel(logits: torch.Tensor, tau: float, dim: int = 2,
                            eps: float = 1e-10, noise_scale: float = 1.0,
                            noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Hard Gumbel-softmax sample with straight-through gradient (SAR Eq. 8-9).

    Args:
        logits (Tensor): Unnormalised log-probabilities, the choices along ``dim``.
        tau (float): Temperature of the soft sample that carries the gradient.
        noise_scale (float): Factor on the Gumbel noise (1: the paper's sample; 0: the argmax of
            the logits, with the gradient of their softmax at ``tau``).
        noise (Tensor, optional): The noise to add (:func:`gumbel_noise`), e.g. the draw of
            another sample that must agree with this one; ``noise_scale`` is then not used.

    Returns:
        Tensor: One-hot in the forward pass, gradient of the softmax of (logits + noise) / tau.
    """
    if noise is None:
        noise = gumbel_noise(logits, noise_scale, eps)
    soft = F.softmax((logits + noise) / tau, dim=dim)
    hard = F.one_hot(soft.argmax(dim=dim), logits.shape[dim]).movedim(-1, dim).to(soft.dtype)
    return (hard - soft).detach() + soft


class MaskGenerator(nn.Module):
    """Region selection (SAR Eq. 2): per-group K x K masks from a base-branch feature.

    ``Conv3x3(C, 4G, groups=G) -> BN -> ReLU -> AdaptiveAvgPool(K) -> Conv1x1(4G, 2G, groups=G)``,
    reshaped to (B, G, 2, K, K) with choice 0 = skip, 1 = refine. The 1x1 bias starts at (1, 10) so that
    every patch is refined at the start, and its weights at N(0, 0.001) (the authors' ``alphaBase``
    init of the "gs" convs) so that every cell starts at the same refine probability: which cells to
    refine is then learnt from the task. With the ``1attFuse`` code's Kaiming init of this 1x1 conv
    (std about 0.7) the initial logits vary by several units between cells with the features, so a
    short fine-tuning started with the object's cells on the skip side (the demo's stage-1 masks
    refined the digit card in under 1 % of the images) and never moved them back.

    Args:
        in_channels (int): Channels of the base feature.
        groups (int): G, independent masks (each from its own channel slice).
        grid (int, optional): K, the fixed K x K grid. None: the grid is given to each forward call
            (mask cells of a fixed size in pixels, the grid derived from the input). No weight
            depends on it.
        hidden_per_group (int): Hidden channels per group. Defaults to 4.
        norm_cfg (dict): Norm layer config.
        bias_init (tuple[float, float]): Initial bias of (skip, refine). Defaults to (1, 10).
        weight_std (float, optional): Std of the initial 1x1 (``fc``) weights. None keeps the
            initialisation of the enclosing backbone (e.g. Kaiming). Defaults to 1e-3.
        centre (bool): Centre the pooled features of each image and channel over the K x K cells
            before the 1x1 conv, ``logit = w . (h - mean_cells h) + b`` (issue #19). A gradient
            that is the same on every cell (the sparsity loss) then moves only the bias, the
            mask's density, and the weights (where to refine) learn from the task gradient alone.
            Without it such a gradient moves ``w`` along sum_cells h, the direction of the largest
            features, so lowering the density lowers the object's logits first. Defaults to False.
        feature_bound (float, optional): Bound the pooled features of each cell and group to a norm
            below 1 before the 1x1 conv, ``h / (|h| + feature_bound)`` (issue #19; not in the paper or
            the authors' code), so that a logit moves at most by the size of its 1x1 weights. Without
            it the generator's 3x3 conv, BN and 1x1 weights form a product that grows the logits of
            the cells it singles out (the object) without bound: in the demo they reached +-50 to
            +-170 on the object against +-3 on the background, every mask group ending at one
            extreme, where the straight-through gradient vanishes. None: no bound (the paper).
            Defaults to None.
        share_groups (bool): One mask for all G groups, whose logits are the mean of the G
            groups' logits (issue #19; not in the paper or the authors' code): the forward returns
            (B, 1, 2, K_h, K_w). The weights keep their G groups, so the same checkpoints load
            with either setting. Defaults to False (a mask per group, the paper).
    """

    def __init__(self, in_channels: int, groups: int, grid: Optional[int],
                 hidden_per_group: int = 4,
                 norm_cfg: dict = dict(type='BN'), bias_init=(1.0, 10.0),
                 weight_std: Optional[float] = 1e-3, centre: bool = False,
                 feature_bound: Optional[float] = None, share_groups: bool = False) -> None:
        super().__init__()
        if in_channels % groups:
            raise ValueError(f'groups={groups} does not divide the {in_channels} base channels')
        if weight_std is not None and weight_std < 0:
            raise ValueError(f'weight_std must be >= 0, got {weight_std}')
        if feature_bound is not None and not feature_bound > 0:
            raise ValueError(f'feature_bound must be > 0 or None, got {feature_bound}')
        hidden = hidden_per_group * groups
        self.groups, self.grid, self.bias_init = groups, grid, tuple(bias_init)
        self.weight_std, self.centre, self.feature_bound = weight_std, centre, feature_bound
        self.hidden_per_group, self.share_groups = hidden_per_group, share_groups
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False, groups=groups)
        self.norm_name, norm = build_norm_layer(norm_cfg, hidden)
        self.add_module(self.norm_name, norm)
        self.pool = nn.AdaptiveAvgPool2d(grid) if grid is not None else None
        self.fc = nn.Conv2d(hidden, 2 * groups, 1, groups=groups)
        self.reset_bias()

    def bias_only(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, G, 2, K_h, K_w) of this generator, with a gradient that reaches only its
        1x1 bias (the same values): a loss on masks sampled from them changes how many cells the
        mask refines, not which (``mask_density_grad='bias'``)."""
        bias = self.fc.bias.view(1, self.groups, 2, 1, 1)
        if self.share_groups:
            bias = bias.mean(dim=1, keepdim=True)
        return logits.detach() + (bias - bias.detach())

    def reset_bias(self) -> None:
        """Start selecting everything, everywhere alike: the (skip, refine) bias ``bias_init`` and
        (unless ``weight_std`` is None) N(0, ``weight_std``) weights of the 1x1 conv."""
        with torch.no_grad():
            self.fc.bias[0::2] = self.bias_init[0]
            self.fc.bias[1::2] = self.bias_init[1]
            if self.weight_std is not None:
                nn.init.normal_(self.fc.weight, 0.0, self.weight_std)

    def forward(self, x: torch.Tensor, meter: Optional[MacsMeter] = None,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Mask logits of one base feature.

        Args:
            x (Tensor): (B, C, h, w).
            meter (MacsMeter, optional): Receives the MACs.
            grid (tuple[int, int], optional): (K_h, K_w) of this input; required when the generator
                has no fixed grid, otherwise it must be None or (K, K).

        Returns:
            Tensor: logits (B, G, 2, K_h, K_w) (choice 0 = skip, 1 = refine); (B, 1, 2, K_h, K_w)
            with ``share_groups``.
        """
        if grid is None:
            if self.grid is None:
                raise ValueError('this MaskGenerator has no fixed grid: pass grid=(K_h, K_w)')
            grid = (self.grid, self.grid)
        elif self.grid is not None and tuple(grid) != (self.grid, self.grid):
            raise ValueError(f'grid {tuple(grid)} differs from the fixed {self.grid}x{self.grid} '
                             'grid of this MaskGenerator')
        h = F.relu(getattr(self, self.norm_name)(self.conv(x)), inplace=True)
        pooled = self.pool(h) if self.pool is not None else F.adaptive_avg_pool2d(h, tuple(grid))
        if self.feature_bound is not None:
            per_group = pooled.unflatten(1, (self.groups, self.hidden_per_group))
            norm = per_group.norm(dim=2, keepdim=True)
            pooled = (per_group / (norm + self.feature_bound)).flatten(1, 2)
        if self.centre:
            pooled = pooled - pooled.mean(dim=(2, 3), keepdim=True)
        logits = self.fc(pooled)
        if meter is not None:
            meter.add(conv_macs(self.conv, h) + h.shape[1] * h.shape[-2] * h.shape[-1] +
                      conv_macs(self.fc, logits))
        logits = logits.view(x.shape[0], self.groups, 2, grid[0], grid[1])
        return logits.mean(dim=1, keepdim=True) if self.share_groups else logits


def masks_from_logits(logits: torch.Tensor, training: bool, tau: float,
                      stochastic: bool = False, noise_scale: float = 1.0,
                      noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Binary masks (B, G, K, K) from mask logits (B, G, 2, K, K).

    Training (or ``stochastic``): a hard straight-through Gumbel sample, its noise scaled by
    ``noise_scale`` (or the given ``noise``, (B, G, 2, K, K)). Otherwise the deterministic argmax
    (refine where the refine logit is larger).
    """
    if training or stochastic:
        return straight_through_gumbel(logits, tau, dim=2, noise_scale=noise_scale,
                                       noise=noise)[:, :, 1]
    return (logits[:, :, 1] > logits[:, :, 0]).to(logits.dtype)


def mask_grid_of(size: Sequence[int], cell_size: int) -> Tuple[int, int]:
    """Grid (K_h, K_w) = (ceil(H / c), ceil(W / c)) of c x c px mask cells on an H x W map."""
    return -(-int(size[0]) // cell_size), -(-int(size[1]) // cell_size)


def cell_areas(grid: Sequence[int], size: Sequence[int], cell_size: int,
               device=None, dtype=torch.float32) -> torch.Tensor:
    """Area in pixels of each c x c cell of a (K_h, K_w) grid over an H x W map: (K_h, K_w), the
    edge cells cropped to the map."""
    rows, cols = (
        (int(length) - torch.arange(int(cells), device=device) * cell_size).clamp(max=cell_size)
        for length, cells in zip(size, grid))
    return (rows[:, None] * cols).to(dtype=dtype)


def refined_fraction(mask: torch.Tensor, size: Sequence[int], cell_size: Optional[int] = None,
                     per_group: bool = False) -> torch.Tensor:
    """Per-sample fraction of the refined positions of an H x W map (all groups together).

    Args:
        mask (Tensor): (B, G, K_h, K_w) in {0, 1}.
        size (tuple[int, int]): (H, W) of the map.
        cell_size (int, optional): c px cells (the edge cells cropped to the map count with their
            cropped area). None (a fixed grid): the mean of the mask.
        per_group (bool): Keep the groups apart. Defaults to False.

    Returns:
        Tensor: (B, ), or (B, G) with ``per_group``.
    """
    if cell_size is None:
        fraction = mask.flatten(2).mean(dim=2)
    else:
        area = cell_areas(mask.shape[-2:], size, cell_size, mask.device, mask.dtype)
        fraction = (mask * area).sum(dim=(2, 3)) / (int(size[0]) * int(size[1]))
    return fraction if per_group else fraction.mean(dim=1)


def mask_fractions(masks: Sequence[torch.Tensor], sizes: Optional[Sequence[Sequence[int]]] = None,
                   cell_sizes: Optional[Sequence[Optional[int]]] = None,
                   per_group: bool = False) -> List[torch.Tensor]:
    """Per-sample refined fraction of each mask, area-weighted as the realised MACs are.

    Args:
        masks (Sequence[Tensor]): N masks (B, G, K_h, K_w), with or without gradient.
        sizes (Sequence[tuple[int, int]], optional): (H, W) of the map each mask gates. Needed
            only for the masks whose cell size is given.
        cell_sizes (Sequence[int | None], optional): c px cells of each mask (None: a fixed grid,
            the plain mask mean). None: every mask on a fixed grid.
        per_group (bool): Keep the groups of each mask apart. Defaults to False.

    Returns:
        list[Tensor]: N tensors (B, ) (or (B, G) with ``per_group``), each
        :func:`refined_fraction` of its mask.
    """
    if cell_sizes is None:
        return [refined_fraction(mask, mask.shape[-2:], per_group=per_group) for mask in masks]
    if len(cell_sizes) != len(masks) or (sizes is not None and len(sizes) != len(masks)):
        raise ValueError(f'{len(masks)} masks need as many cell sizes and map sizes, got '
                         f'{len(cell_sizes)} and {None if sizes is None else len(sizes)}')
    out = []
    for i, (mask, cell) in enumerate(zip(masks, cell_sizes)):
        if cell is not None and sizes is None:
            raise ValueError(f'mask {i} has {cell} px cells: its map size is needed')
        size = sizes[i] if sizes is not None else mask.shape[-2:]
        out.append(refined_fraction(mask, size, cell, per_group))
    return out


def expand_group_mask(mask: torch.Tensor, channels: int, size,
                      cell_size: Optional[int] = None) -> torch.Tensor:
    """Masks (B, G, K_h, K_w) -> (B, channels, H, W): group g covers channels [g C/G, (g+1) C/G).

    Args:
        mask (Tensor): (B, G, K_h, K_w).
        channels (int): C, a multiple of G.
        size (tuple[int, int]): (H, W) of the map.
        cell_size (int, optional): c, the cell size in pixels: every cell covers c x c pixels from
            the top-left corner and the cells of the last row / column are cropped to the map
            (``K_h = ceil(H / c)``, ``K_w = ceil(W / c)``). None (a fixed grid): nearest upsampling
            to ``size``, the same when K divides the map.

    Returns:
        Tensor: (B, C, H, W).
    """
    batch, groups = mask.shape[:2]
    if channels % groups:
        raise ValueError(f'groups={groups} does not divide {channels} channels')
    expanded = mask.repeat_interleave(channels // groups, dim=1)
    if cell_size is not None:
        if tuple(mask.shape[-2:]) != mask_grid_of(size, cell_size):
            raise ValueError(f'a {tuple(mask.shape[-2:])} mask grid does not fit {cell_size} px '
                             f'cells on a {tuple(size)} map')
        if cell_size > 1:
            expanded = expanded.repeat_interleave(cell_size, dim=2).repeat_interleave(
                cell_size, dim=3)
        return expanded[:, :, :size[0], :size[1]]
    if tuple(expanded.shape[-2:]) != tuple(size):
        expanded = F.interpolate(expanded, size=size, mode='nearest')
    return expanded


class ChannelAttentionFusion(nn.Module):
    """SAR Eq. 5: ``ReLU(a * up(x_base) + (1 - a) * x_refine)`` with ``a`` from the low-res base.

    ``a = sigmoid(FC(ReLU(FC(GAP(x_base)))))``, reduction 16, no biases, weights N(0, 0.01) (a ~ 0.5 at
    init). ``mode='add'`` gives the code's additive variant ``ReLU(up(x_base) + x_refine)``.
    """

    def __init__(self, channels: int, reduction: int = 16, mode: str = 'att') -> None:
        super().__init__()
        if mode not in ('att', 'add'):
            raise ValueError(f"fusion must be 'att' or 'add', got {mode!r}")
        self.mode = mode
        if mode == 'att':
            self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
            self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
            nn.init.normal_(self.fc1.weight, 0, 0.01)
            nn.init.normal_(self.fc2.weight, 0, 0.01)

    def forward(self, x_base: torch.Tensor, x_refine: torch.Tensor,
                meter: Optional[MacsMeter] = None) -> torch.Tensor:
        if self.mode == 'add':
            return F.relu(_add_upsampled(x_refine.clone(), x_base), inplace=True)
        pooled = x_base.mean(dim=(2, 3))
        a = torch.sigmoid(self.fc2(F.relu(self.fc1(pooled))))[:, :, None, None]
        if meter is not None:
            c = x_base.shape[1]
            meter.add(c * x_base.shape[-2] * x_base.shape[-1] + 2 * self.fc1.weight.numel() + c)
        return F.relu(_add_upsampled(x_refine * (1 - a), a * x_base), inplace=True)


def _add_upsampled(out: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """``out += up(low)`` in place, ``up`` = nearest upsampling to the size of ``out``.

    With an integer scale factor the low-resolution map is broadcast over a (h, s_h, w, s_w) view of
    ``out`` instead of being materialised at full resolution (same values as ``F.interpolate``).

    Args:
        out (Tensor): (B, C, H, W), updated in place (a fresh tensor: nothing saved for backward).
        low (Tensor): (B, C, h, w).
    """
    (batch, channels, height, width), (h, w) = out.shape, low.shape[-2:]
    if height % h or width % w:
        return out.add_(F.interpolate(low, size=(height, width), mode='nearest'))
    view = out.view(batch, channels, h, height // h, w, width // w)
    view.add_(low[:, :, :, None, :, None])
    return out
