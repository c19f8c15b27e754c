# Copyright (c) mmdynamic contributors. All rights reserved.
"""Building blocks of MGNet (Tan et al., BMVC 2021): gradient scaling, the glimpse generator, the
glimpse attention (feature fusion) and the localisation head."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdynamic.models.utils.patch_sampler import affine_glimpse


class _GradScale(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``scale``."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> Tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def grad_scale(inputs: torch.Tensor, scale: float) -> torch.Tensor:
    """``Phi(x; s)`` of MGNet Eq. (5): ``x`` forward, gradient multiplied by ``scale`` backward."""
    if scale == 1.0:
        return inputs
    return _GradScale.apply(inputs, float(scale))


def identity_params(batch: int, like: torch.Tensor) -> torch.Tensor:
    """Glimpse parameters ``[a_s, a_x, a_y] = [1, 0, 0]`` (the whole image): (B, 3)."""
    params = like.new_zeros(batch, 3)
    params[:, 0] = 1
    return params


class GlimpseGenerator(nn.Module):
    """Scale-and-translate glimpses ``g(x, A; M)`` (MGNet Eqs. 1-2), no parameters.

    ``A = [[a_s, 0, a_x], [0, a_s, a_y]]`` maps the [-1, 1] output grid into the image; ``a_x`` moves
    along the width. Sampling is bilinear through :func:`affine_glimpse` (``affine_grid`` +
    ``grid_sample``), by default exactly as the authors' ``GlimpseGenerator``: zero padding outside the
    image and no clamp of the centre. With ``A`` the identity and ``align_corners=True`` the glimpse
    equals ``F.interpolate(x, size, mode='bilinear', align_corners=True)``.

    The localisation head keeps ``|a_x|, |a_y| <= 1 - a_s`` (the authors' "tight crop"), so with
    ``align_corners=True`` the glimpses of :class:`MGNet` never leave the image and ``padding_mode`` /
    ``clamp_inside`` change nothing but float rounding at the edge pixels; they matter for parameters
    from elsewhere (hand-made, other parametrisations) or ``align_corners=False``.

    Args:
        size (int, optional): Glimpse side g. None: the input side (FF-Net, M = 1).
        align_corners (bool): Of ``affine_grid``/``grid_sample``. Defaults to True (the authors').
        padding_mode (str): Of ``grid_sample`` for samples outside the image: 'zeros' (the authors'),
            'border' (the project's sampler before issue #16) or 'reflection'. Defaults to 'zeros'.
        clamp_inside (bool): Clamp the glimpse centre to ``|t| <= 1 - a_s`` before sampling (the
            project's sampler before issue #16; the authors' code does not). Defaults to False.
    """

    def __init__(self, size: Optional[int] = None, align_corners: bool = True,
                 padding_mode: str = 'zeros', clamp_inside: bool = False) -> None:
        super().__init__()
        if size is not None and size < 1:
            raise ValueError(f'glimpse size must be positive, got {size}')
        if padding_mode not in ('zeros', 'border', 'reflection'):
            raise ValueError(f"padding_mode must be 'zeros', 'border' or 'reflection', "
                             f'got {padding_mode!r}')
        self.size = size
        self.align_corners = align_corners
        self.padding_mode = padding_mode
        self.clamp_inside = clamp_inside

    def output_size(self, inputs: torch.Tensor) -> Tuple[int, int]:
        if self.size is None:
            return tuple(inputs.shape[-2:])
        return (self.size, self.size)

    def forward(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Args: images (Tensor): (B, C, H, W). params (Tensor): (B, 3) ``[a_s, a_x, a_y]``.
        Returns: Tensor: (B, C, g, g)."""
        return affine_glimpse(images, params[:, 0], params[:, 1:3], self.output_size(images),
                              align_corners=self.align_corners, padding_mode=self.padding_mode,
                              inside=self.clamp_inside)


class GlimpseAttention(BaseModule):
    """Feature fusion of MGNet Eq. (3): single-head self-attention over the glimpse tokens so far,
    LayerNorm, the last row, ReLU.

    ``E = softmax((H Wq)(H Wk)^T / sqrt(d)) (H Wv) Wo`` (all with biases), ``F_t = ReLU(LN(E)[t])``.
    No residual, no FFN, no mask (only the last row is used).

    Args:
        dim (int): Token dim d (= D + 3).
        recompute (bool): True: project all t tokens at every step, as the authors' code does and as
            the paper's FLOPs count (``4 t d^2 + 2 t^2 d``). False: only the last query is computed
            and the keys/values of earlier tokens come from the caller's cache (same output up to
            float error, ``4 d^2 + 2 t d`` per step).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, dim: int, recompute: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.dim = dim
        self.recompute = recompute
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.scale = 1.0 / math.sqrt(dim)

    def reset_parameters(self) -> None:
        """The authors' init: Kaiming normal (fan_in, gain sqrt 2) weights, zero biases."""
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='relu')
            nn.init.zeros_(layer.bias)
        self.norm.reset_parameters()

    def _attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        weights = torch.matmul(query, keys.transpose(-2, -1)) * self.scale
        return self.out_proj(torch.matmul(weights.softmax(dim=-1), values))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Full recompute. Args: tokens (Tensor): (B, t, d). Returns: Tensor: (B, d) ``F_t``."""
        fused = self._attend(self.q_proj(tokens), self.k_proj(tokens), self.v_proj(tokens))
        return F.relu(self.norm(fused)[:, -1])

    def forward_cached(self, token: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step with a key/value cache.

        Args:
            token (Tensor): (B, d) the new token.
            keys (Tensor): (B, t - 1, d) cached keys. values (Tensor): (B, t - 1, d) cached values.

        Returns:
            tuple: ``F_t`` (B, d) and the updated keys and values (B, t, d).
        """
        keys = torch.cat([keys, self.k_proj(token)[:, None]], dim=1)
        values = torch.cat([values, self.v_proj(token)[:, None]], dim=1)
        fused = self._attend(self.q_proj(token)[:, None], keys, values)[:, 0]
        return F.relu(self.norm(fused)), keys, values


class LocalizationHead(BaseModule):
    """Next glimpse from the fused memory (MGNet Eqs. 4-5).

    ``[s', x', y'] = Phi(sigmoid(W F_t + b); s)``, ``a_s = s' (max - min) + min``,
    ``[a_x, a_y] = (2 [x', y'] - 1)(1 - a_s)``: the glimpse side is ``a_s`` of the image side and the
    glimpse always lies inside the image. The gradient flows from ``a_s`` into the translation.

    Args:
        in_dim (int): d.
        scale_range (Sequence[float]): (min, max) of ``a_s``, in (0, 1]. Defaults to (0.2, 0.5).
        grad_scale (float): ``s`` of ``Phi`` (0.02 for ResNet-18, 0.01 for larger backbones).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_dim: int, scale_range: Sequence[float] = (0.2, 0.5),
                 grad_scale: float = 0.02, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high <= 1:
            raise ValueError(f'scale_range must satisfy 0 < min <= max <= 1, got {scale_range}')
        if grad_scale <= 0:
            raise ValueError(f'grad_scale must be positive, got {grad_scale}')
        self.scale_range = (low, high)
        self.grad_scale = float(grad_scale)
        self.fc = nn.Linear(in_dim, 3)

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.fc.weight, mode='fan_in', nonlinearity='relu')
        nn.init.zeros_(self.fc.bias)

    def map_params(self, unit: torch.Tensor) -> torch.Tensor:
        """(B, 3) ``[s', x', y']`` in [0, 1] -> (B, 3) ``[a_s, a_x, a_y]``."""
        low, high = self.scale_range
        scale = unit[:, :1] * (high - low) + low
        shift = (2 * unit[:, 1:] - 1) * (1 - scale)
        return torch.cat([scale, shift], dim=1)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        """Args: memory (Tensor): (B, d) ``F_t``. Returns: Tensor: (B, 3) ``[a_s, a_x, a_y]``."""
        return self.map_params(grad_scale(torch.sigmoid(self.fc(memory)), self.grad_scale))


def kaiming_linear_(layer: Union[nn.Linear, None]) -> None:
    """Kaiming normal (fan_in) weight and zero bias of a classifier layer (the authors' init)."""
    if layer is not None:
        nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='relu')
        nn.init.zeros_(layer.bias)
