# Copyright (c) mmdynamic contributors. All rights reserved.
"""Cost accounting shared by every model: MACs counted from the modules themselves.

MACs follow MMEngine's (fvcore-compatible) :class:`~mmengine.analysis.FlopAnalyzer`: one per
multiply-add, counted by tracing the module at the real input size. Step-wise models compose these
counts into per-exit cumulative costs (see :mod:`mmdynamic.models.utils.early_exit`); nothing is
typed in.

What is counted is what runs. The tracer behind the counter eliminates dead code: an op whose result
does not reach the returned value (a head whose logits are thrown away, a recurrent update that only
feeds a state nobody reads within the call) would silently cost nothing. :func:`count_macs`
therefore also returns the tensor outputs of every submodule call made during the call
(``count_all_modules=True``, the default), so every module that executes is counted.
"""
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

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


def flatten_tensors(tree: Any) -> List[torch.Tensor]:
    """Every tensor of a nested dict / list / tuple (other leaves are skipped), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in flatten_tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in flatten_tensors(v)]
    return []


def _computed_in_trace(tensor: torch.Tensor) -> bool:
    """Whether the running trace computed ``tensor`` (False for a constant it only reads, e.g. a
    state tensor passed in and returned unchanged: the tracer refuses such an output)."""
    if torch._C._get_tracing_state() is None or not hasattr(torch._C, '_get_value_trace'):
        return True
    try:
        return torch._C._get_value_trace(tensor).node().kind() != 'prim::Constant'
    except RuntimeError:
        return False


class _CallWith(nn.Module):
    """Trace ``fn(*inputs, **kwargs)`` as the forward of a module that owns ``module``'s parameters.

    With ``tap_modules`` the traced call returns, flattened, the tensors of ``fn``'s output and the
    tensor outputs of every call of a submodule of ``module`` (collected by forward hooks that live
    only during the call), so that the tracer keeps, and the counter counts, work whose result does
    not reach ``fn``'s output.
    """

    def __init__(self, module: nn.Module, fn, kwargs: Optional[Dict] = None,
                 tap_modules: bool = True) -> None:
        super().__init__()
        self.module = module
        self._fn = fn
        self._kwargs = kwargs or {}
        self._tap = tap_modules

    def forward(self, *inputs):
        if not self._tap:
            return self._fn(*inputs, **self._kwargs)
        tapped: List[torch.Tensor] = []

        def record(mod, args, output) -> None:
            tapped.extend(flatten_tensors(output))

        handles = [m.register_forward_hook(record) for m in self.module.modules()]
        try:
            result = self._fn(*inputs, **self._kwargs)
        finally:
            for handle in handles:
                handle.remove()
        outputs = tuple(t for t in flatten_tensors(result) + tapped if _computed_in_trace(t))
        return outputs if outputs else result


@torch.no_grad()
def count_macs(module: nn.Module, inputs: Inputs, fn: Optional[Callable] = None, *,
               op_handles: Optional[Dict[str, Optional[Callable]]] = None,
               count_all_modules: bool = True, **kwargs) -> int:
    """MACs of one call of ``module`` (or of ``fn``, which uses it) on ``inputs``.

    Every submodule of ``module`` that executes during the call is counted, also when its output
    does not reach the returned value (see the module docstring); ops outside any submodule count
    when their results reach the returned value.

    Args:
        module (nn.Module): The module; it is put in eval mode for the count and restored.
        inputs (Tensor | tuple): Positional inputs, at the real sizes (a batch of 1 gives per-sample
            MACs).
        fn (Callable, optional): What to call instead of ``module.forward``, e.g. a method of
            ``module`` or a ``functools.partial`` of its forward. Its output may be a (nested)
            tuple / list / dict of tensors: e.g. the logits and the next state of a step.
        op_handles (dict, optional): Extra or replaced counter handles, ``{aten op: handle}``; a
            None handle stops counting that op (e.g. ``'aten::batch_norm'``).
        count_all_modules (bool): Count the modules whose outputs do not reach the returned value
            (True, what runs); False counts only the work the returned value depends on (what the
            tracer keeps). Defaults to True.
        **kwargs: Keyword arguments passed to the call (constants for the trace).

    Returns:
        int: Multiply-accumulate operations.
    """
    target = _CallWith(module, fn or module.forward, kwargs, tap_modules=count_all_modules)
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    was_training = module.training
    module.eval()
    try:
        with _no_autocast(inputs):
            return _count(target, inputs, op_handles)
    finally:
        module.train(was_training)


def _no_autocast(inputs: Tuple[Any, ...]):
    """Autocast off on the inputs' device for the count: a count asked for inside an AMP test run
    (``test_cfg.fp16``) traces the plain ops; MACs do not depend on the precision."""
    device = next((x.device.type for x in flatten_tensors(list(inputs))), 'cpu')
    return torch.autocast(device_type=device, enabled=False)


def _count(target: nn.Module, inputs: Tuple[Any, ...],
           op_handles: Optional[Dict[str, Optional[Callable]]]) -> int:
    """The counter's total for ``target(*inputs)`` with mmdynamic's op handles."""
    analyzer = FlopAnalyzer(target, inputs)
    for op, gates in _GATES.items():
        analyzer.set_op_handle(op, _recurrent_handle(gates))
    for op, handle in (op_handles or {}).items():
        # MMEngine keeps counting an op whose handle is set to None: count it as zero instead
        analyzer.set_op_handle(op, handle if handle is not None else _uncounted)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return int(analyzer.total())


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
