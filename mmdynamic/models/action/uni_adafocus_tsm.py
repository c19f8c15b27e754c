# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus-TSM: the Something-Something / Jester / Diving48 setting (spec §2.6-2.7, §4.2, §5.1).

Differences to the MN2 + R50 setting (:class:`UniAdaFocus`):

- two clips per video, packed as one input (B, T_G + T_0, C, H, W) by
  :class:`~mmdynamic.datasets.transforms.SampleGlanceAndFocusFrames`: the T_G glance frames (all seen by
  f_G, a TSM-MobileNet-V2 with ``num_segments = T_G``) and T_0 = 3 T_L focus candidates (the two clips
  are sampled independently, as in the official data pipeline: at test glance frame i is
  ``floor((i + 0.5) N / T_G)`` of an N-frame video: the model makes no glance frame choice of its own);
- one box per video (the last conv of the spatial policy spans all glance frames), shared by the T_L
  focus frames so that the temporal shifts of f_L (a TSM-ResNet-50 with ``num_segments = T_L``) see
  one view;
- two heads per encoder, as in the official code: the prediction heads on the detached pooled features
  and the frame heads for exit 0 and the auxiliary and temporal losses (see :class:`UniAdaFocusTSM`);
- two exits: the glance alone, or the glance plus f_L on the clip (conditional exit = running f_L).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from mmdynamic.registry import MODELS, register_dual
from .uni_adafocus import UniAdaFocus, _step_ce, encode

GLANCE_EXITS = ('frame_heads', 'prediction_heads')


@register_dual(MODELS)
class UniAdaFocusTSM(UniAdaFocus):
    """Uni-AdaFocus with TSM encoders (Table 4 settings 8+8, 8+12, 8+16).

    Heads (two per encoder, each Dropout + Linear; the official layout, key names for a checkpoint
    converter, one to one):

    ===================== ========================== =============================================
    module                official key               role
    ===================== ========================== =============================================
    ``fc_global.1``       ``global_CNN.new_fc``      prediction: ``avg_t fc_global(g_t)`` on the
                                                     *detached* glance features
    ``fc_local.1``        ``local_CNN.new_fc``       prediction: ``avg_t fc_local(l_t)`` on the
                                                     *detached* focus features
    ``fc_global_frame.1`` ``global_CNN.new_new_fc``  exit 0 (``avg_t fc_global_frame(g_t)``),
                                                     loss_global, the temporal-loss logits
    ``fc_local_frame.1``  ``local_CNN.new_new_fc``   loss_local
    ===================== ========================== =============================================

    Exit 1 (the prediction) is ``avg_t fc_global(g_t) + avg_t fc_local(l_t)``; its loss trains only the
    prediction heads (their inputs are detached), the encoders learn from the frame heads' losses.

    Args:
        num_candidates (int): T_0 focus candidates (3 T_L in the paper: 24 / 36 / 48).
        num_glance (int): T_G glance frames (8). num_focus (int): T_L (8 / 12 / 16).
        dropout (float): Dropout of the heads. Defaults to 0.5.
        size_reg (float): alpha (0.5 Sth-Sth V1/V2, 0.25 Jester).
        glance_exit (str): Exit 0: 'frame_heads' (the official early-exit code: the frame head
            averaged over the glance frames) or 'prediction_heads' (the glance part of the
            prediction). Defaults to 'frame_heads'.
        **kwargs: See :class:`UniAdaFocus` (``backbone`` and ``local_backbone`` are TSM encoders).
    """
    per_video_box = True
    # the random-patch clips come first in the joint f_L batch (the official X3D code; the TSM code
    # is assumed to do the same: it only changes the rounding of the BatchNorm statistics)
    random_patches_first = True

    def __init__(self, num_candidates: int = 36, num_glance: int = 8, num_focus: int = 12,
                 dropout: float = 0.5, size_reg: float = 0.5, glance_exit: str = 'frame_heads',
                 **kwargs) -> None:
        if num_focus > num_candidates:
            raise ValueError(f'num_focus must be in [1, num_candidates={num_candidates}], '
                             f'got {num_focus}')
        if glance_exit not in GLANCE_EXITS:
            raise ValueError(f'glance_exit must be one of {GLANCE_EXITS}, got {glance_exit!r}')
        kwargs.setdefault('num_mc_draws', max(1, num_focus * num_glance // num_candidates))
        # the candidate clip has its own T_0 frames: the glance grouping of UniAdaFocus does not apply
        super().__init__(num_candidates=num_glance, num_glance=num_glance, num_focus=1,
                         dropout=dropout, size_reg=size_reg, **kwargs)
        self.num_candidates = num_candidates
        self.num_focus = num_focus
        self.num_exits = 2
        self.exit_offset = 0
        self.repeated_steps_from = None
        self.glance_exit = glance_exit
        self._build_frame_heads(self.fc_global[-1].in_features, self.fc_local[-1].in_features,
                                dropout)

    def _build_classifier(self, global_channels: int, local_channels: int, hidden: int,
                          dropout: float) -> None:
        """f_C is the two prediction heads with frame averaging (:meth:`fuse`): no module of its own."""
        self.fusion_head = None

    def _build_frame_heads(self, global_channels: int, local_channels: int, dropout: float) -> None:
        """The second head of each encoder (official ``new_new_fc``): Dropout + Linear."""
        self.fc_global_frame = nn.Sequential(nn.Dropout(dropout),
                                             nn.Linear(global_channels, self.num_classes))
        self.fc_local_frame = nn.Sequential(nn.Dropout(dropout),
                                            nn.Linear(local_channels, self.num_classes))

    # ------------------------------------------------------------------ heads
    def global_frame_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """The frame head of f_G on every glance frame. (B, T_G, C_G) -> (B, T_G, C)."""
        return self.fc_global_frame(global_feats)

    def local_frame_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """The frame head of f_L on every focus frame. (B, T, C_L) -> (B, T, C)."""
        return self.fc_local_frame(local_feats)

    def glance_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """Exit 0 (see ``glance_exit``). (B, T_G, C_G) -> (B, C)."""
        if self.glance_exit == 'frame_heads':
            return self.global_frame_logits(global_feats).mean(dim=1)
        return self.glance_prediction(global_feats)

    def glance_prediction(self, global_feats: torch.Tensor) -> torch.Tensor:
        """The glance part of the prediction: the prediction head on the detached features, averaged
        over the frames. (B, T_G, C_G) -> (B, C)."""
        return self.fc_global(global_feats.detach()).mean(dim=1)

    def focus_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """The focus part of the prediction: the prediction head on the detached features, averaged
        over the frames. (B, T_L, C_L) -> (B, C)."""
        return self.fc_local(local_feats.detach()).mean(dim=1)

    def fuse(self, global_feats: torch.Tensor, local_feats: torch.Tensor) -> torch.Tensor:
        """f_C: exit 0 (:meth:`glance_logits`) and the prediction
        (:meth:`glance_prediction` + :meth:`focus_logits`).

        Args:
            global_feats (Tensor): (B, T_G, C_G). local_feats (Tensor): (B, T_L, C_L).

        Returns:
            Tensor: (B, 2, num_classes).
        """
        prediction = self.glance_prediction(global_feats) + self.focus_logits(local_feats)
        return torch.stack([self.glance_logits(global_feats), prediction], dim=1)

    # ------------------------------------------------------------------ inputs and encoders
    @property
    def clip_length(self) -> int:
        """The glance clip and the focus candidates: T_G + T_0 frames per view."""
        return self.num_glance + self.num_candidates

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        expected = self.clip_length
        if inputs.dim() != 5 or inputs.shape[1] != expected:
            raise ValueError(f'{type(self).__name__} expects inputs (B, T_G + T_0 = {expected}, C, '
                             f'H, W) (the glance clip, then the focus candidates), got '
                             f'{tuple(inputs.shape)}')

    def glance_features(self, inputs: torch.Tensor,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """f_G on the whole glance clip (the first T_G frames; no random draw)."""
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        frames = inputs[:, :self.num_glance].flatten(0, 1)
        if self.glance_size is not None:
            from mmdynamic.models.utils.patch_sampler import glance
            frames = glance(frames, self.glance_size, mode='bilinear', align_corners=False)
        maps = encode(self.backbone, frames)
        maps = maps.view(batch, self.num_glance, *maps.shape[1:])
        return dict(maps=maps, feats=maps.mean(dim=(-2, -1)))

    def focus_patches(self, inputs: torch.Tensor, index: torch.Tensor,
                      boxes: torch.Tensor) -> torch.Tensor:
        """The crops of the chosen focus candidates (indices into the candidate clip)."""
        return super().focus_patches(inputs[:, self.num_glance:], index, boxes)

    # ------------------------------------------------------------------ losses
    def classifier_losses(self, out: Dict[str, torch.Tensor],
                          labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """CE of the prediction and of the frame head of f_L, averaged with the random-patch branch
        (the frame head of f_G: :meth:`policy_losses`)."""
        ce_final = [_step_ce(out['steps'][:, 1:], labels)]
        ce_local = [self._aux_ce(self.local_frame_logits(out['local_feats']), labels)]
        if 'random_local_feats' in out:
            local_feats = out['random_local_feats']
            ce_final.append(_step_ce(self.fuse(out['feats'], local_feats)[:, 1:], labels))
            ce_local.append(self._aux_ce(self.local_frame_logits(local_feats), labels))
        losses = dict(loss_cls=sum(ce_final) / len(ce_final), loss_local=sum(ce_local) / len(ce_local))
        with torch.no_grad():
            losses['acc_final'] = (out['steps'][:, -1].argmax(-1) == labels).float().mean()
        return losses

    # ------------------------------------------------------------------ step-wise (early exit)
    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Exit 0: f_G + :meth:`glance_logits`. Exit 1: the policy, f_L on the T_L focus frames and the
        prediction heads."""
        if index == 0:
            out = self.glance_features(inputs)
            return self.glance_logits(out['feats']), dict(maps=out['maps'], feats=out['feats'])
        plan = self.policy(state['maps'], state['feats'])
        index_, boxes = self.plan_focus(plan['actions'], plan['frame_weights'],
                                        tuple(inputs.shape[-2:]))
        local = self.local_features(inputs, index_, boxes)
        return self.glance_prediction(state['feats']) + self.focus_logits(local), dict()
