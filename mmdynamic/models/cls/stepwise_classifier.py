# Copyright (c) mmdynamic contributors. All rights reserved.
"""Base of mmpretrain classifiers that predict after every step (GFNet, MGNet)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers.base import BaseClassifier
from mmpretrain.structures import DataSample

from mmdynamic.evaluation.functional.budget import ExitPolicy
from mmdynamic.models.utils.early_exit import StepwiseMixin, predict_exits, set_exit_predictions


class StepwiseClassifier(StepwiseMixin, BaseClassifier):
    """An mmpretrain classifier with one exit per step.

    Subclasses implement :meth:`init_state` and :meth:`step` (explicit state, see
    :mod:`mmdynamic.models.utils.early_exit`) and may override :meth:`loss`.

    Prediction: without an exit policy every sample runs every step and each data sample gets
    ``exit_logits`` (K, C) (what the anytime and budget metrics need) with the prediction of the last
    exit. With an exit policy (a file written by the budget evaluation, or an :class:`ExitPolicy`),
    samples stop at their exit and really skip the later steps; each data sample gets ``exit_index``.
    Either way each data sample gets ``exit_macs`` (K, ), the cumulative MACs of the exits, counted from
    the modules at the input size.

    Args:
        exit_policy (str | dict | ExitPolicy, optional): Thresholds for early exit at test time: an
            exit-policy JSON file, ``dict(file=CHECKPOINT, budget=GMACS)`` for the policies a
            checkpoint's meta holds, or the policy itself. Checked against this model and its number
            of exits.
        data_preprocessor (dict, optional): See :class:`BaseClassifier`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, exit_policy: Optional[Union[str, dict, ExitPolicy]] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'mmpretrain.ClsDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self._exit_policy_cfg = exit_policy
        self._exit_macs_cache: Dict[Tuple[int, ...], List[int]] = {}

    # ------------------------------------------------------------------ exit policy
    @property
    def exit_policy(self) -> Optional[ExitPolicy]:
        """The early-exit policy used by :meth:`predict` (None: run every step)."""
        cfg = self._exit_policy_cfg
        if cfg is None or isinstance(cfg, ExitPolicy):
            return cfg
        if isinstance(cfg, str):
            policy = ExitPolicy.load(cfg)
        elif 'file' in cfg:  # dict(file='epoch_12.pth', budget=1.5)
            policy = ExitPolicy.load(cfg['file'], budget=cfg.get('budget'))
        else:
            policy = ExitPolicy.from_dict(cfg)
        policy.check_compatible(type(self).__name__, self.num_exits)
        self._exit_policy_cfg = policy
        return policy

    def set_exit_policy(self, policy: Optional[Union[str, dict, ExitPolicy]]) -> None:
        """Use ``policy`` for early exit from now on (None: run every step)."""
        self._exit_policy_cfg = policy
        if policy is not None:
            self.exit_policy  # noqa: B018  (validate now)

    def exit_macs_for(self, input_shape: Sequence[int]) -> List[int]:
        """:meth:`exit_macs` memoised per input shape (counting traces the model)."""
        key = tuple(int(s) for s in input_shape)
        if key not in self._exit_macs_cache:
            self._exit_macs_cache[key] = self.exit_macs(key)
        return self._exit_macs_cache[key]

    # ------------------------------------------------------------------ forward modes
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.forward_exits(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """The logits of every exit: (K, B, C)."""
        return self.forward_exits(inputs)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Cross-entropy averaged over the exits (GFNet Eq. 2). Subclasses add their terms."""
        exit_logits = self.forward_exits(inputs)
        labels = torch.cat([ds.gt_label for ds in data_samples]).to(exit_logits.device)
        losses = {'loss_cls': sum(F.cross_entropy(logits, labels) for logits in exit_logits) /
                  len(exit_logits)}
        with torch.no_grad():
            for k, logits in enumerate(exit_logits):
                losses[f'acc_exit{k + 1}'] = (logits.argmax(-1) == labels).float().mean() * 100
        return losses

    def exit_costs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Cumulative MACs (K, ) float64 of every exit for one sample of ``inputs`` (B, ...)."""
        return torch.tensor(self.exit_macs_for(inputs.shape[1:]), dtype=torch.float64)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        if data_samples is None:
            data_samples = [DataSample() for _ in range(inputs.shape[0])]
        costs = self.exit_costs(inputs)
        final, exits, exit_logits = predict_exits(self, inputs, self.exit_policy, self.forward_exits)
        set_exit_predictions(data_samples, final, exits, costs, exit_logits)
        return data_samples
