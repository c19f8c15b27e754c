# Copyright (c) mmdynamic contributors. All rights reserved.
"""Step-wise models and their batched early-exit execution.

A step-wise model (GFNet, MGNet, Uni-AdaFocus, ...) predicts after every step. It implements
:class:`StepwiseMixin`: ``init_state`` and ``step`` with an explicit state, so that nothing is kept on the
module between calls. :class:`EarlyExitExecutor` runs such a model on a batch, finalises the samples that
exit after each step and carries on with the survivors only: every tensor of the state (recurrent states,
feature buffers, patch coordinates) and of the inputs is gathered to the surviving rows, so later steps
really cost less.

For a stream of batches (a test set), :class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`
gives every sample the same exit and prediction while pooling the survivors of many batches per step.

State convention: a (nested) dict / list / tuple of tensors whose **first dimension is the batch**, or
``None``. Recurrent hidden states are therefore stored as (B, H), not (num_layers, B, H).
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch

from .confidence import get_confidence_fn

State = Any


def gather_batch(tree: State, index: torch.Tensor) -> State:
    """Select rows ``index`` (along dim 0) of every tensor in a nested structure."""
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index.to(tree.device)) if tree.dim() > 0 else tree
    if isinstance(tree, dict):
        return type(tree)((k, gather_batch(v, index)) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        items = [gather_batch(v, index) for v in tree]
        return type(tree)(*items) if hasattr(tree, '_fields') else type(tree)(items)
    if isinstance(tree, (int, float, str, bool)):
        return tree
    raise TypeError(f'cannot gather a state of type {type(tree).__name__}; use tensors with the '
                    'batch as their first dimension')


class StepwiseMixin:
    """Interface of models that predict after every step.

    Subclasses define ``num_exits`` and implement :meth:`init_state` and :meth:`step`.
    """
    num_exits: int

    def init_state(self, inputs: torch.Tensor, **kwargs) -> State:
        """The state before step 0. Args: inputs (Tensor): (B, ...) the batch."""
        raise NotImplementedError

    def step(self, index: int, inputs: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Run step ``index`` (0-based) on ``inputs`` (B, ...).

        Returns:
            tuple: the logits (B, num_classes) of exit ``index`` and the next state.
        """
        raise NotImplementedError

    def batch_dependent_steps(self) -> Optional[str]:
        """Why a sample's outputs would depend on the other samples of its batch, or None.

        The step-major executor pools the survivors of several batches, so it can only reproduce
        the per-batch executor when a step's output for one sample is a function of that sample
        (and its state) alone. Models whose steps draw random numbers for the whole batch (e.g.
        random patch locations at test time) return the reason here, and the executor refuses
        them. Defaults to None (deterministic, sample-wise steps).
        """
        return None

    def run_steps(self, inputs: torch.Tensor, num_steps: Optional[int] = None,
                  **kwargs) -> Tuple[torch.Tensor, State]:
        """Run steps 0..num_steps-1 for every sample.

        Returns:
            tuple: the logits (num_steps, B, num_classes) and the state after the last step.
        """
        state = self.init_state(inputs, **kwargs)
        outputs = []
        for index in range(self.num_exits if num_steps is None else num_steps):
            logits, state = self.step(index, inputs, state)
            outputs.append(logits)
        return torch.stack(outputs), state

    def forward_exits(self, inputs: torch.Tensor, num_steps: Optional[int] = None,
                      **kwargs) -> torch.Tensor:
        """Run steps 0..num_steps-1 for every sample. Returns: (num_steps, B, num_classes)."""
        return self.run_steps(inputs, num_steps, **kwargs)[0]

    def exit_macs(self, input_shape: Sequence[int], **kwargs) -> List[int]:
        """Cumulative MACs per sample of each exit, counted from the modules at ``input_shape``
        (C, H, W) or (T, C, H, W): exit k costs what running steps 0..k costs (work that only serves
        later steps, such as the next location, belongs to the step that uses it).

        What runs is counted, not only what the logits depend on: every module called by steps
        0..k (a head whose logits are discarded, a recurrent update that only feeds the state) and
        every op that the logits or the state after step k depend on (see
        :func:`mmdynamic.utils.flops.count_macs`).
        """
        from mmdynamic.utils.flops import count_macs, flatten_tensors
        param = next(self.parameters())
        inputs = torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device)

        def run(x: torch.Tensor, num_steps: int) -> Tuple[torch.Tensor, ...]:
            logits, state = self.run_steps(x, num_steps, **kwargs)
            return (logits, *flatten_tensors(state))

        return [
            count_macs(self, (inputs, ), fn=lambda x, n=n: run(x, n))
            for n in range(1, self.num_exits + 1)
        ]


def exit_mask(logits: torch.Tensor, index: int, thresholds: Sequence[float],
              confidence: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Which samples leave at exit ``index``: (B, ) bool, all of them at the last exit.

    Args:
        logits (Tensor): (B, C) logits of exit ``index``.
        index (int): 0-based exit.
        thresholds (Sequence[float]): (K, ) per-exit thresholds.
        confidence (Callable): (B, C) logits -> (B, ) confidence.
    """
    if index == len(thresholds) - 1:
        return torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    return confidence(logits) >= thresholds[index]


@dataclass
class EarlyExitResult:
    """Output of :meth:`EarlyExitExecutor.run`.

    Args:
        logits (Tensor): (B, C) logits of each sample at its exit.
        exits (Tensor): (B, ) 0-based exit index of each sample.
        batch_sizes (list[int]): How many samples ran each step.
    """
    logits: torch.Tensor
    exits: torch.Tensor
    batch_sizes: List[int]


class EarlyExitExecutor:
    """Batched early exit: samples whose confidence reaches the threshold of a step stop there.

    Args:
        thresholds (Sequence[float]): (K, ) per-exit thresholds; the last exit accepts everything.
        confidence (str | Callable): Confidence function (name or callable on (B, C) logits).
    """

    def __init__(self, thresholds: Sequence[float],
                 confidence: Union[str, Callable] = 'max_softmax') -> None:
        self.thresholds = [float(t) for t in thresholds]
        self.confidence = get_confidence_fn(confidence)

    @torch.no_grad()
    def run(self, model: StepwiseMixin, inputs: torch.Tensor, **kwargs) -> EarlyExitResult:
        """Args: model: a step-wise model. inputs (Tensor): (B, ...). kwargs: for ``init_state``."""
        if len(self.thresholds) != model.num_exits:
            raise ValueError(f'{len(self.thresholds)} thresholds for a model with '
                             f'{model.num_exits} exits')
        batch = inputs.shape[0]
        alive = torch.arange(batch, device=inputs.device)
        exits = torch.full((batch, ), -1, dtype=torch.long, device=inputs.device)
        out: Optional[torch.Tensor] = None
        state = model.init_state(inputs, **kwargs)
        sizes = []
        for index in range(model.num_exits):
            sizes.append(int(alive.numel()))
            logits, state = model.step(index, inputs, state)
            if out is None:
                out = logits.new_empty((batch, ) + tuple(logits.shape[1:]))
            leave = exit_mask(logits, index, self.thresholds, self.confidence)
            out[alive[leave]] = logits[leave]
            exits[alive[leave]] = index
            stay = (~leave).nonzero(as_tuple=True)[0]
            if stay.numel() == 0:
                break
            if stay.numel() == alive.numel():  # nobody left: the state stays as it is
                continue
            alive = alive[stay]
            inputs = inputs.index_select(0, stay)
            state = gather_batch(state, stay)
        return EarlyExitResult(logits=out, exits=exits, batch_sizes=sizes)


@torch.no_grad()
def predict_exits(model: StepwiseMixin, inputs: torch.Tensor, policy,
                  all_exits: Callable[[torch.Tensor], torch.Tensor]
                  ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The prediction step shared by the step-wise models' ``predict``.

    Args:
        model: The step-wise model (run by :class:`EarlyExitExecutor` when there is a policy).
        inputs (Tensor): (B, ...) the batch.
        policy (ExitPolicy, optional): ``thresholds`` and ``confidence``; None runs every step.
        all_exits (Callable): inputs -> (K, B, C) logits of every exit (used without a policy).

    Returns:
        tuple: final logits (B, C), exit index (B, ) and, without a policy, every exit's logits
        (K, B, C) (None with a policy).
    """
    if policy is None:
        exit_logits = all_exits(inputs)
        exits = torch.full((inputs.shape[0], ), model.num_exits - 1, dtype=torch.long,
                           device=inputs.device)
        return exit_logits[-1], exits, exit_logits
    result = EarlyExitExecutor(policy.thresholds, policy.confidence).run(model, inputs)
    return result.logits, result.exits, None


def set_exit_predictions(data_samples: Sequence, final: torch.Tensor, exits: torch.Tensor,
                         costs: torch.Tensor, exit_logits: Optional[torch.Tensor] = None
                         ) -> Sequence:
    """Write the prediction (softmax of ``final`` (B, C)), ``exit_macs`` (K, ), ``exit_index`` and,
    when given, ``exit_logits`` (K, B, C) into the data samples (read by the exit metrics)."""
    scores = final.softmax(dim=-1)
    exits = exits.cpu()  # host metadata, read by the metrics: one copy for the batch
    for i, sample in enumerate(data_samples):
        sample.set_pred_score(scores[i])
        sample.set_pred_label(scores[i].argmax(dim=-1, keepdim=True))
        sample.set_field(costs.clone(), 'exit_macs')
        sample.set_field(exits[i], 'exit_index')
        if exit_logits is not None:
            sample.set_field(exit_logits[:, i].detach(), 'exit_logits')
    return data_samples
