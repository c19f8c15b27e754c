# Copyright (c) mmdynamic contributors. All rights reserved.
"""AdaFocusV2 for mmaction2: end-to-end spatial dynamic video recognition (CVPR 2022; spec §2.5, §2.8b).

Every one of the T uniformly sampled frames is glanced at by the global encoder f_G (``backbone``); a
recurrent policy (:class:`RecurrentLocationPolicy`) reads the stop-gradient feature maps frame by frame and
places a fixed P x P patch (Eq. 5); the patch is cropped by bilinear interpolation (Eq. 7), so the
classification loss trains the policy through the pixels (Eq. 8-9); the local encoder f_L
(``local_backbone``) reads the patch and :class:`ConcatMaxPoolHead` predicts after every frame.

Training (Eq. 11-12): CE over every exit + FC_G + FC_L per frame, doubled with random patches and halved.
Sample-wise dynamic computation: exit k follows the (k+1)-th processed frame (f_G, policy, f_L and the
classifier all run per frame); with an ``exit_policy`` exited videos skip both encoders for the remaining
frames.

Official numerics (``official_checkpoints.md``, AdaFocusV2 MN2 + R50):

- ``frame_order='bisection'``: every released command passes ``--sample``, which feeds the T frames in the
  coarse-to-fine order of :func:`bisection_frame_order` ([7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12,
  14] for T = 16) to f_G, the GRU, f_L and the classifier; the exits come in that order. The inputs stay in
  temporal order (the model permutes them), so pipelines and tools see ordinary clips.
- ``glance_size=96`` (the ``res50`` glance): f_G reads the frames resized to 96 x 96 by
  ``F.interpolate(bilinear, align_corners=True)`` (3 x 3 ResNet-50 maps); the patches come from the full
  frames.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.models.utils.patch_sampler import crop_patches, glance
from mmdynamic.registry import MODELS, register_dual
from .feature_reuse_head import ConcatMaxPoolHead
from .frame_sampling import draw_device
from .policies import RecurrentLocationPolicy
from .uni_adafocus import (AdaFocusRecognizerBase, PolicyLike, build_encoder, encode,
                           first_labels)

FRAME_ORDERS = ('temporal', 'bisection')


def bisection_frame_order(num_frames: int) -> List[int]:
    """The official AdaFocusV2 ``--sample`` frame order (``input_order`` of ``main_v2.py``).

    The middle frame ``floor((T - 1) / 2)``, the first and the last, then, for q = 2, 4, 8, ..., the
    midpoints ``floor((a + b) / 2)`` of the consecutive bounds ``a, b`` of ``floor(linspace(0, T - 1,
    q + 1))`` that are not yet taken, left to right, until all T frames are: every prefix covers the
    video coarsely. T = 16 gives [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14].

    Args:
        num_frames (int): T >= 3 (the official rule repeats frames for T < 3).

    Returns:
        list[int]: A permutation of ``range(T)``: the k-th processed frame.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 3:
        raise ValueError(f"the 'bisection' frame order needs num_frames >= 3 (the official rule "
                         f'repeats frames below), got {num_frames!r}')
    order = [(num_frames - 1) // 2, 0, num_frames - 1]
    parts = 2
    while len(order) < num_frames:
        # float64 bounds, floored, as numpy computes them in the official rule
        bounds = np.floor(np.linspace(0, num_frames - 1, parts + 1))
        for lower, upper in zip(bounds[:-1], bounds[1:]):
            middle = int(np.floor((lower + upper) / 2))
            if middle not in order:
                order.append(middle)
        parts *= 2
    return order


def resolve_frame_order(frame_order: Union[str, Sequence[int]], num_frames: int) -> List[int]:
    """The processing order of the T input frames.

    Args:
        frame_order (str | Sequence[int]): 'temporal' (0, 1, ..., T - 1), 'bisection'
            (:func:`bisection_frame_order`, the official ``--sample``) or a permutation of
            ``range(T)``.
        num_frames (int): T.

    Returns:
        list[int]: The input frame read at each step.
    """
    if isinstance(frame_order, str):
        if frame_order not in FRAME_ORDERS:
            raise ValueError(f'frame_order must be one of {FRAME_ORDERS} or a permutation of '
                             f'range({num_frames}), got {frame_order!r}')
        if frame_order == 'temporal':
            return list(range(num_frames))
        return bisection_frame_order(num_frames)
    order = [int(i) for i in frame_order]
    if sorted(order) != list(range(num_frames)):
        raise ValueError(f'frame_order must be a permutation of range({num_frames}) '
                         f'(num_frames), got {list(frame_order)}')
    return order


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
        frame_order (str | Sequence[int]): Order in which the T input frames (in temporal order) are
            processed: 'temporal', 'bisection' (the official ``--sample`` order, set by the configs of
            the released recipes; see :func:`bisection_frame_order`) or a permutation of
            ``range(T)``. Exit k follows the k-th frame of this order. Defaults to 'temporal'.
        glance_size (int, optional): Resize the frames to ``glance_size`` x ``glance_size`` for f_G
            (bilinear, ``align_corners=True``: the official ``res50`` glance uses 96). None (default):
            f_G reads the frames as they are (the ``mbv2`` glance).
        policy_hidden (int): GRU width of the policy. Defaults to 2048.
        fusion_hidden (int): Width of the classifier MLP. Defaults to 4096.
        dropout (float): Dropout of the classifier and of FC_G / FC_L. Defaults to 0.2.
        random_patch_branch (bool): Diversity augmentation. Defaults to True.
        exit_policy (str | dict | ExitPolicy, optional): Early-exit thresholds for prediction.
        data_preprocessor (dict, optional): Defaults to ``ActionDataPreprocessor``.
    """

    def __init__(self, backbone: dict, local_backbone: dict, num_classes: int,
                 global_channels: int = 1280, local_channels: int = 2048, feature_size: int = 7,
                 num_frames: int = 16, patch_size: int = 128,
                 frame_order: Union[str, Sequence[int]] = 'temporal',
                 glance_size: Optional[int] = None, policy_hidden: int = 2048,
                 fusion_hidden: int = 4096, dropout: float = 0.2, random_patch_branch: bool = True,
                 exit_policy: PolicyLike = None, data_preprocessor: Optional[dict] = None) -> None:
        if glance_size is not None and (isinstance(glance_size, bool)
                                        or not isinstance(glance_size, int) or glance_size < 1):
            raise ValueError(f'glance_size must be a positive int or None, got {glance_size!r}')
        order = resolve_frame_order(frame_order, num_frames)
        super().__init__(backbone=backbone, exit_policy=exit_policy,
                         data_preprocessor=data_preprocessor)
        self.local_backbone = build_encoder(local_backbone)
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.patch_size = patch_size
        self.glance_size = glance_size
        self.frame_order = order
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

    def _ordered(self, inputs: torch.Tensor) -> torch.Tensor:
        """The frames in processing order (:attr:`frame_order`). (B, T, C, H, W) -> same shape."""
        if self.frame_order == list(range(self.num_frames)):
            return inputs
        return inputs[:, self.frame_order]

    def glance_features(self, frames: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_G, on the frames resized to ``glance_size`` if set.

        Args:
            frames (Tensor): (B, n, C, H, W).

        Returns:
            tuple: maps (B, n, C_G, h, w) and pooled features (B, n, C_G).
        """
        batch, num = frames.shape[:2]
        images = frames.flatten(0, 1)
        if self.glance_size is not None:
            images = glance(images, self.glance_size, mode='bilinear', align_corners=True)
        maps = encode(self.backbone, images)
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
        """Every frame for every video, in :attr:`frame_order`.

        Args:
            inputs (Tensor): (B, T, C, H, W) in temporal order.
            locations (Tensor, optional): (B, T, 2) patch locations to use instead of the policy's
                (in processing order, as returned).

        Returns:
            dict: ``steps`` (B, T, C) logits of every exit; ``locations`` (B, T, 2), ``feats`` and
            ``local_feats`` per processed frame: index k belongs to input frame ``frame_order[k]``.
        """
        self._check_inputs(inputs)
        inputs = self._ordered(inputs)
        maps, feats = self.glance_features(inputs)
        if locations is None:
            locations, _ = self.policy(maps.detach())
        local_feats = self.local_features(inputs, locations)
        steps = self.fusion_head(torch.cat([feats, local_feats], dim=-1))
        return dict(steps=steps, locations=locations, feats=feats, local_feats=local_feats)

    def loss(self, inputs: torch.Tensor, data_samples: Sequence,
             generator: Optional[torch.Generator] = None, **kwargs) -> Dict[str, torch.Tensor]:
        """Eq. 12: ½ (L' + L'_random), L' = CE over every exit + CE of FC_G and FC_L per frame.

        Args:
            inputs (Tensor): (B, T, C, H, W) in temporal order.
            data_samples (Sequence[ActionDataSample]): With ``gt_label``.
            generator (torch.Generator, optional): For the random patch locations (None: torch's
                global generator).
        """
        labels = first_labels(data_samples, inputs.device)

        def step_ce(steps: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(steps.flatten(0, 1), labels.repeat_interleave(steps.shape[1]))

        out = self.forward_steps(inputs)
        inputs = self._ordered(inputs)  # the frames of out's locations
        ce_steps = [step_ce(out['steps'])]
        ce_local = [step_ce(self.fc_local(out['local_feats']))]
        if self.random_patch_branch:
            shape = out['locations'].shape
            # drawn on the generator's device (a CPU generator cannot draw CUDA tensors)
            random_locations = torch.rand(shape, generator=generator,
                                          device=draw_device(generator, inputs.device),
                                          dtype=out['locations'].dtype).to(inputs.device)
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
        """Step ``index`` reads input frame ``frame_order[index]``: f_G, one policy step, the patch,
        f_L, exit ``index``."""
        frame = inputs[:, self.frame_order[index]][:, None]
        maps, feats = self.glance_features(frame)
        location, hidden = self.policy(maps.detach(), state['hidden'])
        local = self.local_features(frame, location)
        logits, running = self.fusion_head.step(index, torch.cat([feats, local], -1)[:, 0],
                                                state.get('running'))
        return logits, dict(hidden=hidden, running=running)
