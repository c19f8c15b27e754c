# Copyright (c) mmdynamic contributors. All rights reserved.
"""A test loop that runs early exit step-major over the whole test set (issue #20).

:class:`StepMajorTestLoop` is MMEngine's test loop with the model's early exit
(``model.exit_policy``) run by :class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`: the
survivors of many dataloader batches are pooled per step, so late steps run on full batches. Every
sample gets the prediction, ``exit_index`` and ``exit_macs`` the model's own ``predict`` gives it;
the batches are handed to the evaluator and the ``after_test_iter`` hooks in dataloader order, each
once all its samples have exited, so the metrics (and ``BudgetEvalHook``'s realised cost) equal
those of the per-batch test loop. Each rank pools its own shard; results are gathered as usual.

Use it with ``tools/test.py CONFIG CKPT --exit-policy POLICY --throughput`` or, in a config for any
framework's test tool::

    model = dict(..., exit_policy='exit_policy_1.5G.json')
    test_cfg = dict(type='mmdynamic.StepMajorTestLoop', batch_size=32)
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.runner import TestLoop, autocast
from torch.utils.data import DataLoader

from mmdynamic.models.utils.early_exit import set_exit_predictions
from mmdynamic.models.utils.step_major import (StepMajorExecutor, StepMajorResult,
                                               executor_view, exit_costs)
from mmdynamic.registry import LOOPS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model


def step_occupancy(step_batches: Sequence[Sequence[int]]) -> str:
    """'step 1: 10 calls, 31.9 samples per call; ...' for a log line."""
    parts = []
    for k, sizes in enumerate(step_batches):
        mean = sum(sizes) / len(sizes) if sizes else 0.0
        parts.append(f'step {k + 1}: {len(sizes)} calls, {mean:.1f} samples per call')
    return '; '.join(parts)


class _PendingBatch:
    """A dataloader batch whose samples are (partly) still in the executor."""

    def __init__(self, index: int, data_batch, data_samples: Sequence, first_key: int,
                 costs: torch.Tensor) -> None:
        self.index = index
        self.data_batch = data_batch
        self.data_samples = data_samples
        self.first_key = first_key
        self.costs = costs
        self.logits: List[Optional[torch.Tensor]] = [None] * len(data_samples)
        self.exits: List[Optional[torch.Tensor]] = [None] * len(data_samples)
        self.missing = len(data_samples)

    def done(self) -> bool:
        return self.missing == 0


@register_dual(LOOPS)
class StepMajorTestLoop(TestLoop):
    """Test loop with step-major early exit of a step-wise model.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader.
        evaluator (Evaluator | dict | list): The test evaluator.
        fp16 (bool): Run the steps under autocast. Defaults to False.
        batch_size (int, optional): Samples per step call (None: the dataloader's batch size).
        max_queued (int, optional): At most this many samples wait between steps (None: the
            natural bound ``num_exits * (batch_size - 1)``; see
            :class:`~mmdynamic.models.utils.step_major.StepMajorExecutor`).
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Dict, List], fp16: bool = False,
                 batch_size: Optional[int] = None, max_queued: Optional[int] = None) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f'batch_size must be None or a positive int, got {batch_size!r}')
        self.batch_size = batch_size or self.dataloader.batch_size
        if not self.batch_size:
            raise ValueError('StepMajorTestLoop needs batch_size when the dataloader has none '
                             '(a batch sampler)')
        self.max_queued = max_queued
        self.executor: Optional[StepMajorExecutor] = None

    def _model(self):
        return unwrap_model(self.runner.model)

    def run(self) -> dict:
        """Launch the test: every batch enters the executor, finished batches go to the
        evaluator."""
        model = self._model()
        policy = getattr(model, 'exit_policy', None)
        if policy is None:
            raise ValueError(f'StepMajorTestLoop runs early exit: {type(model).__name__} needs an '
                             'exit policy (model.exit_policy in the config, or tools/test.py '
                             '--exit-policy FILE --throughput)')
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.executor = StepMajorExecutor(policy.thresholds, policy.confidence,
                                          batch_size=self.batch_size, max_queued=self.max_queued)
        pending: List[_PendingBatch] = []
        by_key: Dict[int, _PendingBatch] = {}
        for idx, data_batch in enumerate(self.dataloader):
            self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
            batch = self._submit(model, idx, data_batch)
            pending.append(batch)
            for key in range(batch.first_key, batch.first_key + len(batch.data_samples)):
                by_key[key] = batch
            self._collect(self.executor.pop_finished(), by_key)
            self._hand_over(pending)
        with torch.no_grad(), autocast(enabled=self.fp16):
            self.executor.finish()
        self._collect(self.executor.pop_finished(), by_key)
        self._hand_over(pending)
        if pending:
            raise RuntimeError(f'{len(pending)} batches did not finish (an executor bug)')
        print_log(f'Step-major early exit: {step_occupancy(self.executor.step_batches)}',
                  logger='current')
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def _submit(self, model, idx: int, data_batch) -> _PendingBatch:
        data = model.data_preprocessor(data_batch, False)
        inputs, data_samples = data['inputs'], data['data_samples']
        if data_samples is None:
            raise ValueError('StepMajorTestLoop needs the data samples of every batch (the '
                             'evaluator reads them)')
        costs = exit_costs(model, inputs)
        with autocast(enabled=self.fp16):
            keys = self.executor.submit(*executor_view(model, inputs))
        # the inputs live in the executor's queues now; the batch keeps its samples only
        data_batch = {k: v for k, v in data_batch.items() if k != 'inputs'} \
            if isinstance(data_batch, dict) else data_batch
        return _PendingBatch(idx, data_batch, data_samples, int(keys[0]) if len(keys) else 0,
                             costs)

    @staticmethod
    def _collect(done: Optional[StepMajorResult], by_key: Dict[int, _PendingBatch]) -> None:
        if done is None:
            return
        for i, key in enumerate(done.keys.tolist()):
            batch = by_key.pop(key)
            row = key - batch.first_key
            batch.logits[row] = done.logits[i]
            batch.exits[row] = done.exits[i]
            batch.missing -= 1

    def _hand_over(self, pending: List[_PendingBatch]) -> None:
        """Evaluate the finished batches at the head of ``pending``, in dataloader order."""
        while pending and pending[0].done():
            batch = pending.pop(0)
            outputs = set_exit_predictions(batch.data_samples, torch.stack(batch.logits),
                                           torch.stack(batch.exits), batch.costs)
            self.evaluator.process(data_samples=outputs, data_batch=batch.data_batch)
            self.runner.call_hook('after_test_iter', batch_idx=batch.index,
                                  data_batch=batch.data_batch, outputs=outputs)
