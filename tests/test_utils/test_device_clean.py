# Copyright (c) mmdynamic contributors. All rights reserved.
"""Device and dtype cleanliness of the package (issue #21), checked without a GPU.

1. A static scan (AST) of ``mmdynamic/`` for the classic mistakes that only show on a GPU:
   tensor factories (``torch.zeros``, ``torch.arange``, ``torch.rand``, ...) without ``device=``
   (the tensor lands on the CPU while the inputs are on the GPU; ``torch.as_tensor`` only on a
   literal: on a tensor it keeps the tensor's device), ``torch.Generator()`` without a
   device (a CPU generator cannot draw CUDA tensors), ``.cuda()`` (hard-codes the device) and
   ``.numpy()`` not right after ``.cpu()`` (fails on a CUDA tensor). Every finding must be listed
   below with its reason: :data:`ALLOWED` (host-side by design) or :data:`KNOWN` (a reported defect in
   a module its owner has still to fix). A new finding fails, and so does a listed one that is gone
   (remove it from the list).
2. Forward, loss and early exit of small models of every step-wise family in float64: every output
   follows the input dtype (a hard-coded float32 tensor would make float32 outputs or fail).
"""
import ast
import os
import os.path as osp
from typing import Dict, Set, Tuple

import pytest
import torch

from ..conftest import REPO

PACKAGE = osp.join(REPO, 'mmdynamic')
FACTORIES = {'zeros', 'ones', 'empty', 'full', 'arange', 'linspace', 'logspace', 'eye', 'tensor',
             'as_tensor', 'rand', 'randn', 'randint', 'randperm', 'normal', 'bernoulli'}
_LITERALS = (ast.List, ast.Tuple, ast.Constant, ast.ListComp, ast.GeneratorExp)
# host-only code: data pipelines (data workers), checkpoint conversion and test-data builders
HOST_ONLY = ('mmdynamic/datasets/', 'mmdynamic/testing/', 'mmdynamic/utils/official_converter.py',
             'mmdynamic/utils/checkpoint_check.py')

Finding = Tuple[str, str, str]  # (file, qualified function, what)

# host-side by design: (file, function, what) -> why
ALLOWED: Dict[Finding, str] = {
    ('mmdynamic/evaluation/functional/mask_selectivity.py', 'object_cells', 'torch.arange'):
        'boxes from the annotations (host lists); the masks are brought to the host first',
    ('mmdynamic/evaluation/functional/mask_selectivity.py', 'object_cells', 'torch.zeros'):
        'as above: a host table of object cells',
    ('mmdynamic/evaluation/metrics/exit_outputs.py', 'stack_records', 'torch.zeros'):
        'stacks the metric records, which are kept on the host',
    ('mmdynamic/models/cls/stepwise_classifier.py', 'StepwiseClassifier.exit_costs', 'torch.tensor'):
        'per-sample MAC counts: host metadata read by the metrics on the host',
    ('mmdynamic/models/action/uni_adafocus.py', 'AdaFocusRecognizerBase.exit_costs', 'torch.tensor'):
        'per-sample MAC counts: host metadata read by the metrics on the host',
    ('mmdynamic/models/utils/step_major.py', 'StepMajorExecutor.submit', 'torch.arange'):
        'sample ids: host bookkeeping of the stream (the queues are ordered on the host)',
    ('mmdynamic/models/utils/step_major.py', 'StepMajorExecutor._run', 'torch.full'):
        'exit indices kept with the host sample ids',
    ('mmdynamic/models/utils/step_major.py', 'exit_costs', 'torch.tensor'):
        'per-sample MAC counts: host metadata, as in predict',
}

# defects reported to the owners of these modules (issue #21 note), to be fixed there
KNOWN: Dict[Finding, str] = {}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == 'torch':
            return f'torch.{func.attr}'
        return f'.{func.attr}'
    return ''


def _follows_cpu(node: ast.Call) -> bool:
    """``x.cpu().numpy()`` (or ``.detach().cpu().numpy()``): the receiver ends in ``.cpu()``."""
    receiver = node.func.value
    return (isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute)
            and receiver.func.attr == 'cpu')


def scan(path: str) -> Set[Finding]:
    """The findings of one source file."""
    rel = osp.relpath(path, REPO).replace(os.sep, '/')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=rel)
    found: Set[Finding] = set()
    scope = []

    class Visitor(ast.NodeVisitor):

        def _scoped(self, node):
            scope.append(node.name)
            self.generic_visit(node)
            scope.pop()

        visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

        def visit_Call(self, node: ast.Call) -> None:
            name = _call_name(node)
            keywords = {k.arg for k in node.keywords}
            where = '.'.join(scope) or '<module>'
            if name in {f'torch.{f}' for f in FACTORIES} | {'torch.Generator'}:
                on_tensor = (name == 'torch.as_tensor' and node.args
                             and not isinstance(node.args[0], _LITERALS))
                if 'device' not in keywords and None not in keywords and not on_tensor:
                    found.add((rel, where, name))  # (keyword None: **kwargs)
            elif name == '.cuda':
                found.add((rel, where, '.cuda()'))
            elif name == '.numpy' and not _follows_cpu(node):
                found.add((rel, where, '.numpy() without .cpu()'))
            self.generic_visit(node)

    Visitor().visit(tree)
    return found


def package_findings() -> Set[Finding]:
    found: Set[Finding] = set()
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            path = osp.join(root, name)
            rel = osp.relpath(path, REPO).replace(os.sep, '/')
            if name.endswith('.py') and not rel.startswith(HOST_ONLY):
                found |= scan(path)
    return found


def test_scan_catches_the_classic_mistakes(tmp_path):
    src = tmp_path / 'bad.py'
    src.write_text(
        'import torch\n'
        'def forward(x):\n'
        '    a = torch.zeros(3)\n'
        '    b = torch.arange(4, device=x.device)\n'
        '    g = torch.Generator()\n'
        '    c = x.cuda()\n'
        '    d = x.numpy()\n'
        '    e = x.detach().cpu().numpy()\n'
        '    f = torch.rand(2, **kw)\n'
        '    h = torch.as_tensor(x, dtype=torch.float64)\n'
        '    i = torch.as_tensor([1, 2])\n')
    found = {what for _, _, what in scan(str(src))}
    assert found == {'torch.zeros', 'torch.Generator', '.cuda()', '.numpy() without .cpu()',
                     'torch.as_tensor'}


def test_package_is_device_clean():
    found = package_findings()
    listed = set(ALLOWED) | set(KNOWN)
    new = sorted(found - listed)
    assert not new, ('tensors made without device= (or other device mistakes) in:\n' +
                     '\n'.join(f'  {f}:{fn}: {what}' for f, fn, what in new) +
                     '\nmake them on the inputs\' device, or list them in ALLOWED with the reason')
    gone = sorted(listed - found)
    assert not gone, f'fixed or moved (remove them from ALLOWED / KNOWN): {gone}'


# ---------------------------------------------------------------------------- dtype following
def _gfnet(stage):
    from ..test_models.test_gfnet.test_gfnet import batch, build
    inputs, samples = batch(4)
    return build(train_stage=stage), inputs, samples


def _mgnet():
    from mmengine.registry import init_default_scope

    from ..test_models.test_mgnet.test_mgnet import samples, tiny_mgnet
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = tiny_mgnet()
    model.init_weights()
    return model, torch.randn(4, 3, 48, 48), samples([0, 1, 2, 3])


def _uni_adafocus():
    from ..test_models.test_action.test_uni_adafocus import build, samples, videos
    return build(), videos(4), samples([0, 1, 2, 3])


def _video(name):
    import importlib
    module = importlib.import_module(f'tests.test_models.test_action.test_{name}')
    return module.build(), module.videos(4), module.samples([0, 1, 2, 3])


FAMILIES = {'gfnet-stage1': lambda: _gfnet(1), 'gfnet-stage2': lambda: _gfnet(2),
            'mgnet': _mgnet, 'uni_adafocus': _uni_adafocus,
            'adafocus_v2': lambda: _video('adafocus_v2'),
            'adafocus_v2_tsm': lambda: _video('adafocus_v2_tsm'),
            'uni_adafocus_tsm': lambda: _video('uni_adafocus_tsm')}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_step_wise_families_follow_the_input_dtype(family):
    """float64 weights and inputs: every loss term, every exit's logits and the early-exit outputs
    are float64 (a tensor made in a fixed dtype would pull them to float32 or fail)."""
    from mmdynamic.models.utils import EarlyExitExecutor
    model, inputs, samples = FAMILIES[family]()
    model = model.double().train()
    inputs = inputs.double()
    losses = model.loss(inputs, samples)
    terms = {k: v for k, v in losses.items() if k.startswith('loss')}
    assert terms and all(v.dtype == torch.float64 for v in terms.values()), {
        k: v.dtype for k, v in terms.items()}
    sum(terms.values()).backward()
    model.eval()
    with torch.no_grad():
        exits = model.forward_exits(inputs)
        assert exits.dtype == torch.float64
        thresholds = [0.5] * (model.num_exits - 1) + [float('-inf')]
        result = EarlyExitExecutor(thresholds).run(model, inputs)
    assert result.logits.dtype == torch.float64 and result.exits.device == inputs.device
