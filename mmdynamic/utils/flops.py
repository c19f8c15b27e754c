# Copyright (c) mmdynamic contributors. All rights reserved.
"""Cost accounting shared by every model: MACs counted from the modules themselves.

MACs follow MMEngine's (fvcore-compatible) :class:`~mmengine.analysis.FlopAnalyzer`: one per
multiply-add, counted by tracing the module at the real input size. Step-wise models compose these
counts into per-exit cumulative costs (see :mod:`mmdynamic.models.utils.exits`); nothing is typed in.
"""
from functools import partial
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

Inputs = Union[torch.Tensor, Tuple[Any, ...]]

_GATES = {'aten::gru': 3, 'aten::lstm': 4, 'aten::rnn_tanh': 1, 'aten::rnn_relu': 1}


def _recurrent_handle(gates: int):
    """MACs of a fused recurrent op (``nn.GRU``/``nn.LSTM``/``nn.RNN``), which the counter lacks.

    Per layer, direction and time step: ``gates * (input_size * hidden + hidden * hidden)``.
    """

    def handle(inputs, outputs) -> int:
        # aten::gru(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
        #           batch_first); aten::lstm takes hx as a list (h, c) at the same position.
        seq = inputs[0].type().sizes()
        out = outputs[0].type().sizes()
        num_layers = inputs[4].toIValue()
        bidirectional = inputs[7].toIValue()
        batch_first = inputs[8].toIValue()
        steps, batch = (seq[1], seq[0]) if batch_first else (seq[0], seq[1])
        if len(seq) == 2:  # unbatched input
            steps, batch = seq[0], 1
        dirs = 2 if bidirectional else 1
        hidden = out[-1] // dirs
        total = 0
        in_size = seq[-1]
        for _ in range(num_layers):
            total += dirs * gates * (in_size * hidden + hidden * hidden)
            in_size = hidden * dirs
        return int(total * steps * batch)

    return handle


def _uncounted(inputs, outputs) -> int:
    """Handle of an op that is not counted."""
    return 0


class _CallWith(nn.Module):
    """Trace ``fn(*inputs, **kwargs)`` as the forward of a module that owns ``module``'s parameters."""

    def __init__(self, module: nn.Module, fn, kwargs: Optional[Dict] = None) -> None:
        super().__init__()
        self.module = module
        self._fn = fn
        self._kwargs = kwargs or {}

    def forward(self, *inputs):
        return self._fn(*inputs, **self._kwargs)


@torch.no_grad()
def count_macs(module: nn.Module, inputs: Inputs, fn: Optional[Callable] = None, *,
               op_handles: Optional[Dict[str, Optional[Callable]]] = None, **kwargs) -> int:
    """MACs of one call of ``module`` (or of ``fn``, which uses it) on ``inputs``.

    Args:
        module (nn.Module): The module; it is put in eval mode for the count and restored.
        inputs (Tensor | tuple): Positional inputs, at the real sizes (a batch of 1 gives per-sample
            MACs).
        fn (Callable, optional): What to call instead of ``module.forward``, e.g. a method of
            ``module`` or a ``functools.partial`` of its forward.
        op_handles (dict, optional): Extra or replaced counter handles, ``{aten op: handle}``; a
            None handle stops counting that op (e.g. ``'aten::batch_norm'``).
        **kwargs: Keyword arguments passed to the call (constants for the trace).

    Returns:
        int: Multiply-accumulate operations.
    """
    target = _CallWith(module, fn or module.forward, kwargs)
    was_training = module.training
    module.eval()
    try:
        analyzer = FlopAnalyzer(target, inputs if isinstance(inputs, tuple) else (inputs, ))
        for op, gates in _GATES.items():
            analyzer.set_op_handle(op, _recurrent_handle(gates))
        for op, handle in (op_handles or {}).items():
            # MMEngine keeps counting an op whose handle is set to None: count it as zero instead
            analyzer.set_op_handle(op, handle if handle is not None else _uncounted)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        return int(analyzer.total())
    finally:
        module.train(was_training)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_model_macs_on_batch(model: nn.Module, data_batch: Dict) -> Tuple[int, Sequence[int]]:
    """MACs of an OpenMMLab model's tensor forward (``mode='tensor'``) on one data batch.

    Args:
        model (nn.Module): A :class:`~mmengine.model.BaseModel` (classifier, detector, segmentor,
            recognizer).
        data_batch (dict): A batch from the model's test dataloader.

    Returns:
        tuple: (MACs per sample, the input shape the model saw).
    """
    data = model.data_preprocessor(data_batch, False)
    inputs = data['inputs']
    if isinstance(inputs, (list, tuple)):
        raise TypeError('count_model_macs_on_batch needs a batched input tensor')
    forward = partial(model.forward, data_samples=data.get('data_samples'), mode='tensor')
    return count_macs(model, (inputs, ), fn=forward) // inputs.shape[0], tuple(inputs.shape[1:])


def format_macs(macs: float) -> str:
    """``4089184256`` -> ``'4.089 G'``."""
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(macs) >= scale:
            return f'{macs / scale:.3f} {unit}'
    return f'{macs:.0f}'
