# Copyright (c) mmdynamic contributors. All rights reserved.
"""AdaFocusV2-TSM: AdaFocusV2 in the Something-Something / Jester setting (CVPR 2022; spec §2.5, §2.8b;
``official_checkpoints.md``, AdaFocusV2-TSM).

Each video comes as two independently sampled clips, packed as one input (B, T_G + T_L, C, H, W) by
:class:`~mmdynamic.datasets.transforms.SampleGlanceAndFocusFrames` (``num_candidates = T_L``): the T_G
glance frames, read by f_G (a TSM-MobileNet-V2 with ``num_segments = T_G``), and the T_L focus frames.

- One patch location per video: :class:`VideoLocationPolicy` reads the stop-gradient glance maps of
  all T_G frames stacked on the channel axis ((B, T_G * 1280, 7, 7) -> 1x1 conv -> 64 -> MLP 3136 ->
  1024 -> 512 -> 2 -> sigmoid) and places one P x P patch, top-left ``a * (H - P)``.
- The same patch is cropped from all T_L focus frames by bilinear interpolation (differentiable in the
  location) and read by f_L (a TSM-ResNet-50 with ``num_segments = T_L``).
- Two heads per encoder, as the official TSN: the prediction heads (``fc_global``, ``fc_local``;
  official ``new_fc``) read the *detached* pooled features; the frame heads (``fc_global_frame``,
  ``fc_local_frame``; official ``new_new_fc``) read them as they are and carry the auxiliary losses.
  The prediction is ``avg_t fc_global(g_t) + avg_t fc_local(l_t)`` (official ``logit``).
- Two exits for the project's step-wise interface: exit 0 after the glance (``glance_exit``), exit 1 =
  the prediction (the policy, f_L on the T_L patches).

Training (official ``main.py``): one pass with random patch locations and one with the policy's, each
with its own f_L batch; per pass ``CE(prediction) + CE(avg_t fc_global_frame) + CE(avg_t
fc_local_frame)``, the two passes averaged. The prediction loss trains only the prediction heads; the
encoders learn from the frame heads, and the policy from ``fc_local_frame`` through the crop.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdynamic.models.utils.patch_sampler import crop_patches
from mmdynamic.registry import MODELS, register_dual
from .frame_sampling import draw_device
from .policies import VideoLocationPolicy
from .uni_adafocus import (AdaFocusRecognizerBase, PolicyLike, build_encoder, encode,
                           first_labels)
from .uni_adafocus_tsm import GLANCE_EXITS


@register_dual(MODELS)
class AdaFocusV2TSM(AdaFocusRecognizerBase):
    """AdaFocusV2-TSM recognizer (released: Sth-Sth V1/V2 P128-P176, Jester P128/P176; 8 + 12 frames).

    Heads and policy (module: official key, shape on Sth-Sth; for a checkpoint converter, the
    ``global_CNN`` / ``local_CNN`` encoders map as in the Uni-AdaFocus-TSM rules):

    - ``fc_global.1`` / ``fc_global_frame.1``: ``global_CNN.new_fc`` / ``.new_new_fc``, [174, 1280];
    - ``fc_local.1`` / ``fc_local_frame.1``: ``local_CNN.new_fc`` / ``.new_new_fc``, [174, 2048];
    - ``policy.embed.{0, 1, 4, 5}``: ``policy_stn.{0, 1, 4, 5}``, [64, 10240, 1, 1], BN2d(64),
      [1024, 3136], BN1d(1024);
    - ``policy.hidden.{0, 1}``: ``policy_stn.{7, 8}``, [512, 1024], BN1d(512);
    - ``policy.out``: ``policy_stn.10``, [2, 512].

    Args:
        backbone (dict): f_G, a TSM-MobileNet-V2 with ``num_segments = num_glance``.
        local_backbone (dict): f_L, a TSM-ResNet-50 with ``num_segments = num_focus``.
        num_classes (int): Number of classes.
        global_channels (int): Channels of f_G's maps. Defaults to 1280.
        local_channels (int): Channels of f_L's maps. Defaults to 2048.
        feature_size (int): Side of f_G's maps (7 for 224 frames).
        num_glance (int): T_G glance frames. Defaults to 8.
        num_focus (int): T_L focus frames (official ``int(1.5 T_G)`` = 12). Defaults to 12.
        patch_size (int): P. Defaults to 128.
        policy_hidden (Sequence[int]): Hidden widths of the policy MLP. Defaults to (1024, 512).
        policy_mid_channels (int): Channels of the policy's 1x1 conv. Defaults to 64.
        dropout (float): Dropout before every head (official ``--dropout 0.5``). Defaults to 0.5.
        head_init_std (float): Std of the normal initialisation of the four heads' weights (biases
            0), as the official TSN. Defaults to 0.001.
        glance_exit (str): Exit 0: 'frame_heads' (``avg_t fc_global_frame``, the head trained on
            its own, as the official Uni-AdaFocus-TSM early-exit code) or 'prediction_heads' (the
            glance part of the prediction). Defaults to 'frame_heads'.
        random_patch_branch (bool): The official second training pass on random patch locations.
            Defaults to True.
        exit_policy (str | dict | ExitPolicy, optional): Early-exit thresholds for prediction.
        data_preprocessor (dict, optional): Defaults to ``ActionDataPreprocessor``.
    """

    def __init__(self, backbone: dict, local_backbone: dict, num_classes: int,
                 global_channels: int = 1280, local_channels: int = 2048, feature_size: int = 7,
                 num_glance: int = 8, num_focus: int = 12, patch_size: int = 128,
                 policy_hidden: Sequence[int] = (1024, 512), policy_mid_channels: int = 64,
                 dropout: float = 0.5, head_init_std: float = 0.001,
                 glance_exit: str = 'frame_heads', random_patch_branch: bool = True,
                 exit_policy: PolicyLike = None, data_preprocessor: Optional[dict] = None) -> None:
        if glance_exit not in GLANCE_EXITS:
            raise ValueError(f'glance_exit must be one of {GLANCE_EXITS}, got {glance_exit!r}')
        for name, value in (('num_glance', num_glance), ('num_focus', num_focus),
                            ('patch_size', patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        super().__init__(backbone=backbone, exit_policy=exit_policy,
                         data_preprocessor=data_preprocessor)
        self.local_backbone = build_encoder(local_backbone)
        self.num_classes = num_classes
        self.num_glance = num_glance
        self.num_focus = num_focus
        self.patch_size = patch_size
        self.glance_exit = glance_exit
        self.random_patch_branch = random_patch_branch
        self.num_exits = 2
        self.policy = VideoLocationPolicy(global_channels, num_glance, feature_size,
                                          tuple(policy_hidden), policy_mid_channels)
        heads = {}
        for name, channels in (('fc_global', global_channels), ('fc_global_frame', global_channels),
                               ('fc_local', local_channels), ('fc_local_frame', local_channels)):
            heads[name] = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
            nn.init.normal_(heads[name][1].weight, 0, head_init_std)
            nn.init.zeros_(heads[name][1].bias)
        self.fc_global = heads['fc_global']
        self.fc_global_frame = heads['fc_global_frame']
        self.fc_local = heads['fc_local']
        self.fc_local_frame = heads['fc_local_frame']

    # ------------------------------------------------------------------ inputs and encoders
    @property
    def clip_length(self) -> int:
        """The glance clip and the focus clip: T_G + T_L frames per view."""
        return self.num_glance + self.num_focus

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        if inputs.dim() != 5 or inputs.shape[1] != self.clip_length:
            raise ValueError(f'AdaFocusV2TSM expects inputs (B, T_G + T_L = {self.clip_length}, C, '
                             f'H, W) (the glance clip, then the focus clip: '
                             f'SampleGlanceAndFocusFrames(num_glance={self.num_glance}, '
                             f'num_candidates={self.num_focus})), got {tuple(inputs.shape)}')
        if self.patch_size > min(inputs.shape[-2:]):
            raise ValueError(f'patch_size {self.patch_size} exceeds the frames '
                             f'{tuple(inputs.shape[-2:])}')

    def glance_features(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_G on the glance clip (the first T_G frames, full size).

        Args:
            inputs (Tensor): (B, T_G + T_L, C, H, W).

        Returns:
            tuple: maps (B, T_G, C_G, h, w) and pooled features (B, T_G, C_G).
        """
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        maps = encode(self.backbone, inputs[:, :self.num_glance].flatten(0, 1))
        maps = maps.view(batch, self.num_glance, *maps.shape[1:])
        return maps, maps.mean(dim=(-2, -1))

    def local_features(self, inputs: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        """f_L on the P x P patch at each video's location, cropped from all its T_L focus frames
        (bilinear, differentiable in the location).

        Args:
            inputs (Tensor): (B, T_G + T_L, C, H, W).
            locations (Tensor): (B, 2) normalised top-left (a_y, a_x).

        Returns:
            Tensor: (B, T_L, C_L) pooled local features.
        """
        batch = inputs.shape[0]
        frames = inputs[:, self.num_glance:].flatten(0, 1)
        patches = crop_patches(frames, locations.repeat_interleave(self.num_focus, dim=0),
                               self.patch_size, backend='bilinear', anchor='topleft')
        maps = encode(self.local_backbone, patches)
        return maps.mean(dim=(-2, -1)).view(batch, self.num_focus, -1)

    # ------------------------------------------------------------------ heads
    def glance_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """Exit 0 (see ``glance_exit``). (B, T_G, C_G) -> (B, C)."""
        if self.glance_exit == 'frame_heads':
            return self.fc_global_frame(global_feats).mean(dim=1)
        return self.glance_prediction(global_feats)

    def glance_prediction(self, global_feats: torch.Tensor) -> torch.Tensor:
        """The glance part of the prediction: ``fc_global`` on the detached features, averaged over
        the frames. (B, T_G, C_G) -> (B, C)."""
        return self.fc_global(global_feats.detach()).mean(dim=1)

    def focus_prediction(self, local_feats: torch.Tensor) -> torch.Tensor:
        """The focus part of the prediction: ``fc_local`` on the detached features, averaged over the
        frames. (B, T_L, C_L) -> (B, C)."""
        return self.fc_local(local_feats.detach()).mean(dim=1)

    # ------------------------------------------------------------------ batched forward
    def forward_steps(self, inputs: torch.Tensor,
                      locations: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Both exits for every video.

        Args:
            inputs (Tensor): (B, T_G + T_L, C, H, W).
            locations (Tensor, optional): (B, 2) patch locations to use instead of the policy's.

        Returns:
            dict: ``steps`` (B, 2, C) (exit 0, the prediction), ``locations`` (B, 2), ``maps``,
            ``feats`` (B, T_G, C_G) and ``local_feats`` (B, T_L, C_L).
        """
        maps, feats = self.glance_features(inputs)
        if locations is None:
            locations = self.policy(maps.detach())
        local_feats = self.local_features(inputs, locations)
        prediction = self.glance_prediction(feats) + self.focus_prediction(local_feats)
        steps = torch.stack([self.glance_logits(feats), prediction], dim=1)
        return dict(steps=steps, locations=locations, maps=maps, feats=feats,
                    local_feats=local_feats)

    def loss(self, inputs: torch.Tensor, data_samples: Sequence,
             generator: Optional[torch.Generator] = None, **kwargs) -> Dict[str, torch.Tensor]:
        """The official AdaFocusV2-TSM objective: ``(L_random + L_policy) / 2`` with
        ``L = CE(prediction) + CE(avg_t fc_global_frame) + CE(avg_t fc_local_frame)``.

        The random pass runs first (as the official code, which matters for the BatchNorm running
        statistics of f_L); each pass is its own f_L batch.

        Args:
            inputs (Tensor): (B, T_G + T_L, C, H, W).
            data_samples (Sequence[ActionDataSample]): With ``gt_label``.
            generator (torch.Generator, optional): For the random patch locations (None: torch's
                global generator). Dropout still draws from the global generator.

        Returns:
            dict: ``loss_cls`` (the prediction, averaged over the passes), ``loss_global`` (the
            glance frame head, the same in both passes), ``loss_local`` (the focus frame head,
            averaged over the passes) and ``acc_final`` (no gradient).
        """
        labels = first_labels(data_samples, inputs.device)
        maps, feats = self.glance_features(inputs)
        glance_prediction = self.glance_prediction(feats)
        locations = [self.policy(maps.detach())]
        if self.random_patch_branch:
            # drawn on the generator's device (a CPU generator cannot draw CUDA tensors)
            locations.insert(0, torch.rand(inputs.shape[0], 2, generator=generator,
                                           device=draw_device(generator, inputs.device),
                                           dtype=inputs.dtype).to(inputs.device))
        ce_final: List[torch.Tensor] = []
        ce_local: List[torch.Tensor] = []
        for loc in locations:
            local_feats = self.local_features(inputs, loc)
            prediction = glance_prediction + self.focus_prediction(local_feats)
            ce_final.append(F.cross_entropy(prediction, labels))
            ce_local.append(F.cross_entropy(self.fc_local_frame(local_feats).mean(dim=1), labels))
        losses = dict(loss_cls=sum(ce_final) / len(ce_final),
                      loss_global=F.cross_entropy(self.fc_global_frame(feats).mean(dim=1), labels),
                      loss_local=sum(ce_local) / len(ce_local))
        with torch.no_grad():
            # the policy pass (the last one), as the official training accuracy
            losses['acc_final'] = (prediction.argmax(-1) == labels).float().mean()
        return losses

    # ------------------------------------------------------------------ step-wise (early exit)
    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Exit 0: f_G and :meth:`glance_logits`. Exit 1: the policy, f_L on the T_L patches and the
        prediction.

        Returns:
            tuple: logits (B, C) and the next state (a new dict; batch-first tensors).
        """
        if index == 0:
            maps, feats = self.glance_features(inputs)
            return self.glance_logits(feats), dict(maps=maps, feats=feats)
        local_feats = self.local_features(inputs, self.policy(state['maps']))
        return self.glance_prediction(state['feats']) + self.focus_prediction(local_feats), {}
