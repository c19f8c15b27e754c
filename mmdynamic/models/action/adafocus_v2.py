# Copyright (c) mmdynamic contributors. All rights reserved.
"""AdaFocusV2 for mmaction2: end-to-end spatial dynamic video recognition (CVPR 2022; spec §2.5, §2.8b).

Every one of the T uniformly sampled frames is glanced at by the global encoder f_G (``backbone``); a
recurrent policy (:class:`RecurrentLocationPolicy`) reads the stop-gradient feature maps frame by frame and
places a fixed P x P patch (Eq. 5); the patch is cropped by bilinear interpolation (Eq. 7), so the
classification loss trains the policy through the pixels (Eq. 8-9); the local encoder f_L
(``local_backbone``) reads the patch and :class:`ConcatMaxPoolHead` predicts after every frame.

Training (Eq. 11-12): CE over every exit + FC_G + FC_L per frame, doubled with random patches and halved.
Sample-wise dynamic computation: exit t follows frame t (f_G, policy, f_L and the classifier all run per
frame); with an ``exit_policy`` exited videos skip both encoders for the remaining frames.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.models.utils.patch_sampler import crop_patches
from mmdynamic.registry import MODELS, register_dual
from .feature_reuse_head import ConcatMaxPoolHead
from .policies import RecurrentLocationPolicy
from .uni_adafocus import (AdaFocusRecognizerBase, PolicyLike, build_encoder, encode,
                           first_labels)


@register_dual(MODELS)
class AdaFocusV2(AdaFocusRecognizerBase):
    """AdaFocusV2 recognizer.

    Args:
        backbone (dict): Global encoder f_G on full frames (MobileNet-V2).
        local_backbone (dict): Local encoder f_L on P x P patches (ResNet-50).
        num_classes (int): Number of classes.
        global_channels (int): Channels of f_G's feature map. Defaults to 1280.
        local_channels (int): Channels of f_L's feature map. Defaults to 2048.
        feature_size (int): Side of f_G's feature map (7 for 224 frames).
        num_frames (int): T frames per video (the input clip length). Defaults to 16.
        patch_size (int): P. Defaults to 128.
        policy_hidden (int): GRU width of the policy. Defaults to 2048.
        fusion_hidden (int): Width of the classifier MLP. Defaults to 4096.
        dropout (float): Dropout of the classifier and of FC_G / FC_L. Defaults to 0.2.
        random_patch_branch (bool): Diversity augmentation. Defaults to True.
        exit_policy (str | dict | ExitPolicy, optional): Early-exit thresholds for prediction.
        data_preprocessor (dict, optional): Defaults to ``ActionDataPreprocessor``.
    """

    def __init__(self, backbone: dict, local_backbone: dict, num_classes: int,
                 global_channels: int = 1280, local_channels: int = 2048, feature_size: int = 7,
                 num_frames: int = 16, patch_size: int = 128, policy_hidden: int = 2048,
                 fusion_hidden: int = 4096, dropout: float = 0.2, random_patch_branch: bool = True,
                 exit_policy: PolicyLike = None, data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, exit_policy=exit_policy,
                         data_preprocessor=data_preprocessor)
        self.local_backbone = build_encoder(local_backbone)
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.patch_size = patch_size
        self.random_patch_branch = random_patch_branch
        self.num_exits = num_frames
        self.repeated_steps_from = 1  # every frame runs the same modules on the same shapes
        self.policy = RecurrentLocationPolicy(global_channels, feature_size, policy_hidden)
        self.fusion_head = ConcatMaxPoolHead(global_channels + local_channels, num_classes,
                                             num_frames, fusion_hidden, dropout)
        self.fc_global = nn.Sequential(nn.Dropout(dropout), nn.Linear(global_channels, num_classes))
        self.fc_local = nn.Sequential(nn.Dropout(dropout), nn.Linear(local_channels, num_classes))

    @property
    def clip_length(self) -> int:
        """T frames per view."""
        return self.num_frames

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        if inputs.dim() != 5 or inputs.shape[1] != self.num_frames:
            raise ValueError(f'AdaFocusV2 expects inputs (B, T={self.num_frames}, C, H, W), got '
                             f'{tuple(inputs.shape)}')
        if self.patch_size > min(inputs.shape[-2:]):
            raise ValueError(f'patch_size {self.patch_size} exceeds the frames '
                             f'{tuple(inputs.shape[-2:])}')

    def glance_features(self, frames: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_G. Args: frames (B, n, C, H, W). Returns: maps (B, n, C_G, h, w), feats (B, n, C_G)."""
        batch, num = frames.shape[:2]
        maps = encode(self.backbone, frames.flatten(0, 1))
        maps = maps.view(batch, num, *maps.shape[1:])
        return maps, maps.mean(dim=(-2, -1))

    def local_features(self, frames: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        """f_L on bilinear P x P crops at normalised top-left ``locations`` (B, n, 2) (differentiable).

        Returns:
            Tensor: (B, n, C_L).
        """
        batch, num = frames.shape[:2]
        patches = crop_patches(frames.flatten(0, 1), locations.reshape(-1, 2), self.patch_size,
                               backend='bilinear', anchor='topleft')
        return encode(self.local_backbone, patches).mean(dim=(-2, -1)).view(batch, num, -1)

    def forward_steps(self, inputs: torch.Tensor,
                      locations: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Every frame for every video.

        Args:
            inputs (Tensor): (B, T, C, H, W).
            locations (Tensor, optional): (B, T, 2) patch locations to use instead of the policy's.

        Returns:
            dict: ``steps`` (B, T, C) logits of every exit, ``locations``, ``feats``, ``local_feats``.
        """
        self._check_inputs(inputs)
        maps, feats = self.glance_features(inputs)
        if locations is None:
            locations, _ = self.policy(maps.detach())
        local_feats = self.local_features(inputs, locations)
        steps = self.fusion_head(torch.cat([feats, local_feats], dim=-1))
        return dict(steps=steps, locations=locations, feats=feats, local_feats=local_feats)

    def loss(self, inputs: torch.Tensor, data_samples: Sequence, **kwargs) -> Dict[str, torch.Tensor]:
        """Eq. 12: ½ (L' + L'_random), L' = CE over every exit + CE of FC_G and FC_L per frame."""
        labels = first_labels(data_samples, inputs.device)

        def step_ce(steps: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(steps.flatten(0, 1), labels.repeat_interleave(steps.shape[1]))

        out = self.forward_steps(inputs)
        ce_steps = [step_ce(out['steps'])]
        ce_local = [step_ce(self.fc_local(out['local_feats']))]
        if self.random_patch_branch:
            random_locations = torch.rand_like(out['locations'])
            local_feats = self.local_features(inputs, random_locations)
            ce_steps.append(step_ce(self.fusion_head(torch.cat([out['feats'], local_feats], -1))))
            ce_local.append(step_ce(self.fc_local(local_feats)))
        losses = dict(loss_cls=sum(ce_steps) / len(ce_steps),
                      loss_global=step_ce(self.fc_global(out['feats'])),
                      loss_local=sum(ce_local) / len(ce_local))
        with torch.no_grad():
            losses['acc_final'] = (out['steps'][:, -1].argmax(-1) == labels).float().mean()
        return losses

    def init_state(self, inputs: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        self._check_inputs(inputs)
        return dict(hidden=inputs.new_zeros(inputs.shape[0], self.policy.hidden_channels))

    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Frame ``index``: f_G, one policy step, the patch, f_L, exit ``index``."""
        frame = inputs[:, index:index + 1]
        maps, feats = self.glance_features(frame)
        location, hidden = self.policy(maps.detach(), state['hidden'])
        local = self.local_features(frame, location)
        logits, running = self.fusion_head.step(index, torch.cat([feats, local], -1)[:, 0],
                                                state.get('running'))
        return logits, dict(hidden=hidden, running=running)
