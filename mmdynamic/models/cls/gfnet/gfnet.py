# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet: Glance and Focus Networks for dynamic image classification (Huang et al., T-PAMI 2023;
NeurIPS 2020). See ``configs/gfnet/README.md``."""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmdynamic.models.cls.stepwise_classifier import StepwiseClassifier
from mmdynamic.models.utils.patch_sampler import crop_patches, glance
from mmdynamic.registry import MODELS, register_dual

from .classifier import GFCascadeClassifier, GFRecurrentClassifier
from .encoder import GFEncoder
from .policy import GFPatchPolicy
from .ppo import (PPOConfig, RolloutBuffer, contrastive_reward, discounted_returns,
                  increment_reward, ppo_loss)

STAGES = (1, 2, 3)
GLANCE_HEADS = ('classifier', 'encoder')
LOCATION_MODES = ('random', 'sample', 'mean')


@dataclass
class GFRollout:
    """Everything one pass over the steps produced (batch-first).

    Args:
        logits (Tensor): (T, B, C) logits of every exit.
        aux_logits (Tensor, optional): (T, B, C) logits of the encoders' own (DSN) heads (None
            when the rollout did not need them).
        locations (Tensor): (B, T - 1, 2) (row, col) locations of the focus patches in [0, 1].
        fmaps (Tensor, optional): (B, T - 1, C, s, s) feature maps the focus decisions used.
        actions (Tensor, optional): (B, T - 1, 2) the locations chosen (as ``locations``).
        logps (Tensor, optional): (B, T - 1) log-probabilities of sampled actions.
        random_logits (Tensor, optional): (T - 1, B, C) logits after a random patch instead of the
            policy's, from the same previous state (contrastive reward).
    """
    logits: torch.Tensor
    aux_logits: Optional[torch.Tensor]
    locations: torch.Tensor
    fmaps: Optional[torch.Tensor] = None
    actions: Optional[torch.Tensor] = None
    logps: Optional[torch.Tensor] = None
    random_logits: Optional[torch.Tensor] = None


@register_dual(MODELS)
class GFNet(StepwiseClassifier):
    """Glance and Focus Network (GFNet) classifier.

    Step 0 (glance) classifies the whole image resized to ``glance_size`` with the global encoder
    fG; step t >= 1 (focus) classifies a ``patch_size`` crop at native resolution with the local
    encoder fL, placed by the patch policy pi from the previous feature map. The classifier fC
    aggregates the pooled features over the steps. All recurrent states are explicit (batch-first),
    so :class:`~mmdynamic.models.utils.EarlyExitExecutor` can drop exited samples.

    Training is staged (``train_stage``): 1 trains fG, fL, fC and the DSN heads with uniformly
    random patch locations; 2 trains only pi with PPO (everything else frozen and in eval mode); 3
    fine-tunes fL, fC (and fG) with locations sampled from the fixed pi. Evaluation uses random
    locations in stage 1 and the policy's mean action afterwards (``test_locations`` overrides).

    Cost accounting (``exit_macs``): what runs is counted. The policy call that places patch t runs
    at the start of step t, so exit k includes k policy calls (none at the glance): for
    GF-ResNet-50 (P=96, T=5) the policy is counted T - 1 times, as in the paper's cumulative costs.
    With ``glance_head='encoder'`` the glance step runs fG's head and the GRU update of fC (its
    state feeds step 1), not fC's linear layer, whose logits would be discarded.

    Inference runs only what the prediction needs: the DSN heads run in training (stages 1 and 3
    with ``dsn_ratio > 0``) and, with ``glance_head='encoder'``, fG's head at the glance; the
    critic of pi runs only in the PPO update (stage 2). Predictions are the same either way.

    Args:
        num_classes (int): Number of classes.
        global_encoder (dict): :class:`GFEncoder` arguments of fG (``backbone``, ``in_channels``,
            optional ``pre_logits_channels``, ``pre_logits_act``, ``dropout``).
        local_encoder (dict, optional): Those of fL. Defaults to the same as fG (separate weights).
        patch_size (int): P, the side of the focus patches. Defaults to 96.
        num_steps (int): T, the glance plus T - 1 focus steps. Defaults to 5.
        classifier (dict): ``dict(type='recurrent', hidden_channels=1024)`` or
            ``dict(type='cascade')``.
        policy (dict): :class:`GFPatchPolicy` arguments (``variant``, ``hidden_channels``,
            ``action_std``, ...). ``feature_size`` defaults to ceil(P / 32).
        glance_size (int, optional): Side of the glance input. Defaults to ``patch_size``.
        glance_interp (str): Interpolation of the glance resize ('bicubic' or 'bilinear'), on the
            normalised batch with ``align_corners=True``. Defaults to 'bicubic'.
        glance_head (str): Prediction of step 0 at inference: 'classifier' (fC) or 'encoder' (fG's
            own head: the cascade models, and the official RegNet inference). Defaults to
            'classifier'.
        train_glance_head (str, optional): Prediction of step 0 in training (the loss, the
            rewards), when it differs from ``glance_head``: the official RegNet code trains with
            fC's step-0 logits ('classifier') and infers with fG's head ('encoder'). None: as
            ``glance_head``.
        crop_anchor (str): 'topleft' (official: corner = l * (H - P)) or 'centre'.
        crop_backend (str): 'slice' (official, whole pixels) or 'bilinear'.
        train_stage (int): 1, 2 or 3.
        dsn_ratio (float): Weight lambda of the DSN heads (Eq. 6): 1 (ResNet/DenseNet/RegNet) or
            5 (MobileNetV3/EfficientNet).
        freeze_global_encoder (bool): Keep fG (and its head) frozen and in eval mode in every
            stage (MobileNetV3/EfficientNet).
        reward (str): Stage-II reward: 'increment' (Eq. 4, official code) or 'contrastive'
            (Eq. 8, T-PAMI).
        ppo (dict): :class:`~mmdynamic.models.cls.gfnet.ppo.PPOConfig` fields (gamma 0.7, clip
            0.2, value_coef 0.5, entropy_coef 0.01, normalize_returns True).
        test_locations (str, optional): Locations at evaluation: 'mean' (the policy's mean action),
            'random' or 'sample'. Defaults to 'random' in stage 1 and 'mean' afterwards.
        exit_policy, data_preprocessor, init_cfg: See :class:`StepwiseClassifier`.
    """

    def __init__(self, num_classes: int, global_encoder: dict,
                 local_encoder: Optional[dict] = None, patch_size: int = 96, num_steps: int = 5,
                 classifier: dict = dict(type='recurrent', hidden_channels=1024),
                 policy: dict = dict(variant='fc', hidden_channels=1024),
                 glance_size: Optional[int] = None, glance_interp: str = 'bicubic',
                 glance_head: str = 'classifier', train_glance_head: Optional[str] = None,
                 crop_anchor: str = 'topleft',
                 crop_backend: str = 'slice', train_stage: int = 1, dsn_ratio: float = 1.0,
                 freeze_global_encoder: bool = False, reward: str = 'increment',
                 ppo: Optional[dict] = None, test_locations: Optional[str] = None,
                 exit_policy=None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(exit_policy=exit_policy, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if train_stage not in STAGES:
            raise ValueError(f'train_stage must be one of {STAGES}, got {train_stage!r}')
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        if patch_size < 1:
            raise ValueError(f'patch_size must be positive, got {patch_size}')
        train_glance_head = train_glance_head or glance_head
        for name, value in (('glance_head', glance_head), ('train_glance_head', train_glance_head)):
            if value not in GLANCE_HEADS:
                raise ValueError(f"{name} must be 'classifier' or 'encoder', got {value!r}")
        if reward not in ('increment', 'contrastive'):
            raise ValueError(f"reward must be 'increment' or 'contrastive', got {reward!r}")
        if glance_interp not in ('bicubic', 'bilinear'):
            raise ValueError(f"glance_interp must be 'bicubic' or 'bilinear', got "
                             f'{glance_interp!r}')
        if test_locations is not None and test_locations not in LOCATION_MODES:
            raise ValueError(f'test_locations must be one of {LOCATION_MODES}, got '
                             f'{test_locations!r}')
        if crop_anchor not in ('topleft', 'centre') or crop_backend not in ('slice', 'bilinear'):
            raise ValueError("crop_anchor must be 'topleft' or 'centre' and crop_backend 'slice' "
                             f'or bilinear, got {crop_anchor!r} and {crop_backend!r}')
        self.num_classes = num_classes
        self.num_exits = num_steps
        self.patch_size = patch_size
        self.glance_size = glance_size or patch_size
        self.glance_interp = glance_interp
        self.glance_head = glance_head
        self.train_glance_head = train_glance_head
        self.crop_anchor = crop_anchor
        self.crop_backend = crop_backend
        self.train_stage = train_stage
        self.dsn_ratio = float(dsn_ratio)
        self.freeze_global_encoder = freeze_global_encoder
        self.reward = reward
        self.ppo_cfg = PPOConfig(**(ppo or {}))
        self.test_locations = test_locations or ('random' if train_stage == 1 else 'mean')

        self.global_encoder = GFEncoder(num_classes=num_classes, **global_encoder)
        self.local_encoder = GFEncoder(num_classes=num_classes,
                                       **(local_encoder or global_encoder))
        feature_dim = self.local_encoder.feature_dim
        if self.global_encoder.feature_dim != feature_dim:
            raise ValueError('fG and fL must give pooled features of the same width, got '
                             f'{self.global_encoder.feature_dim} and {feature_dim}')
        classifier = dict(classifier)
        kind = classifier.pop('type', 'recurrent')
        if kind == 'recurrent':
            self.classifier = GFRecurrentClassifier(feature_dim, num_classes, **classifier)
        elif kind == 'cascade':
            if 'classifier' in (glance_head, train_glance_head) and not classifier.get(
                    'glance_head', False):
                raise ValueError("the cascade classifier predicts the glance with fG's head: set "
                                 "glance_head='encoder' and train_glance_head None or 'encoder' "
                                 '(or classifier.glance_head=True)')
            self.classifier = GFCascadeClassifier(feature_dim, num_classes, num_steps,
                                                  **classifier)
        else:
            raise ValueError(f"classifier type must be 'recurrent' or 'cascade', got {kind!r}")
        policy = dict(policy)
        policy.setdefault('feature_size', math.ceil(patch_size / 32))
        self.policy = GFPatchPolicy(in_channels=self.local_encoder.in_channels, **policy)
        self._apply_freezing()

    # ------------------------------------------------------------------ stages
    def frozen_modules(self) -> List[nn.Module]:
        """Modules that this stage does not train (kept in eval mode, no gradients)."""
        if self.train_stage == 2:
            return [self.global_encoder, self.local_encoder, self.classifier]
        frozen = [self.policy]
        if self.freeze_global_encoder:
            frozen.append(self.global_encoder)
        return frozen

    def _apply_freezing(self) -> None:
        for module in self.frozen_modules():
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> 'GFNet':
        super().train(mode)
        if mode:
            for module in self.frozen_modules():
                module.eval()
        return self

    def location_mode(self) -> str:
        """How focus locations are chosen now: by stage in training, ``test_locations`` in eval."""
        if not self.training:
            return self.test_locations
        return {1: 'random', 2: 'sample', 3: 'sample'}[self.train_stage]

    def batch_dependent_steps(self) -> Optional[str]:
        """Random or sampled focus locations are drawn for the whole batch at once, so a sample's
        locations depend on its batch (see :meth:`StepwiseMixin.batch_dependent_steps`)."""
        mode = self.location_mode()
        if mode == 'mean':
            return None
        return (f"focus locations are drawn at random (location mode {mode!r}, e.g. "
                "test_locations='random' or a stage-1 model), so each sample's patches depend on "
                "the batch it runs in; use test_locations='mean' (a stage-2/3 policy)")

    # ------------------------------------------------------------------ steps
    def init_state(self, inputs: torch.Tensor) -> Dict[str, Optional[torch.Tensor]]:
        """Zero recurrent states of fC and pi, no feature map and no locations yet."""
        batch = inputs.shape[0]
        return dict(classifier=self.classifier.init_state(batch, inputs),
                    policy=self.policy.init_state(batch, inputs), fmap=None,
                    locations=inputs.new_zeros(batch, 0, 2))

    def current_glance_head(self) -> str:
        """What predicts step 0 now: ``train_glance_head`` in training, ``glance_head`` in eval."""
        return self.train_glance_head if self.training else self.glance_head

    def _encode_focus(self, inputs: torch.Tensor, locations: torch.Tensor):
        patches = crop_patches(inputs, locations, self.patch_size, backend=self.crop_backend,
                               anchor=self.crop_anchor)
        return self.local_encoder(patches)

    def _choose(self, mean: torch.Tensor, mode: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if mode == 'mean':
            return mean, None
        if mode == 'sample':
            return self.policy.sample(mean)
        return torch.rand_like(mean), None

    def _step(self, index: int, inputs: torch.Tensor, state: Dict, mode: str,
              with_aux: bool = False) -> Dict:
        """One step.

        Args:
            index (int): 0-based step.
            inputs (Tensor): (B, 3, H, W) normalised images.
            state (dict): See :meth:`init_state`.
            mode (str): Location mode ('random', 'sample', 'mean').
            with_aux (bool): Also run the encoder's own (DSN) head (training). Without it the head
                runs only where it gives the prediction (the glance with ``glance_head='encoder'``).

        Returns:
            dict: ``logits`` (B, C), ``aux_logits`` (B, C) or None, ``state`` and, for focus steps,
            ``fmap_in`` (the map the decision used), ``action`` and ``logp``.
        """
        out = {}
        locations = state['locations']
        policy_state = state['policy']
        glance_by_encoder = index == 0 and self.current_glance_head() == 'encoder'
        if index == 0:
            pooled, fmap = self.global_encoder(
                glance(inputs, self.glance_size, mode=self.glance_interp, align_corners=True))
            aux = (self.global_encoder.head(pooled) if with_aux or glance_by_encoder else None)
        else:
            if state['fmap'] is None:
                raise ValueError('a focus step needs the state of the previous step')
            if mode == 'random':
                action, logp = torch.rand(inputs.shape[0], 2, device=inputs.device,
                                          dtype=inputs.dtype), None
            else:
                mean, _, policy_state = self.policy(state['fmap'], policy_state, with_value=False)
                action, logp = self._choose(mean, mode)
            out.update(fmap_in=state['fmap'], action=action, logp=logp)
            pooled, fmap = self._encode_focus(inputs, action)
            aux = self.local_encoder.head(pooled) if with_aux else None
            locations = torch.cat([locations, action[:, None].to(locations.dtype)], dim=1)
        # the glance predicted by fG's head: fC only updates its state (its logits would be unused)
        logits, cls_state = self.classifier(index, pooled, state['classifier'],
                                            with_logits=not glance_by_encoder)
        if glance_by_encoder:
            logits = aux
        out.update(logits=logits, aux_logits=aux,
                   state=dict(classifier=cls_state, policy=policy_state, fmap=fmap,
                              locations=locations))
        return out

    def step(self, index: int, inputs: torch.Tensor,
             state: Dict) -> Tuple[torch.Tensor, Dict]:
        out = self._step(index, inputs, state, self.location_mode())
        return out['logits'], out['state']

    def rollout(self, inputs: torch.Tensor, mode: Optional[str] = None,
                random_branch: bool = False, with_aux: bool = True) -> GFRollout:
        """Run all T steps and keep what training and visualisation need.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            mode (str, optional): Location mode ('random', 'sample', 'mean'); defaults to
                :meth:`location_mode`.
            random_branch (bool): Also classify a uniformly random patch at every focus step from
                the same previous state, without carrying its state forward (contrastive reward).
            with_aux (bool): Run the DSN heads and return their logits (``aux_logits``; None
                otherwise). Defaults to True.
        """
        mode = mode or self.location_mode()
        state = self.init_state(inputs)
        logits, aux, fmaps, actions, logps, random_logits = [], [], [], [], [], []
        for index in range(self.num_exits):
            if random_branch and index > 0:
                pooled, _ = self._encode_focus(inputs, torch.rand(inputs.shape[0], 2,
                                                                  device=inputs.device))
                random_logits.append(self.classifier(index, pooled, state['classifier'])[0])
            out = self._step(index, inputs, state, mode, with_aux=with_aux)
            state = out['state']
            logits.append(out['logits'])
            aux.append(out['aux_logits'])
            if index > 0:
                fmaps.append(out['fmap_in'])
                actions.append(out['action'])
                logps.append(out['logp'])
        focus = self.num_exits > 1

        def stack1(items):
            return torch.stack(items, 1) if focus and items[0] is not None else None

        return GFRollout(
            logits=torch.stack(logits), aux_logits=torch.stack(aux) if with_aux else None,
            locations=state['locations'],
            fmaps=stack1(fmaps) if fmaps else None, actions=stack1(actions) if actions else None,
            logps=stack1(logps) if logps else None,
            random_logits=torch.stack(random_logits) if random_logits else None)

    # ------------------------------------------------------------------ losses
    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        labels = torch.cat([ds.gt_label for ds in data_samples]).to(inputs.device)
        if self.train_stage == 2:
            return self.ppo_loss(inputs, labels)
        out = self.rollout(inputs, with_aux=self.dsn_ratio > 0)
        steps = self.num_exits
        losses = {
            'loss_cls': sum(F.cross_entropy(lg, labels) for lg in out.logits) / steps,
        }
        if self.dsn_ratio > 0:
            losses['loss_dsn'] = self.dsn_ratio * sum(
                F.cross_entropy(lg, labels) for lg in out.aux_logits) / steps
        with torch.no_grad():
            for k, lg in enumerate(out.logits):
                losses[f'acc_exit{k + 1}'] = (lg.argmax(-1) == labels).float().mean() * 100
        return losses

    @torch.no_grad()
    def collect_rollout(self, inputs: torch.Tensor,
                        labels: torch.Tensor) -> Tuple[RolloutBuffer, Dict[str, torch.Tensor]]:
        """Stage II, first half: a rollout with sampled locations (no gradient) and its rewards.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            labels (Tensor): (B, ) ground-truth classes.

        Returns:
            tuple: the :class:`RolloutBuffer` (fmaps, actions, log-probs, rewards of the T - 1
            decisions) and the logged values (``reward``: mean summed reward; ``acc_exit<k>``).
        """
        out = self.rollout(inputs, mode='sample', random_branch=self.reward == 'contrastive',
                           with_aux=False)
        rows = torch.arange(labels.shape[0], device=labels.device)
        gt_probs = out.logits.softmax(-1)[:, rows, labels].t()  # (B, T)
        if self.reward == 'contrastive':
            random_probs = out.random_logits.softmax(-1)[:, rows, labels].t()
            rewards = contrastive_reward(gt_probs, random_probs)
        else:
            rewards = increment_reward(gt_probs)
        logs = {'reward': rewards.sum(1).mean()}
        for k, lg in enumerate(out.logits):
            logs[f'acc_exit{k + 1}'] = (lg.argmax(-1) == labels).float().mean() * 100
        return RolloutBuffer(out.fmaps, out.actions, out.logps, rewards), logs

    def ppo_update_loss(self, buffer: RolloutBuffer) -> Dict[str, torch.Tensor]:
        """Stage II, second half: the PPO objective of the policy re-evaluated over the stored
        feature maps and actions (``loss_policy``, ``loss_value``, ``loss_entropy``)."""
        returns = discounted_returns(buffer.rewards, self.ppo_cfg.gamma)
        logps, values, entropies = self.policy.evaluate(buffer.fmaps, buffer.actions)
        return ppo_loss(logps, buffer.logps, values, entropies, returns, self.ppo_cfg)

    def ppo_loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Stage II as one loss (``ppo.epochs`` = 1, the official update): a rollout, its rewards
        and the PPO objective on the policy re-evaluated over the stored states."""
        if self.num_exits < 2:
            raise ValueError('stage 2 needs at least one focus step (num_steps >= 2)')
        if self.ppo_cfg.epochs > 1:
            raise RuntimeError(
                f'ppo.epochs = {self.ppo_cfg.epochs} runs in GFNet.train_step (several optimiser '
                'steps per rollout); this forward(mode="loss") call would do one. A model wrapper '
                'that calls forward directly (DDP) needs ppo.epochs = 1.')
        buffer, logs = self.collect_rollout(inputs, labels)
        return {**self.ppo_update_loss(buffer), **logs}

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        """MMEngine's train step; in stage II with ``ppo.epochs`` = K > 1, one rollout of the batch
        and then K PPO updates of the policy on it (K optimiser steps).

        Returns:
            dict: the logged values of the last update (and the rollout's reward and accuracies).
        """
        if self.train_stage != 2 or self.ppo_cfg.epochs == 1:
            return super().train_step(data, optim_wrapper)
        if self.num_exits < 2:
            raise ValueError('stage 2 needs at least one focus step (num_steps >= 2)')
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            inputs = data['inputs']
            labels = torch.cat([ds.gt_label for ds in data['data_samples']]).to(inputs.device)
            buffer, logs = self.collect_rollout(inputs, labels)
        for _ in range(self.ppo_cfg.epochs):
            with optim_wrapper.optim_context(self):
                losses = self.ppo_update_loss(buffer)
            parsed, log_vars = self.parse_losses({**losses, **logs})
            optim_wrapper.update_params(parsed)
        return log_vars
