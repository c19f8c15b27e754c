# Copyright (c) mmdynamic contributors. All rights reserved.
"""MGNet: Multi-Glimpse Network (Tan, Dong, Ma, BMVC 2021) as an mmpretrain step-wise classifier."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

from mmdynamic.models.cls.stepwise_classifier import StepwiseClassifier
from mmdynamic.registry import MODELS, register_dual
from .modules import (GlimpseAttention, GlimpseGenerator, LocalizationHead, identity_params,
                      kaiming_linear_)

State = Dict[str, torch.Tensor]


@register_dual(MODELS)
class MGNet(StepwiseClassifier):
    """Multi-Glimpse Network: one shared backbone run on ``num_glimpses`` low-resolution glimpses.

    Step t (0-based) samples glimpse t (step 0: the whole image, the identity affine; later steps: a
    square crop of side 0.2..0.5 of the image chosen by the localisation head from the previous
    memory, always inside the image), encodes it with the backbone + neck into ``h_t`` (B, D), appends
    the (detached) glimpse parameters ``[a_s, a_x, a_y]`` to get a token of dim d = D + 3, fuses all
    tokens so far with :class:`GlimpseAttention` into the memory ``F_t`` (B, d) and classifies it with
    the global classifier shared by all steps. Every step is an exit (anytime prediction and budgeted
    early exit through :class:`StepwiseClassifier`). The FF-Net baseline of the paper is
    ``num_glimpses=1, glimpse_size=None`` (the whole image at full resolution, same head).

    Loss (the authors' code): ``aux_weight * L_glimpse + (1 - aux_weight) * L_global`` with
    ``L_global`` the cross-entropy of the global classifier averaged over all exits and ``L_glimpse``
    that of the glimpse classifier (``Linear(D, C)`` on ``h_t``, training only) averaged over glimpses
    2..T (``aux_on_first_glimpse=True``: 1..T, the paper's Eq. 8). Without auxiliary glimpses (T = 1)
    the glimpse classifier is not built and the global loss has weight 1, as in the authors' code.

    State (batch first, see :mod:`mmdynamic.models.utils.early_exit`): ``memory`` (B, d) ``F_t``,
    ``feat`` (B, D) ``h_t``, ``params`` (B, 3) the glimpse parameters of step t, and ``tokens``
    (B, t, d) (``recompute_attention=True``) or ``keys``/``values`` (B, t, d) (key/value cache).

    Args:
        backbone (dict): mmpretrain backbone config (ResNet, ResNeXt, ...), returning its last stage.
        num_classes (int): Number of classes C.
        neck (dict): Pools the last feature map to (B, D). Defaults to ``GlobalAveragePooling``.
        feat_dim (int, optional): D. None: inferred by a forward of a small dummy image.
        num_glimpses (int): T, the number of steps/exits. Defaults to 4.
        glimpse_size (int, optional): Glimpse side g (96 for 224 inputs: configure it directly, since
            ``224 // (7 / 3)`` is 95 in floating point). None: the input side (FF-Net).
        scale_range (Sequence[float]): Range of the glimpse side ``a_s`` relative to the image.
            Defaults to (0.2, 0.5).
        grad_scale (float): Gradient scale ``s`` of the localisation branch: 0.02 (ResNet-18) or 0.01
            (larger backbones). Ignored (1) when T = 1.
        aux_weight (float): alpha, the weight of the glimpse-classifier loss. Defaults to 0.6.
        aux_on_first_glimpse (bool): Apply the glimpse-classifier loss to glimpse 1 too (the paper's
            Eq. 8) instead of 2..T (the authors' code). Defaults to False.
        use_pos (bool): Append the glimpse parameters to the features (False: zeros, the code's
            ``--no_spatial_clue``). Defaults to True.
        detach_pos (bool): Stop the gradient through the positional encoding (the paper; False is the
            code's ``--no_detach``). Defaults to True.
        recompute_attention (bool): Recompute the attention over all tokens at every step (the
            authors' code and the paper's FLOPs). False: a key/value cache, same outputs, cheaper.
            Defaults to True.
        stem_maxpool (bool): Keep the max-pool after the backbone stem (False: the paper's Tiny
            ImageNet "dagger" backbones). Defaults to True.
        align_corners (bool): Of the glimpse sampling. Defaults to True (the authors').
        exit_policy, data_preprocessor, init_cfg: See :class:`StepwiseClassifier`.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 neck: Optional[dict] = dict(type='GlobalAveragePooling'),
                 feat_dim: Optional[int] = None,
                 num_glimpses: int = 4,
                 glimpse_size: Optional[int] = 96,
                 scale_range: Sequence[float] = (0.2, 0.5),
                 grad_scale: float = 0.02,
                 aux_weight: float = 0.6,
                 aux_on_first_glimpse: bool = False,
                 use_pos: bool = True,
                 detach_pos: bool = True,
                 recompute_attention: bool = True,
                 stem_maxpool: bool = True,
                 align_corners: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_glimpses < 1:
            raise ValueError(f'num_glimpses must be >= 1, got {num_glimpses}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if not 0 <= aux_weight < 1:
            raise ValueError(f'aux_weight must be in [0, 1), got {aux_weight}')
        self.num_exits = num_glimpses
        self.num_classes = num_classes
        self.backbone = MMPRETRAIN_MODELS.build(backbone)
        if not stem_maxpool:
            if not isinstance(getattr(self.backbone, 'maxpool', None), nn.Module):
                raise ValueError(f'stem_maxpool=False needs a backbone with a `maxpool` module; '
                                 f'{type(self.backbone).__name__} has none')
            self.backbone.maxpool = nn.Identity()
        self.neck = MMPRETRAIN_MODELS.build(neck) if neck is not None else None
        self.feat_dim = int(feat_dim) if feat_dim is not None else self._infer_feat_dim()
        self.token_dim = self.feat_dim + 3
        self.use_pos = use_pos
        self.detach_pos = detach_pos

        self.glimpse = GlimpseGenerator(glimpse_size, align_corners=align_corners)
        self.fusion = GlimpseAttention(self.token_dim, recompute=recompute_attention)
        self.localization = LocalizationHead(self.token_dim, scale_range,
                                             grad_scale if num_glimpses > 1 else 1.0)
        self.global_head = nn.Linear(self.token_dim, num_classes)
        self.aux_on_first_glimpse = aux_on_first_glimpse
        num_aux = num_glimpses if aux_on_first_glimpse else num_glimpses - 1
        self.aux_weight = float(aux_weight) if num_aux > 0 else 0.0
        self.glimpse_head = (nn.Linear(self.feat_dim, num_classes) if self.aux_weight > 0 else None)
        self._init_head_weights()

    # ------------------------------------------------------------------ construction
    @torch.no_grad()
    def _infer_feat_dim(self) -> int:
        was_training = self.training
        self.eval()
        try:
            param = next(self.backbone.parameters())
            dummy = torch.zeros(1, 3, 64, 64, dtype=param.dtype, device=param.device)
            return int(self.encode(dummy).shape[-1])
        finally:
            self.train(was_training)

    def _init_head_weights(self) -> None:
        self.fusion.reset_parameters()
        self.localization.reset_parameters()
        kaiming_linear_(self.global_head)
        kaiming_linear_(self.glimpse_head)

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            self._init_head_weights()

    # ------------------------------------------------------------------ step-wise interface
    def encode(self, glimpses: torch.Tensor) -> torch.Tensor:
        """Backbone + neck. Args: glimpses (Tensor): (B, 3, g, g). Returns: Tensor: (B, D)."""
        feats = self.backbone(glimpses)
        if self.neck is not None:
            feats = self.neck(feats)
        feat = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return feat.flatten(1)

    def init_state(self, inputs: torch.Tensor) -> State:
        batch = inputs.shape[0]
        state = dict(memory=inputs.new_zeros(batch, self.token_dim))
        empty = inputs.new_zeros(batch, 0, self.token_dim)
        if self.fusion.recompute:
            state['tokens'] = empty
        else:
            state.update(keys=empty, values=empty.clone())
        return state

    def step(self, index: int, inputs: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Glimpse ``index``: sample, encode, fuse, classify.

        Args:
            index (int): 0-based step.
            inputs (Tensor): (B, 3, H, W) normalised images.
            state (dict): See the class docstring.

        Returns:
            tuple: logits (B, C) of exit ``index`` and the next state.
        """
        if index == 0:
            params = identity_params(inputs.shape[0], inputs)
        else:
            params = self.localization(state['memory'])
        feat = self.encode(self.glimpse(inputs, params))
        pos = params.detach() if self.detach_pos else params
        if not self.use_pos:
            pos = torch.zeros_like(pos)
        token = torch.cat([feat, pos.to(feat.dtype)], dim=1)
        new_state = dict(feat=feat, params=params)
        if self.fusion.recompute:
            tokens = torch.cat([state['tokens'], token[:, None]], dim=1)
            memory = self.fusion(tokens)
            new_state['tokens'] = tokens
        else:
            memory, keys, values = self.fusion.forward_cached(token, state['keys'], state['values'])
            new_state.update(keys=keys, values=values)
        new_state['memory'] = memory
        return self.global_head(memory), new_state

    def forward_glimpses(self, inputs: torch.Tensor, num_steps: Optional[int] = None
                         ) -> Dict[str, torch.Tensor]:
        """Run the steps and keep everything: ``logits`` (T, B, C), ``params`` (T, B, 3) (glimpse
        boxes ``[a_s, a_x, a_y]``) and ``feats`` (T, B, D)."""
        state = self.init_state(inputs)
        logits, params, feats = [], [], []
        for index in range(self.num_exits if num_steps is None else num_steps):
            out, state = self.step(index, inputs, state)
            logits.append(out)
            params.append(state['params'])
            feats.append(state['feat'])
        return dict(logits=torch.stack(logits), params=torch.stack(params),
                    feats=torch.stack(feats))

    # ------------------------------------------------------------------ training
    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """``loss_global = (1 - alpha) * mean_t CE(global)``, ``loss_glimpse = alpha * mean_t
        CE(glimpse classifier)``; per-exit CE and accuracy are logged without ``loss`` in the key."""
        out = self.forward_glimpses(inputs)
        labels = torch.cat([ds.gt_label for ds in data_samples]).to(inputs.device)
        return self.loss_from_outputs(out['logits'], out['feats'], labels)

    def loss_from_outputs(self, exit_logits: torch.Tensor, feats: torch.Tensor,
                          labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The losses from ``exit_logits`` (T, B, C), glimpse features ``feats`` (T, B, D) and
        ``labels`` (B, )."""
        ce_exits = torch.stack([F.cross_entropy(logits, labels) for logits in exit_logits])
        losses = {'loss_global': (1 - self.aux_weight) * ce_exits.mean()}
        if self.glimpse_head is not None:
            aux_feats = feats if self.aux_on_first_glimpse else feats[1:]
            ce_aux = torch.stack([F.cross_entropy(self.glimpse_head(f), labels) for f in aux_feats])
            losses['loss_glimpse'] = self.aux_weight * ce_aux.mean()
        with torch.no_grad():
            for k, logits in enumerate(exit_logits):
                losses[f'ce_exit{k + 1}'] = ce_exits[k].detach()
                losses[f'acc_exit{k + 1}'] = (logits.argmax(-1) == labels).float().mean() * 100
        return losses
