# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus-TSM: the Something-Something / Jester / Diving48 setting (spec §2.6-2.7, §4.2, §5.1).

Differences to the MN2 + R50 setting (:class:`UniAdaFocus`):

- two clips per video, packed as one input (B, T_G + T_0, C, H, W) by
  :class:`~mmdynamic.datasets.transforms.SampleGlanceAndFocusFrames`: the T_G glance frames (all seen by
  f_G, a TSM-MobileNet-V2 with ``num_segments = T_G``) and T_0 = 3 T_L focus candidates;
- one box per video (the last conv of the spatial policy spans all glance frames), shared by the T_L
  focus frames so that the temporal shifts of f_L (a TSM-ResNet-50 with ``num_segments = T_L``) see
  one view;
- f_C = FC_G and FC_L with frame-averaged logits, summed ("FC + averaging");
- two exits: the glance alone, or the glance plus f_L on the clip (conditional exit = running f_L).
"""
from typing import Dict, Tuple

import torch

from mmdynamic.registry import MODELS, register_dual
from .uni_adafocus import UniAdaFocus, _step_ce, encode


@register_dual(MODELS)
class UniAdaFocusTSM(UniAdaFocus):
    """Uni-AdaFocus with TSM encoders (Table 4 settings 8+8, 8+12, 8+16).

    Args:
        num_candidates (int): T_0 focus candidates (3 T_L in the paper: 24 / 36 / 48).
        num_glance (int): T_G glance frames (8). num_focus (int): T_L (8 / 12 / 16).
        dropout (float): Dropout of FC_G / FC_L. Defaults to 0.5.
        size_reg (float): alpha (0.5 Sth-Sth V1/V2, 0.25 Jester).
        **kwargs: See :class:`UniAdaFocus` (``backbone`` and ``local_backbone`` are TSM encoders).
    """
    per_video_box = True

    def __init__(self, num_candidates: int = 36, num_glance: int = 8, num_focus: int = 12,
                 dropout: float = 0.5, size_reg: float = 0.5, **kwargs) -> None:
        if num_focus > num_candidates:
            raise ValueError(f'num_focus must be in [1, num_candidates={num_candidates}], '
                             f'got {num_focus}')
        kwargs.setdefault('num_mc_draws', max(1, num_focus * num_glance // num_candidates))
        # the candidate clip has its own T_0 frames: the glance grouping of UniAdaFocus does not apply
        super().__init__(num_candidates=num_glance, num_glance=num_glance, num_focus=1,
                         dropout=dropout, size_reg=size_reg, **kwargs)
        self.num_candidates = num_candidates
        self.num_focus = num_focus
        self.num_exits = 2
        self.exit_offset = 0
        self.repeated_steps_from = None

    def _build_classifier(self, global_channels: int, local_channels: int, hidden: int,
                          dropout: float) -> None:
        """f_C is FC_G + FC_L with frame averaging (:meth:`fuse`): no module of its own."""
        self.fusion_head = None

    def fuse(self, global_feats: torch.Tensor, local_feats: torch.Tensor) -> torch.Tensor:
        """f_C: frame-averaged FC_G logits (exit 0) and their sum with frame-averaged FC_L logits.

        Args:
            global_feats (Tensor): (B, T_G, C_G). local_feats (Tensor): (B, T_L, C_L).

        Returns:
            Tensor: (B, 2, num_classes).
        """
        glance = self.glance_logits(global_feats)
        return torch.stack([glance, glance + self.focus_logits(local_feats)], dim=1)

    def glance_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """Clip logits of the glance: FC_G averaged over the frames. (B, T_G, C_G) -> (B, C)."""
        return self.fc_global(global_feats).mean(dim=1)

    def focus_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """Clip logits of the focus frames: FC_L averaged over the frames. (B, T_L, C_L) -> (B, C)."""
        return self.fc_local(local_feats).mean(dim=1)

    @property
    def clip_length(self) -> int:
        """The glance clip and the focus candidates: T_G + T_0 frames per view."""
        return self.num_glance + self.num_candidates

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        expected = self.clip_length
        if inputs.dim() != 5 or inputs.shape[1] != expected:
            raise ValueError(f'UniAdaFocusTSM expects inputs (B, T_G + T_0 = {expected}, C, H, W) '
                             f'(the glance clip, then the focus candidates), got '
                             f'{tuple(inputs.shape)}')

    def glance_features(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """f_G on the whole glance clip (the first T_G frames)."""
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        frames = inputs[:, :self.num_glance].flatten(0, 1)
        if self.glance_size is not None:
            from mmdynamic.models.utils.patch_sampler import glance
            frames = glance(frames, self.glance_size, mode='bilinear', align_corners=False)
        maps = encode(self.backbone, frames)
        maps = maps.view(batch, self.num_glance, *maps.shape[1:])
        return dict(maps=maps, feats=maps.mean(dim=(-2, -1)))

    def local_features(self, inputs: torch.Tensor, index: torch.Tensor,
                       boxes: torch.Tensor) -> torch.Tensor:
        """f_L on the chosen focus candidates (indices into the candidate clip)."""
        return super().local_features(inputs[:, self.num_glance:], index, boxes)

    def classifier_losses(self, inputs: torch.Tensor, out: Dict[str, torch.Tensor],
                          labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """CE of the final (summed) prediction and of FC_L per focus frame, averaged with the
        random-patch branch (FC_G per glance frame: :meth:`policy_losses`)."""
        ce_final = [_step_ce(out['steps'][:, 1:], labels)]
        ce_local = [_step_ce(self.fc_local(out['local_feats']), labels)]
        if self.random_patch_branch:
            local_feats = self.random_branch_features(inputs, out)
            ce_final.append(_step_ce(self.fuse(out['feats'], local_feats)[:, 1:], labels))
            ce_local.append(_step_ce(self.fc_local(local_feats), labels))
        losses = dict(loss_cls=sum(ce_final) / len(ce_final), loss_local=sum(ce_local) / len(ce_local))
        with torch.no_grad():
            losses['acc_final'] = (out['steps'][:, -1].argmax(-1) == labels).float().mean()
        return losses

    def random_branch_features(self, inputs: torch.Tensor, out: Dict[str, torch.Tensor]
                               ) -> torch.Tensor:
        """Random P x P patches, one place per video (shared by its focus frames, as the policy's)."""
        from .frame_sampling import random_boxes
        boxes = random_boxes((inputs.shape[0], 1), tuple(inputs.shape[-2:]), self.patch_size,
                             device=inputs.device).expand(-1, self.num_focus, -1)
        return self.local_features(inputs, out['focus_index'], boxes)

    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Exit 0: f_G + FC_G averaged. Exit 1: the policy, f_L on the T_L focus frames, + FC_L."""
        if index == 0:
            out = self.glance_features(inputs)
            glance = self.glance_logits(out['feats'])
            return glance, dict(maps=out['maps'], feats=out['feats'], glance=glance)
        plan = self.policy(state['maps'], state['feats'])
        index_, boxes = self.plan_focus(plan['actions'], plan['frame_weights'],
                                        tuple(inputs.shape[-2:]))
        local = self.local_features(inputs, index_, boxes)
        return state['glance'] + self.focus_logits(local), dict()
