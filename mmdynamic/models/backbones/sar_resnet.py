# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR-ResNet: Spatially Adaptive feature Refinement (Han et al., IEEE TIP 2021).

Spec: ``shared/specs/sar.md``. Each of the first three ResNet stages becomes a SAR module: a base
branch at low resolution, a refine branch at full resolution whose grouped convs only process the
patches that per-block mask generators select, a fusion (channel attention, Eq. 5, or the sum) and one
regular fusion block that carries the stage's stride. The last stage stays plain.

Layouts follow the authors' code (``yizenghan/sarNet``), so that an official checkpoint maps one to one
onto these modules: ImageNet ``sar_resnet_1attFuse`` (attention fusion; ResNet-101 stages (4, 8, 18, 3);
optional deep stem ``use_stem``) and CIFAR ``sar_resnet_cifar3stage_alphaBase`` (additive fusion).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdynamic.registry import MODELS, register_dual

from ..layers.sar_blocks import (RefineBasicBlock, RefineBottleneck, SARBasicBlock,
                                 SARBottleneck, _Shortcut)
from ..layers.sar_layers import (ChannelAttentionFusion, MacsMeter, MaskGenerator, conv_macs,
                                 gumbel_noise, mask_fractions, mask_grid_of, masks_from_logits,
                                 pool_macs)

MASK_SHARING = ('block', 'stage')
MASK_DENSITY_GRAD = ('all', 'bias')
BLOCKS = {
    'basic': (SARBasicBlock, RefineBasicBlock),
    'bottleneck': (SARBottleneck, RefineBottleneck),
}


class StageMasks(NamedTuple):
    """The masks of one SAR stage's forward, one entry per mask.

    Attributes:
        masks (list[Tensor]): (B, G, K_h, K_w) masks gating the refine blocks (with the
            straight-through gradient in training).
        logits (list[Tensor]): Their logits (B, G, 2, K_h, K_w) (choice 0 = skip, 1 = refine).
        loss_masks (list[Tensor]): What the sparsity loss reads: the same values as ``masks``;
            with ``mask_density_grad='bias'`` their gradient reaches only the generators' biases.
    """
    masks: List[torch.Tensor]
    logits: List[torch.Tensor]
    loss_masks: List[torch.Tensor]


def _mask_layout(mask_grid: Optional[Sequence[int]], mask_cell_size: Optional[Sequence[int]],
                 default_grid: Sequence[int], num_stages: int
                 ) -> Tuple[List[Optional[int]], List[Optional[int]]]:
    """Per-stage (grid, cell size) from the backbone options; exactly one of each pair is None.

    Args:
        mask_grid (Sequence[int], optional): Fixed K of each SAR stage.
        mask_cell_size (Sequence[int], optional): Cell size in pixels of each SAR stage.
        default_grid (Sequence[int]): The grid when neither is given.
        num_stages (int): Number of SAR stages.
    """
    if mask_grid is not None and mask_cell_size is not None:
        raise ValueError('give exactly one of mask_grid (a fixed grid, e.g. (14, 7, 2)) and '
                         'mask_cell_size (cells in pixels, e.g. (4, 4, 7)), got '
                         f'mask_grid={tuple(mask_grid)} and mask_cell_size={tuple(mask_cell_size)}'
                         '; set the other one to None (in a config: mask_grid=None)')
    none = [None] * num_stages
    if mask_cell_size is None:
        grid = tuple(default_grid if mask_grid is None else mask_grid)
        if len(grid) != num_stages:
            raise ValueError(f'mask_grid takes {num_stages} values (SAR stages), got {grid}')
        return [int(k) for k in grid], none
    cells = tuple(mask_cell_size)
    if len(cells) != num_stages or not all(isinstance(c, int) and c >= 1 for c in cells):
        raise ValueError(f'mask_cell_size takes {num_stages} positive ints (SAR stages), got '
                         f'{cells}')
    return none, list(cells)


class SARStage(nn.Module):
    """One SAR module: replaces a ResNet stage of ``num_blocks`` blocks (sar.md §2.2).

    Args:
        block (str): 'basic' or 'bottleneck'.
        in_channels (int): Input channels C0.
        planes (int): Planes of the stage; the output has ``planes * expansion`` = C channels.
        num_blocks (int): Blocks of the ResNet stage (>= 2): ``num_blocks - 1`` base and refine blocks
            and one fusion block.
        groups (int): G, refine sub-branches (independent masks).
        alpha (int): Channel compression of the base branch.
        beta (int): Widening of the refine branch.
        base_scale (int): Downsampling s of the base branch (2 or 4).
        grid (int, optional): K, a fixed K x K mask grid. None when ``cell_size`` is given.
        fusion (str): 'att' (Eq. 5) or 'add'.
        fusion_stride (int): Stride of the fusion block.
        dilation (int): Dilation of the refine and fusion 3x3 convs.
        mask_output (bool): See :class:`RefineBottleneck`.
        norm_cfg (dict): Norm layer config.
        mask_bias_init (tuple[float, float]): Initial (skip, refine) bias of the mask generators.
        cell_size (int, optional): c, mask cells of c x c pixels of the stage's input map instead
            of a fixed grid: an H x W map gets a (ceil(H / c), ceil(W / c)) grid, the last row /
            column of cells cropped to the map. Exactly one of ``grid`` and ``cell_size`` is given.
        mask_centre (bool): Centre the mask generators' pooled features over the cells (see
            :class:`MaskGenerator`). Defaults to False.
        mask_feature_bound (float, optional): ``feature_bound`` of the mask generators (see
            :class:`MaskGenerator`). Defaults to None.
        mask_sharing (str): 'block' (the paper): one mask generator per refine block, fed by the
            matching base block; 'stage': one generator, fed by the first base block, whose mask
            gates every refine block of the stage. Defaults to 'block'.
        mask_density_grad (str): Which mask-generator weights the sparsity loss trains: 'all'
            (the paper) or 'bias' (the 1x1 biases only, so that the loss sets how many cells a mask
            refines and the task alone which; see :class:`SARResNet`). Defaults to 'all'.
        share_group_masks (bool): One mask for the G groups (the mean of the groups' logits,
            see :class:`MaskGenerator`), recorded and applied as G equal group masks. Defaults to
            False (a mask per group, the paper).
    """

    def __init__(self, block: str, in_channels: int, planes: int, num_blocks: int, groups: int,
                 alpha: int, beta: int, base_scale: int, grid: Optional[int], fusion: str = 'att',
                 fusion_stride: int = 2, dilation: int = 1, mask_output: bool = False,
                 norm_cfg: dict = dict(type='BN'), mask_bias_init=(1.0, 10.0),
                 cell_size: Optional[int] = None, mask_centre: bool = False,
                 mask_feature_bound: Optional[float] = None, mask_sharing: str = 'block',
                 mask_density_grad: str = 'all', share_group_masks: bool = False) -> None:
        super().__init__()
        if mask_sharing not in MASK_SHARING:
            raise ValueError(f'mask_sharing must be one of {MASK_SHARING}, got {mask_sharing!r}')
        if mask_density_grad not in MASK_DENSITY_GRAD:
            raise ValueError(f'mask_density_grad must be one of {MASK_DENSITY_GRAD}, got '
                             f'{mask_density_grad!r}')
        self.mask_density_grad = mask_density_grad
        if (grid is None) == (cell_size is None):
            raise ValueError('a SAR stage takes exactly one of grid (a fixed K x K mask grid) and '
                             f'cell_size (mask cells in pixels), got grid={grid}, '
                             f'cell_size={cell_size}')
        for name, value in (('grid', grid), ('cell_size', cell_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        regular, refine = BLOCKS[block]
        exp = regular.expansion
        channels = planes * exp
        if num_blocks < 2:
            raise ValueError(f'a SAR stage needs at least 2 blocks, got {num_blocks}')
        if planes % alpha:
            raise ValueError(f'alpha={alpha} does not divide the {planes} planes of the stage')
        if base_scale not in (2, 4):
            raise ValueError(f'base_scale must be 2 or 4, got {base_scale}')
        if (planes * beta) % groups or in_channels % groups:
            raise ValueError(f'groups={groups} does not divide the refine channels '
                             f'({in_channels} in, {planes * beta} planes)')
        base_planes = planes // alpha
        n = num_blocks - 1
        self.grid, self.cell_size, self.groups = grid, cell_size, groups
        self.prepool = nn.AvgPool2d(3, 2, 1) if base_scale == 4 else None
        self.base = nn.ModuleList(
            regular(in_channels if i == 0 else base_planes * exp, base_planes,
                    stride=2 if i == 0 else 1, last_relu=(i < n - 1) or alpha > 1,
                    norm_cfg=norm_cfg) for i in range(n))
        self.masks = nn.ModuleList(
            MaskGenerator(base_planes * exp, groups, grid, norm_cfg=norm_cfg,
                          bias_init=mask_bias_init, centre=mask_centre,
                          feature_bound=mask_feature_bound, share_groups=share_group_masks)
            for _ in range(n if mask_sharing == 'block' else 1))
        self.refine = nn.ModuleList(
            refine(in_channels if i == 0 else planes * beta * exp, planes * beta, groups=groups,
                   dilation=dilation, last_relu=(i < n - 1) or beta > 1, mask_output=mask_output,
                   norm_cfg=norm_cfg) for i in range(n))
        for refine in self.refine:
            refine.mask_cell_size = cell_size
        self.base_transform = (_Shortcut(base_planes * exp, channels, 1, norm_cfg)
                               if alpha != 1 else None)
        self.refine_transform = (_Shortcut(planes * beta * exp, channels, 1, norm_cfg)
                                 if beta != 1 else None)
        self.fuse = ChannelAttentionFusion(channels, mode=fusion)
        self.fusion_block = regular(channels, planes, stride=fusion_stride, dilation=dilation,
                                    norm_cfg=norm_cfg)
        self.out_channels = channels

    def forward(self, x: torch.Tensor, tau: float, stochastic: bool = False,
                meter: Optional[MacsMeter] = None, noise_scale: float = 1.0
                ) -> Tuple[torch.Tensor, torch.Tensor, StageMasks]:
        """Args: x (Tensor): (B, C0, H, W); tau: Gumbel temperature; noise_scale: factor on the
        Gumbel noise of sampled masks (:func:`straight_through_gumbel`).

        Returns:
            tuple: the fused map before the fusion block (B, C, H, W), the stage output
            (B, C, H / stride, W / stride) and its :class:`StageMasks`, each mask (B, G, K_h, K_w)
            (K_h = K_w = K with a fixed grid, (ceil(H / c), ceil(W / c)) with ``cell_size`` c):
            one per refine block, or one for the stage with ``mask_sharing='stage'``.
        """
        grid = None if self.cell_size is None else mask_grid_of(x.shape[-2:], self.cell_size)
        x_base = x
        if self.prepool is not None:
            x_base = self.prepool(x_base)
            if meter is not None:
                meter.add(pool_macs(x_base))
        x_ref = x
        out = StageMasks([], [], [])
        for i, (base, refine) in enumerate(zip(self.base, self.refine)):
            x_base = base(x_base, meter)
            if i < len(self.masks):  # every block, or only the first with a stage-shared mask
                self._add_mask(out, self.masks[i], x_base, tau, stochastic, noise_scale, meter,
                               grid)
            x_ref = refine(x_ref, out.masks[-1], meter)
        if self.base_transform is not None:
            x_base = self.base_transform(x_base, meter)
        if self.refine_transform is not None:
            x_ref = self.refine_transform(x_ref, meter)
        fused = self.fuse(x_base, x_ref, meter)
        return fused, self.fusion_block(fused, meter), out

    def _add_mask(self, out: StageMasks, generator: MaskGenerator, x_base: torch.Tensor,
                  tau: float, stochastic: bool, noise_scale: float,
                  meter: Optional[MacsMeter], grid: Optional[Tuple[int, int]]) -> None:
        """Append the logits, mask and loss mask of ``generator`` on ``x_base`` to ``out``, each
        with the stage's G groups (a mask shared by the groups is sampled once and repeated)."""
        logits = generator(x_base, meter, grid)
        if not (self.training and self.mask_density_grad == 'bias'):
            mask = masks_from_logits(logits, self.training, tau, stochastic, noise_scale)
            loss_mask = mask
        else:
            # one draw of the noise for both, so the loss mask has the values of the sampled mask
            noise = gumbel_noise(logits, noise_scale)
            mask = masks_from_logits(logits, True, tau, noise=noise)
            loss_mask = masks_from_logits(generator.bias_only(logits), True, tau, noise=noise)
        out.logits.append(self._per_group(logits))
        out.masks.append(self._per_group(mask))
        out.loss_masks.append(self._per_group(loss_mask))

    def _per_group(self, tensor: torch.Tensor) -> torch.Tensor:
        """(B, 1, ...) of a mask shared by the groups -> (B, G, ...); per-group tensors as they
        are."""
        return tensor.expand(-1, self.groups, *tensor.shape[2:])


class _MaskRecord:
    """The masks of one backbone forward, gathered stage by stage (lists, one entry per mask)."""

    def __init__(self) -> None:
        self.masks: List[torch.Tensor] = []
        self.logits: List[torch.Tensor] = []
        self.loss_masks: List[torch.Tensor] = []
        self.sizes: List[Tuple[int, int]] = []
        self.cells: List[Optional[int]] = []

    def extend(self, stage: StageMasks, size: Tuple[int, int], cell: Optional[int]) -> None:
        """Add a stage's masks, which gate an H x W = ``size`` map in ``cell`` px cells."""
        self.masks += stage.masks
        self.logits += stage.logits
        self.loss_masks += stage.loss_masks
        self.sizes += [size] * len(stage.masks)
        self.cells += [cell] * len(stage.masks)


class _SARBackboneMixin:
    """State and API shared by the ImageNet and CIFAR SAR backbones.

    After each forward: ``last_masks`` (list of (B, G, K_h, K_w), with the straight-through gradient
    in training), ``last_mask_logits`` (their logits, (B, G, 2, K_h, K_w)), ``last_loss_masks``
    (what the sparsity loss reads, see ``mask_density_grad``), ``last_mask_sizes`` ((H, W) of the
    map each mask gates), ``last_mask_cells`` (its cell size in pixels, None on a fixed grid) and
    ``last_flops`` ((B, ) realised MACs of each sample). ``tau`` (Gumbel temperature) and
    ``gumbel_noise`` (the factor on the Gumbel noise of training masks) are set by
    :class:`~mmdynamic.engine.hooks.SARScheduleHook`.
    """
    tau: float
    gumbel_noise: float
    last_masks: List[torch.Tensor]
    last_mask_logits: List[torch.Tensor]
    last_loss_masks: List[torch.Tensor]
    last_mask_sizes: List[Tuple[int, int]]
    last_mask_cells: List[Optional[int]]
    last_flops: Optional[torch.Tensor]

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def init_weights(self) -> None:
        """``init_cfg`` first (e.g. ``Pretrained``); without a pretrained checkpoint the SAR init."""
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self._init_sar_weights()

    def set_sparse_infer(self, enabled: bool = True) -> None:
        """Compute only the selected patches in eval mode (gather-convolve-scatter, exact)."""
        self.sparse_infer = enabled
        for m in self.modules():
            if isinstance(m, (RefineBasicBlock, RefineBottleneck)):
                m.sparse_infer = enabled

    def _noise_scale(self) -> float:
        """Gumbel noise factor of the masks of this forward: ``gumbel_noise`` in training, 1 for
        the official-style stochastic evaluation (``eval_stochastic``)."""
        return self.gumbel_noise if self.training else 1.0

    def mask_fractions(self) -> List[torch.Tensor]:
        """Refined fraction of the map of each mask of the last forward, per sample: a list of
        (B, ) tensors (with the masks' gradient in training). With cells in pixels every cell
        counts with its area cropped to the map, as in the realised MACs; on a fixed grid it is
        the plain mask mean."""
        return mask_fractions(self.last_masks, self.last_mask_sizes, self.last_mask_cells)

    def density(self) -> torch.Tensor:
        """Per-mask mean density of the last forward (area-weighted, :meth:`mask_fractions`):
        (num_masks, )."""
        return torch.stack([f.detach().float().mean() for f in self.mask_fractions()])

    def _record_masks(self, record: _MaskRecord, meter: MacsMeter) -> None:
        self.last_masks, self.last_mask_logits = record.masks, record.logits
        self.last_loss_masks = record.loss_masks
        self.last_mask_sizes, self.last_mask_cells = record.sizes, record.cells
        self.last_flops = meter.total()

    def _init_sar_weights(self) -> None:
        """Kaiming fan-out convs, unit BNs, zero last-BN of regular blocks, select-all masks."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, MaskGenerator):
                m.reset_bias()
            elif isinstance(m, ChannelAttentionFusion) and m.mode == 'att':
                nn.init.normal_(m.fc1.weight, 0, 0.01)
                nn.init.normal_(m.fc2.weight, 0, 0.01)
            elif self.zero_init_residual and isinstance(m, (SARBottleneck, SARBasicBlock)):
                nn.init.zeros_(m.last_norm.weight)


@register_dual(MODELS)
class SARResNet(_SARBackboneMixin, BaseModule):
    """SAR-ResNet for ImageNet-size inputs, usable as an mmpretrain/mmdet/mmseg backbone.

    Outputs (``out_indices``), like mmdet's ResNet for FPN (sar.md §7.3): 0 = SAR-1 fused map before
    its fusion block (stride 4, 4x64 ch for depth 50), 1 = SAR-2 likewise (stride 8), 2 = SAR-3 output
    (stride 16), 3 = stage-4 output (stride 32). With ``strides=(2, 1, 1, 1)`` and
    ``dilations=(1, 1, 2, 4)`` the last three are at stride 8 (DeepLabV3/PSPNet).

    Args:
        depth (int): 34, 50 or 101. The stage blocks follow the authors' code: (3, 4, 6, 3) for 34 and
            50, (4, 8, 18, 3) for 101 (3 + 7 + 17 = 27 masks, sar.md §1; torchvision's ResNet-101 has
            (3, 4, 23, 3), see ``stage_blocks``).
        stage_blocks (Sequence[int], optional): Blocks of the four stages, overriding those of
            ``depth`` (each of the three SAR stages needs at least 2). ``(3, 4, 23, 3)`` with
            ``depth=101`` gives the torchvision ResNet-101 layout. Defaults to None (the official
            layout of ``depth``).
        in_channels (int): Input channels. Defaults to 3.
        stem_channels (int): Stem width. Defaults to 64.
        deep_stem (bool): Replace the 7x7 stem conv by three 3x3 convs (the official ``use_stem=True``):
            ``stem.0`` Conv3x3(in -> stem/2, stride 2), ``stem.1`` BN, ReLU, ``stem.3``
            Conv3x3(stem/2 -> stem/2), ``stem.4`` BN, ReLU, ``stem.6`` Conv3x3(stem/2 -> stem),
            ``stem.7`` BN, ReLU (the official indices), then the same max pool. Defaults to False
            (``conv1``/``bn1``: 7x7 stride-2 conv and BN).
        base_channels (int): Planes of stage 1. Defaults to 64.
        groups (int): G. Defaults to 2.
        alpha (int): Base-branch compression. Defaults to 2.
        beta (int): Refine-branch widening (SAR-1 always uses 1). Defaults to 1.
        base_scale (int): s of SAR-1 and SAR-2 (SAR-3 always uses 2). Defaults to 2.
        mask_grid (Sequence[int], optional): K of each SAR stage, a fixed K x K grid whatever the
            input size. Defaults to None: (14, 7, 2) unless ``mask_cell_size`` is given.
        mask_cell_size (Sequence[int], optional): Instead of ``mask_grid``: the size c in pixels
            of the square mask cells of each SAR stage, on the map the stage refines (strides 4, 8,
            16, or 4, 8, 8 with the OS-8 strides). The grid follows the input, (ceil(H / c),
            ceil(W / c)) on an H x W map, and the cells of the last row / column are cropped to the
            map; sparse inference works at every input size. ``(4, 4, 7)`` is the (14, 7, 2) grid
            at 224 px, with the same weights (no weight depends on the grid). Give exactly one of
            ``mask_grid`` and ``mask_cell_size``. Defaults to None.
        fusion (str): 'att' (paper, Eq. 5) or 'add'. Defaults to 'att'.
        strides (Sequence[int]): Fusion-block strides of SAR-1..3 and the first stride of stage 4.
        dilations (Sequence[int]): Dilation of the refine/fusion 3x3s of SAR-1..3 and of stage 4.
        out_indices (Sequence[int]): Outputs to return. Defaults to (3, ).
        frozen_stages (int): -1: none; 0: stem (``conv1``/``bn1`` or the deep ``stem``); i: stem
            and stages 1..i (a SAR stage with its fusion block). Defaults to -1.
        norm_eval (bool): Keep BN layers in eval mode during training. Defaults to False.
        norm_cfg (dict): Norm layer config. Defaults to BN.
        mask_output (bool): Mask the refine blocks' outputs (sar.md §2.6 option b). Defaults to False:
            the authors' code, where unselected positions receive the constant BN(0) of the block's
            last norm.
        eval_stochastic (bool): Sample Gumbel masks at eval like the official code. Defaults to False
            (deterministic argmax).
        sparse_infer (bool): In eval mode, refine only the selected patches (gather, convolve,
            scatter back; equal to the dense masked path). Defaults to False.
        tau (float): Initial Gumbel temperature. Defaults to 1.0.
        mask_bias_init (tuple[float, float]): Initial (skip, refine) bias of the mask generators.
            Defaults to (1, 10): every patch is refined at the start (P = sigmoid(9)), as in the
            paper. A smaller gap (e.g. (0, 3)) lets short trainings reach their target.
        mask_centre (bool): Centre each mask generator's pooled features over its cells before the
            1x1 conv, so that the sparsity loss (the same gradient on every cell) moves only the
            bias and where to refine is learnt from the task loss alone (issue #19; not in the
            paper or the authors' code). Defaults to False.
        mask_feature_bound (float, optional): Bound each mask generator's pooled features to a norm
            below 1, ``h / (|h| + mask_feature_bound)`` per cell and group, so that the logits cannot
            grow without bound on the cells the generator singles out (issue #19; not in the paper
            or the authors' code; see :class:`MaskGenerator`). Defaults to None (the paper).
        mask_sharing (str): 'block' (the paper, sar.md: masks are not shared across blocks): a mask
            per refine block; 'stage': one mask per SAR stage (and group), made from the first base
            block and gating all its refine blocks, so that consecutive blocks cannot divide the
            object between them (issue #19; not in the paper; an official checkpoint does not
            load into it). Defaults to 'block'.
        mask_density_grad (str): Which weights of the mask generators the sparsity loss trains:
            'all' (the paper) or 'bias' (only their 1x1 biases; issue #19, not in the paper). The
            loss is the same function of the same sampled masks; only its gradient changes. With
            'all' it also moves the 1x1 weights, by the straight-through gradient of each cell
            times the cell's features: the cells near the decision boundary, where that gradient
            is largest, are pushed hardest, and while the object's cells are still there, lowering
            the density moves the weights away from the object's features (even with
            ``mask_centre``, which cancels only a gradient that is the same on every cell). With
            'bias' the loss sets how many cells each mask refines, the task loss alone which.
            Defaults to 'all'.
        share_group_masks (bool): One mask for all G groups of a mask generator, the mean of the
            groups' logits, recorded and applied as G equal group masks (issue #19; not in the
            paper or the authors' code). With a mask per group (the paper) one group can take the
            object while the other learns to avoid it, which refining it again would not improve
            (the demo's stage-1 masks: object 1.0 / 0.0 in the two groups); a shared mask decides
            each cell from the gradients of both groups. The generators keep their weights (a
            checkpoint loads with either setting). Defaults to False.
        zero_init_residual (bool): Zero the last BN of regular blocks. Defaults to True.
        init_cfg (dict, optional): Initialisation config (e.g. ``Pretrained``).
    """
    arch_settings = {
        34: ('basic', (3, 4, 6, 3)),
        50: ('bottleneck', (3, 4, 6, 3)),
        101: ('bottleneck', (4, 8, 18, 3)),  # the authors' layout; torchvision: (3, 4, 23, 3)
    }

    def __init__(self, depth: int = 50, in_channels: int = 3, stem_channels: int = 64,
                 base_channels: int = 64, groups: int = 2, alpha: int = 2, beta: int = 1,
                 base_scale: int = 2, mask_grid: Optional[Sequence[int]] = None,
                 fusion: str = 'att', strides: Sequence[int] = (2, 2, 1, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1), out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), mask_output: bool = False,
                 eval_stochastic: bool = False, sparse_infer: bool = False, tau: float = 1.0,
                 mask_bias_init: Sequence[float] = (1.0, 10.0), zero_init_residual: bool = True,
                 init_cfg: Optional[dict] = None, stage_blocks: Optional[Sequence[int]] = None,
                 deep_stem: bool = False, mask_cell_size: Optional[Sequence[int]] = None,
                 mask_centre: bool = False, mask_feature_bound: Optional[float] = None,
                 mask_sharing: str = 'block', mask_density_grad: str = 'all',
                 share_group_masks: bool = False) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for SARResNet; choose from '
                           f'{sorted(self.arch_settings)}')
        grids, cells = _mask_layout(mask_grid, mask_cell_size, (14, 7, 2), 3)
        if len(strides) != 4 or len(dilations) != 4:
            raise ValueError('strides and dilations take 4 values')
        if not all(0 <= i <= 3 for i in out_indices):
            raise ValueError(f'out_indices must lie in [0, 3], got {tuple(out_indices)}')
        block, layers = self.arch_settings[depth]
        if stage_blocks is not None:
            layers = tuple(int(n) for n in stage_blocks)
            if len(layers) != 4 or min(layers[:3]) < 2 or layers[3] < 1:
                raise ValueError('stage_blocks takes 4 block counts, at least 2 for each of the three '
                                 f'SAR stages and 1 for stage 4, got {tuple(stage_blocks)}')
        if deep_stem and stem_channels % 2:
            raise ValueError(f'deep_stem halves stem_channels, which must be even, got {stem_channels}')
        regular = BLOCKS[block][0]
        self.stage_blocks = tuple(layers)
        self.deep_stem = deep_stem
        self.depth, self.out_indices = depth, tuple(out_indices)
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.eval_stochastic, self.tau, self.gumbel_noise = eval_stochastic, tau, 1.0
        self.zero_init_residual = zero_init_residual
        self.groups = groups
        self.mask_grid = None if grids[0] is None else tuple(grids)
        self.mask_cell_size = None if cells[0] is None else tuple(cells)
        if deep_stem:
            self.stem = self._make_deep_stem(in_channels, stem_channels, norm_cfg)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList()
        channels = stem_channels
        for i in range(3):
            stage = SARStage(block, channels, base_channels * 2**i, layers[i], groups, alpha,
                             beta if i > 0 else 1, base_scale if i < 2 else 2, grids[i], fusion,
                             strides[i], dilations[i], mask_output, norm_cfg, mask_bias_init,
                             cell_size=cells[i], mask_centre=mask_centre,
                             mask_feature_bound=mask_feature_bound, mask_sharing=mask_sharing,
                             mask_density_grad=mask_density_grad,
                             share_group_masks=share_group_masks)
            self.stages.append(stage)
            channels = stage.out_channels
        planes = base_channels * 8
        self.layer4 = nn.ModuleList(
            regular(channels if j == 0 else planes * regular.expansion, planes,
                    stride=strides[3] if j == 0 else 1, dilation=dilations[3], norm_cfg=norm_cfg)
            for j in range(layers[3]))
        self.out_channels = tuple(base_channels * 2**i * regular.expansion for i in range(4))
        self.last_masks: List[torch.Tensor] = []
        self.last_mask_logits: List[torch.Tensor] = []
        self.last_loss_masks: List[torch.Tensor] = []
        self.last_mask_sizes: List[Tuple[int, int]] = []
        self.last_mask_cells: List[Optional[int]] = []
        self.last_flops: Optional[torch.Tensor] = None
        self.set_sparse_infer(sparse_infer)
        self._freeze_stages()

    @staticmethod
    def _make_deep_stem(in_channels: int, stem_channels: int, norm_cfg: dict) -> nn.Sequential:
        """Three 3x3 conv-BN-ReLU (stride 2, 1, 1; widths stem/2, stem/2, stem), the official
        ``use_stem`` layout: convs at indices 0, 3, 6 and norms at 1, 4, 7."""
        half = stem_channels // 2
        layers = []
        for i, (cin, cout) in enumerate(((in_channels, half), (half, half), (half, stem_channels))):
            layers += [nn.Conv2d(cin, cout, 3, 2 if i == 0 else 1, 1, bias=False),
                       build_norm_layer(norm_cfg, cout)[1], nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    @property
    def num_masks(self) -> int:
        return sum(len(s.masks) for s in self.stages)

    def _stem_modules(self) -> Tuple[nn.Module, ...]:
        return (self.stem, ) if self.deep_stem else (self.conv1, self.norm1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args: x (Tensor): (B, C, H, W). Returns: the outputs of ``out_indices``."""
        meter = MacsMeter(x.shape[0], x.device)
        if self.deep_stem:
            h = x
            for layer in self.stem:
                h = layer(h)
                if isinstance(layer, nn.Conv2d):
                    meter.add(conv_macs(layer, h))
        else:
            h = self.conv1(x)
            meter.add(conv_macs(self.conv1, h))
            h = F.relu(self.norm1(h))
        h = self.maxpool(h)
        meter.add(pool_macs(h))
        outs, record = [], _MaskRecord()
        for i, stage in enumerate(self.stages):
            size = tuple(h.shape[-2:])
            fused, h, stage_masks = stage(h, self.tau, self.eval_stochastic, meter,
                                          self._noise_scale())
            record.extend(stage_masks, size, stage.cell_size)
            if i in self.out_indices:
                outs.append(fused if i < 2 else h)
        for block in self.layer4:
            h = block(h, meter)
        if 3 in self.out_indices:
            outs.append(h)
        self._record_masks(record, meter)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for m in self._stem_modules():
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            module = self.stages[i - 1] if i <= 3 else self.layer4
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'SARResNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


@register_dual(MODELS)
class SARResNetCifar(_SARBackboneMixin, BaseModule):
    """SAR-ResNet for 32 x 32 inputs (sar.md §2.8): a 3x3 stem and three SAR stages of BasicBlocks
    (all three stages are SAR modules, as in the authors' CIFAR code).

    The default fusion is that of the authors' CIFAR model (``sar_resnet_cifar3stage_alphaBase``):
    additive, ``ReLU(up(x_base) + x_refine)``, without attention weights, so that its checkpoints fill
    every tensor. ``fusion='att'`` gives the paper's Eq. 5 channel attention (two more bias-free Linear
    layers per stage).

    Args:
        depth (int): 20, 32 or 56 (n = 3, 5, 9 blocks per stage).
        width (float): Width multiplier of the stages (the stem stays 16). Defaults to 1.
        groups, alpha, beta, mask_output, eval_stochastic, sparse_infer, tau, mask_bias_init,
            mask_centre, mask_feature_bound, mask_sharing, mask_density_grad, share_group_masks,
            norm_cfg, init_cfg: as in :class:`SARResNet` (beta applies to all three stages here).
        fusion (str): 'add' (the authors' CIFAR code) or 'att' (paper, Eq. 5). Defaults to 'add'.
        mask_grid (Sequence[int], optional): Defaults to None: (4, 4, 2) unless ``mask_cell_size``
            is given.
        mask_cell_size (Sequence[int], optional): Mask cell sizes in pixels instead of
            ``mask_grid`` (see :class:`SARResNet`); (8, 4, 4) is the (4, 4, 2) grid at 32 px.
            Defaults to None.
        out_indices (Sequence[int]): Stage outputs to return. Defaults to (2, ).
    """
    depths = {20: 3, 32: 5, 56: 9}

    def __init__(self, depth: int = 32, width: float = 1.0, in_channels: int = 3, groups: int = 2,
                 alpha: int = 2, beta: int = 1, mask_grid: Optional[Sequence[int]] = None,
                 fusion: str = 'add', out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN', requires_grad=True), mask_output: bool = False,
                 eval_stochastic: bool = False, sparse_infer: bool = False, tau: float = 1.0,
                 mask_bias_init: Sequence[float] = (1.0, 10.0), zero_init_residual: bool = True,
                 init_cfg: Optional[dict] = None,
                 mask_cell_size: Optional[Sequence[int]] = None, mask_centre: bool = False,
                 mask_feature_bound: Optional[float] = None, mask_sharing: str = 'block',
                 mask_density_grad: str = 'all', share_group_masks: bool = False) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.depths:
            raise KeyError(f'invalid depth {depth} for SARResNetCifar; choose from '
                           f'{sorted(self.depths)}')
        grids, cells = _mask_layout(mask_grid, mask_cell_size, (4, 4, 2), 3)
        self.mask_grid = None if grids[0] is None else tuple(grids)
        self.mask_cell_size = None if cells[0] is None else tuple(cells)
        n = self.depths[depth]
        self.out_indices = tuple(out_indices)
        self.eval_stochastic, self.tau, self.gumbel_noise = eval_stochastic, tau, 1.0
        self.zero_init_residual = zero_init_residual
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, 16, postfix=1)
        self.add_module(self.norm1_name, norm1)
        widths = [int(round(c * width)) for c in (16, 32, 64)]
        self.stages = nn.ModuleList()
        channels = 16
        for i, (planes, stride) in enumerate(zip(widths, (2, 2, 1))):
            stage = SARStage('basic', channels, planes, n, groups, alpha, beta, 2, grids[i],
                             fusion, stride, 1, mask_output, norm_cfg, mask_bias_init,
                             cell_size=cells[i], mask_centre=mask_centre,
                             mask_feature_bound=mask_feature_bound, mask_sharing=mask_sharing,
                             mask_density_grad=mask_density_grad,
                             share_group_masks=share_group_masks)
            self.stages.append(stage)
            channels = stage.out_channels
        self.out_channels = tuple(widths)
        self.last_masks: List[torch.Tensor] = []
        self.last_mask_logits: List[torch.Tensor] = []
        self.last_loss_masks: List[torch.Tensor] = []
        self.last_mask_sizes: List[Tuple[int, int]] = []
        self.last_mask_cells: List[Optional[int]] = []
        self.last_flops: Optional[torch.Tensor] = None
        self.set_sparse_infer(sparse_infer)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args: x (Tensor): (B, C, 32, 32). Returns: the stage outputs of ``out_indices``."""
        meter = MacsMeter(x.shape[0], x.device)
        h = self.conv1(x)
        meter.add(conv_macs(self.conv1, h))
        h = F.relu(self.norm1(h))
        outs, record = [], _MaskRecord()
        for i, stage in enumerate(self.stages):
            size = tuple(h.shape[-2:])
            _, h, stage_masks = stage(h, self.tau, self.eval_stochastic, meter,
                                      self._noise_scale())
            record.extend(stage_masks, size, stage.cell_size)
            if i in self.out_indices:
                outs.append(h)
        self._record_masks(record, meter)
        return tuple(outs)
