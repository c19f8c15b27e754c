# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus for mmaction2: spatial, temporal and sample-wise dynamic video recognition.

Paper: "Uni-AdaFocus: Spatial-temporal Dynamic Computation for Video Recognition" (T-PAMI 2024);
spec ``uni_adafocus.md`` §2-4. The MobileNet-V2 + ResNet-50 setting (ActivityNet / FCVID / Mini-Kinetics):

1. the global encoder f_G (``backbone``) sees T_G of the T_0 candidate frames (a random member of each
   group in training, the member of index 1 at test as in the official code), optionally resized to
   ``glance_size``;
2. the policy reads the stop-gradient global features: frame weights over the glance frames
   (:class:`TemporalPolicy`) and a deformable box per glance frame (:class:`SpatialPolicy`);
3. T_L frames are chosen by the inverse-CDF quantile rule, their boxes are interpolated in time from the
   glance frames, cropped (bilinear, :func:`~mmdynamic.models.utils.crop_boxes`) and resized to P x P;
4. the local encoder f_L (``local_backbone``) reads the patches; :class:`FeatureReuseHead` predicts after
   every glance and every focus step.

Sample-wise dynamic computation: exit 0 follows the glance (no policy, no f_L), exit k follows k focus
steps; with an ``exit_policy`` the executor really skips f_L for exited videos.

Training (spec §3.3): encoder/classifier loss over all T_G + T_L exits plus the auxiliary heads FC_G and
FC_L, doubled with a random-patch branch and halved; the policy gets no gradient from it (the image crops
use detached box parameters). The spatial branch is trained by the cross-entropy of FC_Aux on the box
crop of the (detached) global feature maps plus ``alpha`` times the box-size regulariser (Eq. 15); the
temporal branch by the Monte-Carlo loss of Eq. 21. In training f_L runs once on the policy patches and
the random patches together (one batch of 2 B T_L patches: BatchNorm sees their joint statistics, as in
the official code; ``joint_local_batch=False`` runs two passes). Every random draw of a training forward
(glance members, quantile levels, random boxes, Monte-Carlo draws) comes from the ``generator`` given to
:meth:`UniAdaFocus.loss` (None: torch's global generator).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.models.recognizers.base import BaseRecognizer
from mmaction.registry import MODELS as MMACTION_MODELS

from mmdynamic.evaluation.functional.budget import ExitPolicy
from mmdynamic.models.utils.early_exit import (EarlyExitResult, StepwiseMixin, predict_exits,
                                               set_exit_predictions)
from mmdynamic.models.utils.patch_sampler import crop_boxes, glance
from mmdynamic.registry import MODELS, register_dual
from .feature_reuse_head import FeatureReuseHead
from .frame_sampling import (actions_to_boxes, glance_frame_indices, interpolate_actions,
                             quantile_frame_indices, random_boxes)
from .frame_sampling import glance_test_offset as resolve_glance_offset
from .losses import (MC_DRAW_MODES, TEMPORAL_LOSS_FORMS, box_size_regulariser,
                     temporal_policy_loss)
from .multi_view import ViewAveragedSteps, average_views, check_view_average, split_views
from .policies import SpatialPolicy, TemporalPolicy

PolicyLike = Optional[Union[str, dict, ExitPolicy]]
SPATIAL_MODES = ('learned', 'random', 'centre')
TEMPORAL_MODES = ('learned', 'uniform')


def build_encoder(cfg: dict) -> nn.Module:
    """Build an encoder config in mmaction2's scope (``mmpretrain.`` prefixes import mmpretrain),
    without the stages after its last output (:func:`drop_unused_stages`)."""
    cfg = dict(cfg)
    if isinstance(cfg.get('type'), str) and cfg['type'].startswith('mmpretrain.'):
        import mmpretrain.models  # noqa: F401
    return drop_unused_stages(MMACTION_MODELS.build(cfg))


# the attributes that list the stage names an OpenMMLab backbone's forward loops over
_STAGE_LISTS = ('res_layers', 'layers')


def drop_unused_stages(encoder: nn.Module) -> nn.Module:
    """Remove the stages after the last one in ``out_indices`` from an OpenMMLab backbone.

    mmpretrain's and mmaction2's ResNet and MobileNet-V2 run every stage whatever their
    ``out_indices``; an encoder that stops early (``out_indices=(4, )``: a stride-16 MobileNet-V2)
    would still compute (and pay for) the rest. The stages are deleted, so they neither run nor
    hold parameters. Backbones without a stage list are returned as they are.

    Args:
        encoder (nn.Module): A built backbone.

    Returns:
        nn.Module: The same module, trimmed in place.
    """
    out_indices = getattr(encoder, 'out_indices', None)
    for attr in _STAGE_LISTS:
        names = getattr(encoder, attr, None)
        if isinstance(names, list) and names and out_indices is not None:
            indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
            last = max(i % len(names) for i in indices)
            for name in names[last + 1:]:
                delattr(encoder, name)
            del names[last + 1:]
            break
    return encoder


def encode(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Feature map of an encoder. Args: images (N, C, H, W). Returns: (N, C', h, w) (last output)."""
    out = encoder(images)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    return out


def gather_frames(inputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Frames ``index`` (B, n) of each video of ``inputs`` (B, T, C, H, W). Returns (B, n, C, H, W).

    Whole frames are copied as blocks: one ``index_select`` over the B * T frames of a contiguous
    ``inputs``, advanced indexing otherwise (``gather`` with the index expanded over every pixel
    computes an offset per element: 3-4x slower on CPU for 224 px frames).
    """
    index = index.to(inputs.device)
    batch, steps = inputs.shape[:2]
    if inputs.is_contiguous():
        rows = index + torch.arange(batch, device=inputs.device)[:, None] * steps
        frames = inputs.flatten(0, 1).index_select(0, rows.flatten())
        return frames.view(*index.shape, *inputs.shape[2:])
    return inputs[torch.arange(batch, device=inputs.device)[:, None], index]


def first_labels(data_samples, device) -> torch.Tensor:
    """Training target of each sample: its label, or the first positive of a multi-hot label."""
    labels = []
    for sample in data_samples:
        label = torch.as_tensor(sample.gt_label).reshape(-1)
        labels.append(label[0] if label.numel() == 1 else label.nonzero()[0, 0])
    return torch.stack(labels).long().to(device)


def _step_ce(steps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, T, C) step logits against (B, ) labels repeated over the steps."""
    return F.cross_entropy(steps.flatten(0, 1), labels.repeat_interleave(steps.shape[1]))


def resolve_exit_policy(cfg: PolicyLike, model: str, num_exits: int) -> Optional[ExitPolicy]:
    """An :class:`ExitPolicy` from a JSON file, ``dict(file=CKPT, budget=B)``, a dict or a policy."""
    if cfg is None:
        return None
    if isinstance(cfg, ExitPolicy):
        policy = cfg
    elif isinstance(cfg, str):
        policy = ExitPolicy.load(cfg)
    elif 'file' in cfg:
        policy = ExitPolicy.load(cfg['file'], budget=cfg.get('budget'))
    else:
        policy = ExitPolicy.from_dict(cfg)
    policy.check_compatible(model, num_exits)
    return policy


class InputsInState(StepwiseMixin):
    """Early exit for step-wise models that read their inputs only up to step ``last_input_step``.

    :class:`EarlyExitExecutor` gathers its ``inputs`` to the surviving samples after every step; for
    videos (T_0 full frames) that copy can cost as much as a focus step. Given a (B, 0) placeholder as
    ``inputs``, this wrapper carries the real inputs in the state instead and drops them after
    ``last_input_step``, so later steps gather only the model's own (small) state.

    Args:
        model (StepwiseMixin): The step-wise model (its ``step`` gets None as inputs after
            ``last_input_step``).
        inputs (Tensor): (B, ...) the real inputs of this call.
        last_input_step (int): The last step that reads the inputs.
    """

    def __init__(self, model: StepwiseMixin, inputs: torch.Tensor, last_input_step: int) -> None:
        self.model = model
        self.inputs = inputs
        self.last_input_step = last_input_step
        self.num_exits = model.num_exits

    def init_state(self, placeholder: torch.Tensor, **kwargs) -> dict:
        return dict(inner=self.model.init_state(self.inputs, **kwargs), inputs=self.inputs)

    def step(self, index: int, placeholder: torch.Tensor, state: dict) -> Tuple[torch.Tensor, dict]:
        inputs = state.get('inputs')
        logits, inner = self.model.step(index, inputs, state['inner'])
        out = dict(inner=inner)
        if index < self.last_input_step:
            out['inputs'] = inputs
        return logits, out


class AdaFocusRecognizerBase(StepwiseMixin, BaseRecognizer):
    """What the AdaFocus recognizers share: exit policy, prediction with exits, cost accounting.

    ``backbone`` is the global encoder f_G; subclasses add the rest and implement
    :meth:`forward_steps` (all step logits at once), :meth:`init_state` / :meth:`step` and :meth:`loss`.
    ``exit_offset`` is the index of exit 0 among the step logits.

    ``view_average`` (constructor argument) sets how the views of a multi-view test input (e.g. the
    3-crop test) are averaged after every exit, in :meth:`predict` and :meth:`early_exit` alike:
    'logits' (default; the mean raw logits, as the official code does) or 'softmax' (the mean softmax
    scores); see :func:`~mmdynamic.models.action.multi_view.average_views`.
    """
    exit_offset: int = 0
    # BN is folded into the convolutions at inference (the convention of the papers' GFLOPs)
    macs_op_handles = {'aten::batch_norm': None}
    # steps from this index on repeat the modules and shapes of that step (see exit_macs)
    repeated_steps_from: Optional[int] = None
    # the last step that reads the inputs (None: every step does); early exit then stops carrying
    # (and gathering) the survivors' videos after it (InputsInState)
    last_input_step: Optional[int] = None

    def __init__(self, backbone: dict, exit_policy: PolicyLike = None,
                 data_preprocessor: Optional[dict] = None, view_average: str = 'logits',
                 **kwargs) -> None:
        check_view_average(view_average)
        data_preprocessor = dict(data_preprocessor or dict(type='ActionDataPreprocessor'))
        super().__init__(backbone=backbone, data_preprocessor=data_preprocessor, **kwargs)
        drop_unused_stages(self.backbone)
        self.view_average = view_average
        self._exit_policy_cfg = exit_policy
        self._exit_macs_cache: Dict[Tuple[int, ...], List[int]] = {}

    # ------------------------------------------------------------------ exit policy
    @property
    def exit_policy(self) -> Optional[ExitPolicy]:
        """The early-exit policy used by :meth:`predict` (None: run every step)."""
        if self._exit_policy_cfg is not None and not isinstance(self._exit_policy_cfg, ExitPolicy):
            self._exit_policy_cfg = resolve_exit_policy(self._exit_policy_cfg,
                                                        type(self).__name__, self.num_exits)
        return self._exit_policy_cfg

    def set_exit_policy(self, policy: PolicyLike) -> None:
        """Use ``policy`` for early exit from now on (None: run every step)."""
        self._exit_policy_cfg = resolve_exit_policy(policy, type(self).__name__, self.num_exits)

    # ------------------------------------------------------------------ costs
    @torch.no_grad()
    def exit_macs(self, input_shape: Sequence[int], **kwargs) -> List[int]:
        """Cumulative MACs per video of each exit, counted step by step from the modules that run
        (BN folded into the convolutions: not counted).

        Steps from ``repeated_steps_from`` on run the same modules on the same shapes (one f_L patch
        and one focus head each), so the first of them is counted and its count reused; set
        ``repeated_steps_from = None`` to count every step.

        Step k counts what it runs: every module it calls and every op its logits or its next
        state depend on (work that only feeds later steps included, see
        :func:`mmdynamic.utils.flops.count_macs`).
        """
        from mmdynamic.utils.flops import count_macs, flatten_tensors
        param = next(self.parameters())
        inputs = torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device)
        was_training = self.training
        self.eval()

        def run_step(x: torch.Tensor, k: int, state: dict) -> Tuple[torch.Tensor, ...]:
            logits, next_state = self.step(k, x, state)
            return (logits, *flatten_tensors(next_state))

        try:
            state = self.init_state(inputs)
            total, out, step_macs = 0, [], 0
            for k in range(self.num_exits):
                repeated = self.repeated_steps_from is not None and k > self.repeated_steps_from
                if not repeated:
                    step_macs = count_macs(self, (inputs, ),
                                           fn=lambda x, k=k, s=state: run_step(x, k, s),
                                           op_handles=self.macs_op_handles)
                    if k + 1 < self.num_exits and (self.repeated_steps_from is None
                                                   or k < self.repeated_steps_from):
                        _, state = self.step(k, inputs, state)
                total += step_macs
                out.append(total)
            return out
        finally:
            self.train(was_training)

    def exit_macs_for(self, input_shape: Sequence[int]) -> List[int]:
        """:meth:`exit_macs` memoised per input shape."""
        key = tuple(int(s) for s in input_shape)
        if key not in self._exit_macs_cache:
            self._exit_macs_cache[key] = self.exit_macs(key)
        return self._exit_macs_cache[key]

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        """Raise a ValueError that names the expected layout when ``inputs`` do not match it."""
        raise NotImplementedError

    def init_state(self, inputs: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        """Nothing runs before exit 0 (the glance is its work): check the inputs, empty state."""
        self._check_inputs(inputs)
        return {}

    # ------------------------------------------------------------------ forward modes
    def forward_steps(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'head', data_samples=None,
                     test_mode: bool = False) -> Tuple[torch.Tensor, dict]:
        """Logits of every step: (B, num_steps, num_classes)."""
        return self.forward_steps(inputs)['steps'], dict()

    @property
    def clip_length(self) -> int:
        """Frames per video of one view (the length of the model's input clip)."""
        raise NotImplementedError

    def num_views(self, inputs: torch.Tensor) -> int:
        """V when ``inputs`` (B, V * T, C, H, W) hold V views of T = :attr:`clip_length` frames
        (the 3-crop test's ``TSNThreeCrop``, or mmaction2's ``ThreeCrop``: V = 3), else 1."""
        frames = inputs.shape[1] if inputs.dim() == 5 else 0
        if frames > self.clip_length and frames % self.clip_length == 0:
            return frames // self.clip_length
        return 1

    def exit_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of every exit for every video: (K, B, C)."""
        return self.forward_steps(inputs)['steps'][:, self.exit_offset:].transpose(0, 1)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: Sequence, **kwargs) -> Sequence:
        """Predictions; each data sample also gets ``exit_macs`` (K, ), ``exit_index`` and, without an
        exit policy, ``exit_logits`` (K, C) for the anytime and budget evaluation.

        Inputs with V views per video (B, V * T, C, H, W), e.g. from the 3-crop test, are predicted
        view by view and the views averaged after every exit as ``view_average`` says (raw logits by
        default, as the official code; or softmax scores). A video costs V views. With an exit policy
        a video exits on the confidence of its view-averaged logits (:meth:`early_exit`): the same
        tensor that ``exit_logits`` holds without one, so thresholds fitted on those apply unchanged.
        """
        views = self.num_views(inputs)
        costs = self.exit_costs(inputs)
        policy = self.exit_policy
        if policy is None:
            if views == 1:
                all_exits = self.exit_logits
            else:

                def all_exits(x: torch.Tensor) -> torch.Tensor:
                    return average_views(self.exit_logits(split_views(x, views)), views,
                                         self.view_average)

            final, exits, exit_logits = predict_exits(self, inputs, None, all_exits)
        else:
            from mmdynamic.models.utils.early_exit import EarlyExitExecutor
            result = self.early_exit(inputs,
                                     EarlyExitExecutor(policy.thresholds, policy.confidence))
            final, exits, exit_logits = result.logits, result.exits, None
        return set_exit_predictions(data_samples, final, exits, costs, exit_logits)

    def exit_costs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Cumulative MACs (K, ) float64 of every exit for one video of ``inputs``
        (B, T, C, H, W) or (B, V * T, C, H, W): a video with V views costs V views."""
        views = self.num_views(inputs)
        view_shape = (self.clip_length, ) + tuple(inputs.shape[2:]) if views > 1 else inputs.shape[1:]
        return views * torch.tensor(self.exit_macs_for(view_shape), dtype=torch.float64)

    def stepwise_view(self, inputs: torch.Tensor) -> Tuple[StepwiseMixin, torch.Tensor]:
        """The step-wise object and inputs that an early-exit executor runs for ``inputs``.

        Args:
            inputs (Tensor): (B, T, C, H, W) videos, or (B, V * T, C, H, W) with V views each
                (:meth:`num_views`); the views are averaged after every exit as ``view_average``
                says, and a video exits on the confidence of its view-averaged logits.

        Returns:
            tuple: the step-wise model (``self``, or a view-averaging adapter) and its (B, ...)
            inputs. The videos travel in the executor's state only while a step reads them
            (``last_input_step``); the inputs are then (B, 0).
        """
        views = self.num_views(inputs)
        model = self if views == 1 else ViewAveragedSteps(self, views, self.view_average)
        if self.last_input_step is None:
            return model, inputs
        return (InputsInState(model, inputs, self.last_input_step),
                inputs.new_empty(inputs.shape[0], 0))

    def early_exit(self, inputs: torch.Tensor, executor) -> 'EarlyExitResult':
        """Run ``executor`` (an :class:`EarlyExitExecutor`) on :meth:`stepwise_view` of ``inputs``
        (B, T, C, H, W) or (B, V * T, C, H, W), as :meth:`predict` does."""
        return executor.run(*self.stepwise_view(inputs))


@register_dual(MODELS)
class UniAdaFocus(AdaFocusRecognizerBase):
    """Uni-AdaFocus recognizer (MobileNet-V2 + ResNet-50 setting; spec §2.7).

    Args:
        backbone (dict): Global encoder f_G (e.g. MobileNet-V2); its last output is the feature map.
        local_backbone (dict): Local encoder f_L (e.g. ResNet-50) on the P x P patches.
        num_classes (int): Number of classes.
        global_channels (int): Channels of f_G's feature map (1280 for MobileNet-V2).
        local_channels (int): Channels of f_L's feature map (2048 for ResNet-50).
        feature_size (int): Side of f_G's feature map on the glance frames (7 for 224 frames).
        num_candidates (int): T_0 candidate frames per video (the input clip length). Defaults to 48.
        num_glance (int): T_G glance frames (T_0 must be a multiple). Defaults to 16.
        num_focus (int): T_L focus frames. Defaults to 16.
        patch_size (int): P, the side of f_L's input. Defaults to 128.
        min_box_size (float): Smallest box side in pixels (96 in the paper for 224 frames); the largest
            is the frame side. Defaults to 96.
        glance_size (int, optional): Resize the glance frames to this side for f_G (None: as is).
        spatial_hidden (int): Hidden channels of the spatial policy. Defaults to 128.
        temporal_hidden (int): Hidden channels of the temporal policy. Defaults to 64.
        temperature (float): Softmax temperature of the frame weights. Defaults to 1.
        fusion_hidden (int): Width of the feature-reuse classifier. Defaults to 4096.
        dropout (float): Dropout of the classifier and of FC_G / FC_L. Defaults to 0.2.
        size_reg (float): alpha of Eq. 15 (1.0 ActivityNet/FCVID, 0.75 Mini-K). Defaults to 1.
        temporal_loss (str): 'expected_ce' (Eq. 21) or 'ce_of_mixture' (official code).
        num_mc_samples (int): M of Eq. 21. Defaults to 128.
        num_mc_draws (int, optional): Frames drawn in the temporal loss; default
            ``max(1, floor(T_L / T_0 * T_G))`` (5 on ActivityNet).
        mc_draw_mode (str): Monte-Carlo draws of the temporal loss: 'independent' (a fresh draw of
            i frames for every term i, the official code) or 'nested' (the prefixes of one draw
            sequence). Defaults to 'independent'.
        random_patch_branch (bool): Diversity augmentation (a second f_L/f_C pass on random P x P
            patches; losses averaged). Defaults to True.
        joint_local_batch (bool): In training, run f_L once on the policy patches and the random
            patches together (2 B T_L patches, joint BatchNorm statistics: the official code) instead
            of once per branch. Defaults to True.
        glance_test_offset (int | str): Glance frame of each group of T_0 / T_G candidates at test:
            an index (1: ``arange(T_0)[1::T_0 // T_G]``, the official code; capped at the group
            size - 1) or 'middle' (``group // 2``). Defaults to 1.
        temporal_grad_to_global (bool): Let the temporal policy's input and loss carry gradients into
            f_G / FC_G (the official ActivityNet code does; the paper does not). Defaults to False.
        spatial_mode (str): 'learned' (the spatial policy), or the baselines of Table 9 without it:
            'random' (P x P patches at random places) and 'centre' (central P x P patches).
        temporal_mode (str): 'learned' (the temporal policy) or 'uniform' (uniformly spread frames).
        exit_policy (str | dict | ExitPolicy, optional): Early-exit thresholds for prediction.
        focus_chunk (int): Focus patches f_L encodes per call in the step-wise (early-exit) path.
            1 (default): every step encodes its own patch, so a video pays exactly for the exits it
            takes. c > 1: a focus step without a ready feature encodes the next c patches at once
            (a small batch uses the CPU/GPU far better than c batches of one: ResNet-50 on 16
            patches of 128 px took 0.38 s in one call and 0.66 s in 16 on the development CPU); a
            video that exits within a chunk has paid for the rest of it, and its cost
            (:meth:`exit_macs`, the data samples' ``exit_macs``, the thresholds fitted for a budget)
            includes that work. Predictions do not depend on it.
        data_preprocessor (dict, optional): Defaults to ``ActionDataPreprocessor``.
        view_average (str): How multi-view (e.g. 3-crop) test inputs are averaged after every exit:
            'logits' (raw logits, official) or 'softmax' (mean softmax). Defaults to 'logits'.
    """

    def __init__(self, backbone: dict, local_backbone: dict, num_classes: int,
                 global_channels: int = 1280, local_channels: int = 2048, feature_size: int = 7,
                 num_candidates: int = 48, num_glance: int = 16, num_focus: int = 16,
                 patch_size: int = 128, min_box_size: float = 96, glance_size: Optional[int] = None,
                 spatial_hidden: int = 128, temporal_hidden: int = 64, temperature: float = 1.0,
                 fusion_hidden: int = 4096, dropout: float = 0.2, size_reg: float = 1.0,
                 temporal_loss: str = 'expected_ce', num_mc_samples: int = 128,
                 num_mc_draws: Optional[int] = None, mc_draw_mode: str = 'independent',
                 random_patch_branch: bool = True, joint_local_batch: bool = True,
                 glance_test_offset: Union[int, str] = 1,
                 temporal_grad_to_global: bool = False, spatial_mode: str = 'learned',
                 temporal_mode: str = 'learned', exit_policy: PolicyLike = None,
                 focus_chunk: int = 1, data_preprocessor: Optional[dict] = None,
                 view_average: str = 'logits') -> None:
        if spatial_mode not in SPATIAL_MODES:
            raise ValueError(f'spatial_mode must be one of {SPATIAL_MODES}, got {spatial_mode!r}')
        if temporal_mode not in TEMPORAL_MODES:
            raise ValueError(f'temporal_mode must be one of {TEMPORAL_MODES}, got {temporal_mode!r}')
        if num_candidates % num_glance:
            raise ValueError(f'num_candidates ({num_candidates}) must be a multiple of num_glance '
                             f'({num_glance})')
        if not 1 <= num_focus <= num_candidates:
            raise ValueError(f'num_focus must be in [1, num_candidates={num_candidates}], '
                             f'got {num_focus}')
        if temporal_loss not in TEMPORAL_LOSS_FORMS:
            raise ValueError(f'temporal_loss must be one of {TEMPORAL_LOSS_FORMS}, '
                             f'got {temporal_loss!r}')
        if mc_draw_mode not in MC_DRAW_MODES:
            raise ValueError(f'mc_draw_mode must be one of {MC_DRAW_MODES}, got {mc_draw_mode!r}')
        resolve_glance_offset(num_candidates // num_glance, glance_test_offset)  # validates it
        super().__init__(backbone=backbone, exit_policy=exit_policy,
                         data_preprocessor=data_preprocessor, view_average=view_average)
        self.local_backbone = build_encoder(local_backbone)
        self.num_classes = num_classes
        self.num_candidates = num_candidates
        self.num_glance = num_glance
        self.num_focus = num_focus
        self.patch_size = patch_size
        self.min_box_size = float(min_box_size)
        self.glance_size = glance_size
        self.size_reg = size_reg
        self.temporal_loss = temporal_loss
        self.num_mc_samples = num_mc_samples
        self.num_mc_draws = num_mc_draws or max(1, num_focus * num_glance // num_candidates)
        self.mc_draw_mode = mc_draw_mode
        self.random_patch_branch = random_patch_branch
        self.joint_local_batch = joint_local_batch
        self.glance_test_offset = glance_test_offset
        self.temporal_grad_to_global = temporal_grad_to_global
        self.spatial_mode = spatial_mode
        self.temporal_mode = temporal_mode
        self.exit_offset = num_glance - 1
        self.num_exits = num_focus + 1
        self.set_focus_chunk(focus_chunk)
        self.last_input_step = 1  # the glance (0) and the focus plan with its patches (1)

        # the baselines without a learned branch have no module for it (nothing idle under DDP)
        self.temporal_policy = TemporalPolicy(
            global_channels, temporal_hidden,
            temperature=temperature) if temporal_mode == 'learned' else None
        self.spatial_policy = SpatialPolicy(
            global_channels, feature_size, spatial_hidden, num_frames=num_glance,
            per_video=self.per_video_box) if spatial_mode == 'learned' else None
        self._build_classifier(global_channels, local_channels, fusion_hidden, dropout)
        self.fc_global = nn.Sequential(nn.Dropout(dropout), nn.Linear(global_channels, num_classes))
        self.fc_local = nn.Sequential(nn.Dropout(dropout), nn.Linear(local_channels, num_classes))
        self.fc_aux = nn.Linear(global_channels, num_classes) if spatial_mode == 'learned' else None

    per_video_box = False  # one box per glance frame, interpolated in time (the MN2 + R50 setting)

    def set_focus_chunk(self, chunk: int) -> None:
        """Encode ``chunk`` focus patches per f_L call in the step-wise path from now on (see the
        ``focus_chunk`` argument)."""
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f'focus_chunk must be a positive int, got {chunk!r}')
        self.focus_chunk = chunk
        # every focus step after the first runs one patch and one head; with chunks steps differ
        self.repeated_steps_from = 2 if chunk == 1 else None
        self._exit_macs_cache.clear()

    @property
    def clip_length(self) -> int:
        """T_0 candidate frames per view."""
        return self.num_candidates

    def _build_classifier(self, global_channels: int, local_channels: int, hidden: int,
                          dropout: float) -> None:
        """f_C: the feature-reuse classifier with T_G + T_L exits."""
        self.fusion_head = FeatureReuseHead(global_channels, local_channels, self.num_classes,
                                            self.num_glance, self.num_focus, hidden, dropout)

    # ------------------------------------------------------------------ building blocks
    def _check_inputs(self, inputs: torch.Tensor) -> None:
        if inputs.dim() != 5 or inputs.shape[1] != self.num_candidates:
            raise ValueError(f'{type(self).__name__} expects inputs (B, T_0={self.num_candidates}, '
                             f'C, H, W), got {tuple(inputs.shape)}: sample num_candidates frames '
                             "per video with format_shape='NCHW'")

    def glance_features(self, inputs: torch.Tensor,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """f_G on the glance frames.

        Args:
            inputs (Tensor): (B, T_0, C, H, W).
            generator (torch.Generator, optional): For the random glance members in training.

        Returns:
            dict: ``maps`` (B, T_G, C_G, h, w), ``feats`` (B, T_G, C_G), ``index`` (B, T_G).
        """
        self._check_inputs(inputs)
        batch = inputs.shape[0]
        index = glance_frame_indices(batch, self.num_candidates, self.num_glance, self.training,
                                     device=inputs.device, generator=generator,
                                     test_offset=self.glance_test_offset)
        frames = gather_frames(inputs, index).flatten(0, 1)
        if self.glance_size is not None:
            frames = glance(frames, self.glance_size, mode='bilinear', align_corners=False)
        maps = encode(self.backbone, frames)
        maps = maps.view(batch, self.num_glance, *maps.shape[1:])
        return dict(maps=maps, feats=maps.mean(dim=(-2, -1)), index=index)

    def policy(self, maps: torch.Tensor, feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Both policy branches on the stop-gradient global features.

        Returns:
            dict: ``actions`` (B, T_G, 4) in (0, 1), ``frame_logits`` and ``frame_weights`` (B, T_G).
        """
        out = dict(actions=None, frame_logits=None)
        if self.spatial_mode == 'learned':
            out['actions'] = self.spatial_policy(maps.detach())
        if self.temporal_mode == 'learned':
            temporal_in = feats if self.temporal_grad_to_global else feats.detach()
            out['frame_logits'], out['frame_weights'] = self.temporal_policy(temporal_in)
        else:  # uniform frames
            out['frame_weights'] = feats.new_full(feats.shape[:2], 1 / feats.shape[1])
        return out

    def plan_focus(self, actions: torch.Tensor, weights: torch.Tensor, frame_size: Tuple[int, int],
                   generator: Optional[torch.Generator] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Focus frames (quantile rule) and their boxes (interpolated in time, detached).

        Without a learned spatial policy (``actions`` None) the boxes are P x P: at random places
        (``spatial_mode='random'``, one per video for per-video boxes) or in the centre.

        Args:
            generator (torch.Generator, optional): For the random quantile levels (training) and the
                random boxes (``spatial_mode='random'``).

        Returns:
            tuple: frame indices (B, T_L) and boxes (B, T_L, 4) (cy, cx, h, w) in pixels.
        """
        index = quantile_frame_indices(weights, self.num_focus, self.num_candidates,
                                       training=self.training, generator=generator)
        if actions is None:
            if self.spatial_mode == 'random':
                return index, self.random_focus_boxes(index, frame_size, generator)
            per_box = (index.shape[0], 1 if self.per_video_box else self.num_focus)
            centre = [frame_size[0] / 2, frame_size[1] / 2, self.patch_size, self.patch_size]
            boxes = torch.tensor(centre, device=index.device).expand(*per_box, 4)
            return index, boxes.expand(-1, self.num_focus, -1)
        if actions.shape[1] == 1:  # one box per video, shared by every focus frame
            chosen = actions.detach().expand(-1, self.num_focus, -1)
        else:
            per_frame = interpolate_actions(actions.detach(), self.num_candidates)
            chosen = per_frame.gather(1, index[..., None].expand(-1, -1, per_frame.shape[-1]))
        return index, actions_to_boxes(chosen, frame_size, self.min_box_size)

    def random_focus_boxes(self, index: torch.Tensor, frame_size: Tuple[int, int],
                           generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Random P x P boxes for the focus frames ``index`` (B, T_L): one per focus frame, or one per
        video shared by its focus frames for per-video boxes. Returns (B, T_L, 4)."""
        per_box = (index.shape[0], 1 if self.per_video_box else self.num_focus)
        boxes = random_boxes(per_box, frame_size, self.patch_size, device=index.device,
                             generator=generator)
        return boxes.expand(-1, self.num_focus, -1)

    def focus_patches(self, inputs: torch.Tensor, index: torch.Tensor,
                      boxes: torch.Tensor) -> torch.Tensor:
        """The box crops of the focus frames resized to P x P.

        Args:
            inputs (Tensor): (B, T_0, C, H, W). index (Tensor): (B, n). boxes (Tensor): (B, n, 4).

        Returns:
            Tensor: (B, n, C, P, P).
        """
        frames = gather_frames(inputs, index).flatten(0, 1)
        patches = crop_boxes(frames, boxes.reshape(-1, 4), self.patch_size)
        return patches.view(*index.shape, *patches.shape[1:])

    def encode_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """f_L on the patches (B, n, C, P, P) of B videos. Returns (B, n, C_L) pooled features."""
        maps = encode(self.local_backbone, patches.flatten(0, 1))
        return maps.mean(dim=(-2, -1)).view(*patches.shape[:2], -1)

    def local_features(self, inputs: torch.Tensor, index: torch.Tensor,
                       boxes: torch.Tensor) -> torch.Tensor:
        """f_L on the box crops resized to P x P.

        Args:
            inputs (Tensor): (B, T_0, C, H, W). index (Tensor): (B, n). boxes (Tensor): (B, n, 4).

        Returns:
            Tensor: (B, n', C_L) pooled local features (n' = n for 2D encoders).
        """
        return self.encode_patches(self.focus_patches(inputs, index, boxes))

    # the order of the two branches in the joint f_L batch (the official MN2 + R50 code: policy first)
    random_patches_first = False

    def local_features_pair(self, inputs: torch.Tensor, index: torch.Tensor, boxes: torch.Tensor,
                            random_boxes_: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_L on the policy patches and on the random patches of the same focus frames.

        With ``joint_local_batch`` one f_L call reads both sets of patches as one batch of 2 B
        videos (their BatchNorm statistics are joint, as in the official code; the branch order is
        :attr:`random_patches_first`), else one call per set.

        Returns:
            tuple: the local features (B, n', C_L) of the policy patches and of the random ones.
        """
        if not self.joint_local_batch:
            return (self.local_features(inputs, index, boxes),
                    self.local_features(inputs, index, random_boxes_))
        sets = [self.focus_patches(inputs, index, b) for b in (boxes, random_boxes_)]
        if self.random_patches_first:
            sets.reverse()
        feats = self.encode_patches(torch.cat(sets, dim=0)).chunk(2, dim=0)
        return (feats[1], feats[0]) if self.random_patches_first else (feats[0], feats[1])

    def spatial_aux_logits(self, maps: torch.Tensor, actions: torch.Tensor,
                           frame_size: Tuple[int, int]) -> torch.Tensor:
        """FC_Aux on the box crops of the global feature maps (Eq. 13-15), one vector per video.

        The crop is differentiable in the box parameters: this is the spatial policy's training signal.
        As in the official code the crop has ``p = round(h * P / H)`` cells a side (h the side of the
        map, H of the frame) and covers ``p * s / P`` cells for a box of ``s`` pixels (s in
        [min_box_size, H]), with its top-left at ``a_y * (h - p * s / P)`` (likewise along x). For
        the MN2 + R50 setting (7 x 7 maps of 224 frames, P a multiple of 32) that is the image box
        scaled by h / H; for X3D (5 x 5 maps, P = 128) the box side is 2.25 + 3 a cells, which can
        exceed the map (sampled as zero outside it).

        Args:
            maps (Tensor): (B, T_G, C_G, h, w), detached. actions (Tensor): (B, T_G or 1, 4).
            frame_size (tuple): (H, W) of the frames.

        Returns:
            Tensor: (B, num_classes).
        """
        batch, frames, channels, feat_h, feat_w = maps.shape
        height, width = frame_size
        side = (max(1, round(feat_h * self.patch_size / height)),
                max(1, round(feat_w * self.patch_size / width)))
        if not 0 < self.min_box_size <= min(height, width):
            raise ValueError(f'min_box_size must be in (0, {min(height, width)}], '
                             f'got {self.min_box_size}')
        # the official arithmetic: scale = a (S - s_min) / P + s_min / P, side = p * scale cells
        frame = actions.new_tensor([float(height), float(width)])
        scale = (actions[..., 2:4] * (frame - self.min_box_size) / self.patch_size
                 + self.min_box_size / self.patch_size)
        cells = actions.new_tensor([float(side[0]), float(side[1])]) * scale
        top_left = actions[..., 0:2] * (actions.new_tensor([float(feat_h), float(feat_w)]) - cells)
        centre = (top_left + (top_left + cells)) / 2
        boxes = torch.cat([centre, cells], dim=-1).expand(batch, frames, 4)
        crops = crop_boxes(maps.flatten(0, 1), boxes.reshape(-1, 4), side)
        pooled = crops.mean(dim=(-2, -1)).view(batch, frames, channels).mean(dim=1)
        return self.fc_aux(pooled)

    # ------------------------------------------------------------------ batched forward
    def forward_steps(self, inputs: torch.Tensor, generator: Optional[torch.Generator] = None,
                      random_branch: bool = False) -> Dict[str, torch.Tensor]:
        """Every step for every video (training and evaluation without early exit).

        Args:
            inputs (Tensor): (B, T_0, C, H, W) (the subclasses: their clip layout).
            generator (torch.Generator, optional): For every random draw (training).
            random_branch (bool): Also run f_L on random P x P patches of the same focus frames (the
                diversity branch of the training loss): ``random_boxes``, ``random_local_feats``.

        Returns:
            dict: ``steps`` (B, T_G + T_L, C) logits of every exit, plus the intermediate tensors
            (``maps``, ``feats``, ``actions``, ``frame_weights``, ``frame_logits``, ``focus_index``,
            ``boxes``, ``local_feats``).
        """
        frame_size = tuple(inputs.shape[-2:])
        out = self.glance_features(inputs, generator=generator)
        out.update(self.policy(out['maps'], out['feats']))
        out['focus_index'], out['boxes'] = self.plan_focus(out['actions'], out['frame_weights'],
                                                           frame_size, generator=generator)
        if random_branch:
            out['random_boxes'] = self.random_focus_boxes(out['focus_index'], frame_size, generator)
            out['local_feats'], out['random_local_feats'] = self.local_features_pair(
                inputs, out['focus_index'], out['boxes'], out['random_boxes'])
        else:
            out['local_feats'] = self.local_features(inputs, out['focus_index'], out['boxes'])
        out['steps'] = self.fuse(out['feats'], out['local_feats'])
        return out

    def fuse(self, global_feats: torch.Tensor, local_feats: torch.Tensor) -> torch.Tensor:
        """f_C on the glance features (B, T_G, C_G) and the focus features (B, T_L, C_L).

        Returns:
            Tensor: (B, T_G + T_L, num_classes) logits of every exit.
        """
        return self.fusion_head(global_feats, local_feats)

    def global_frame_logits(self, global_feats: torch.Tensor) -> torch.Tensor:
        """FC_G on every glance frame (loss_global, the temporal loss). (B, T, C_G) -> (B, T, C)."""
        return self.fc_global(global_feats)

    def local_frame_logits(self, local_feats: torch.Tensor) -> torch.Tensor:
        """FC_L on every focus frame (loss_local). (B, T, C_L) -> (B, T, C)."""
        return self.fc_local(local_feats)

    # loss_global / loss_local: CE of every frame's logits (False) or of their average over the frames
    # (True: the official X3D code)
    clip_level_aux_losses = False

    def _aux_ce(self, frame_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CE of an auxiliary head's logits (B, T, C), see :attr:`clip_level_aux_losses`."""
        if self.clip_level_aux_losses:
            return F.cross_entropy(frame_logits.mean(dim=1), labels)
        return _step_ce(frame_logits, labels)

    def loss(self, inputs: torch.Tensor, data_samples: Sequence,
             generator: Optional[torch.Generator] = None, **kwargs) -> Dict[str, torch.Tensor]:
        """Eq. 22: encoder/classifier loss (+ random-patch branch) + spatial + temporal policy losses.

        Args:
            inputs (Tensor): The clips (see :meth:`forward_steps`).
            data_samples (Sequence[ActionDataSample]): Their labels.
            generator (torch.Generator, optional): Every random draw of the forward (glance members,
                quantile levels, random boxes, Monte-Carlo draws) comes from it (None: torch's
                global generator), so that a step can be reproduced from a seed. Dropout still draws
                from torch's global generator.
        """
        labels = first_labels(data_samples, inputs.device)
        out = self.forward_steps(inputs, generator=generator,
                                 random_branch=self.random_patch_branch)
        losses = self.classifier_losses(out, labels)
        losses.update(self.policy_losses(out, labels, tuple(inputs.shape[-2:]), generator))
        return losses

    def classifier_losses(self, out: Dict[str, torch.Tensor],
                          labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """CE over every exit of f_C and of FC_L per focus frame, averaged with the random-patch
        branch (``random_local_feats`` of :meth:`forward_steps`); CE of FC_G per glance frame (the same
        in both branches) is in :meth:`policy_losses`."""
        ce_steps = [_step_ce(out['steps'], labels)]
        ce_local = [self._aux_ce(self.local_frame_logits(out['local_feats']), labels)]
        if 'random_local_feats' in out:
            local_feats = out['random_local_feats']
            ce_steps.append(_step_ce(self.fuse(out['feats'], local_feats), labels))
            ce_local.append(self._aux_ce(self.local_frame_logits(local_feats), labels))
        losses = dict(loss_cls=sum(ce_steps) / len(ce_steps), loss_local=sum(ce_local) / len(ce_local))
        with torch.no_grad():
            losses['acc_final'] = (out['steps'][:, -1].argmax(-1) == labels).float().mean()
        return losses

    def policy_losses(self, out: Dict[str, torch.Tensor], labels: torch.Tensor,
                      frame_size: Tuple[int, int],
                      generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """FC_G per glance frame, the spatial policy loss with the size regulariser (Eq. 15) and the
        temporal policy loss (Eq. 21, Monte-Carlo draws from ``generator``) on the FC_G logits
        (detached unless temporal_grad_to_global)."""
        global_logits = self.global_frame_logits(out['feats'])  # (B, T_G, C)
        losses = dict(loss_global=self._aux_ce(global_logits, labels))
        if out['actions'] is not None:
            spatial = self.spatial_aux_logits(out['maps'].detach(), out['actions'], frame_size)
            losses['loss_spatial'] = F.cross_entropy(spatial, labels)
            losses['loss_size'] = self.size_reg * box_size_regulariser(out['actions'])
        if out['frame_logits'] is not None:
            frame_logits = global_logits if self.temporal_grad_to_global else global_logits.detach()
            losses['loss_temporal'] = temporal_policy_loss(
                out['frame_weights'], frame_logits, labels, self.num_mc_draws,
                self.num_mc_samples, self.temporal_loss, generator=generator,
                draw_mode=self.mc_draw_mode)
        return losses

    # ------------------------------------------------------------------ step-wise (early exit)
    def step(self, index: int, inputs: torch.Tensor,
             state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Exit 0: f_G + the glance exit. Exit 1 additionally runs the policy and crops the T_L focus
        patches. Exit k >= 1: f_L on the k-th focus patch + focus exit k. ``inputs`` are read by exits
        0 and 1 only (:attr:`last_input_step`; None is fine later).

        Returns:
            tuple: logits (B, C) and the next state (a new dict; batch-first tensors).
        """
        if index == 0:
            out = self.glance_features(inputs)
            logits, summary = self.fusion_head.glance(out['feats'])
            return logits, dict(maps=out['maps'], feats=out['feats'], summary=summary)
        state = dict(state)
        if index == 1:
            plan = self.policy(state.pop('maps'), state.pop('feats'))
            focus_index, boxes = self.plan_focus(plan['actions'], plan['frame_weights'],
                                                 tuple(inputs.shape[-2:]))
            # every focus patch now: later steps need neither the videos nor the boxes
            frames = gather_frames(inputs, focus_index).flatten(0, 1)
            patches = crop_boxes(frames, boxes.reshape(-1, 4), self.patch_size)
            state['patches'] = patches.view(*focus_index.shape, *patches.shape[1:])
        k = index - 1
        ready = state.pop('ready', None)  # (B, m, hidden) embeddings of patches k.. done ahead
        if ready is None or ready.shape[1] == 0:
            chunk = state['patches'][:, k:k + self.focus_chunk]
            maps = encode(self.local_backbone, chunk.flatten(0, 1))
            ready = self.fusion_head.embed_local(maps.mean(dim=(-2, -1)).view(*chunk.shape[:2], -1))
        if ready.shape[1] > 1:
            state['ready'] = ready[:, 1:]
        logits, state['running'] = self.fusion_head.focus_exit(k, ready[:, 0], state.get('running'),
                                                               state['summary'])
        return logits, state
