# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR sparse inference under ``torch.compile`` (issue #18): the parts compiled by
``tools/analysis_tools/benchmark_sar.py --compile`` give the eager dense outputs and MACs.

The dense parts of a small SAR-R50 compile in about 10 s; compiling its refine blocks as well
(``--compile-refine``) takes Inductor minutes to tens of minutes on a 2-core machine, so that case is
marked ``inductor`` and runs only on request: ``MMDYN_INDUCTOR_TESTS=1 pytest
tests/test_models/test_sar/test_sar_sparse_compile.py``. The wrapper's MACs accounting is also
tested without Inductor (an eager stand-in for the compiler).
"""
import importlib.util
import os.path as osp

import pytest
import torch

from ...conftest import REPO
from ..test_layers.test_sar_sparse import _mixed_masks, _randomise
from mmdynamic.models.backbones.sar_resnet import SARResNet
from mmdynamic.models.layers.sar_sparse import set_sparse_impl

REL_TOL = 1e-4  # relative to the largest output magnitude


def _tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_sar.py')
    spec = importlib.util.spec_from_file_location('benchmark_sar', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_sar(seed: int = 0) -> SARResNet:
    # 1/8 width, two blocks per SAR stage, cells of 4 / 3 / 3 px: partial edge cells at 72 x 88
    return _randomise(SARResNet(depth=50, base_channels=8, stem_channels=16, groups=2,
                                mask_cell_size=(4, 3, 3), stage_blocks=(2, 2, 2, 1),
                                out_indices=(0, 1, 2, 3)), seed).eval()


def _dense(model: SARResNet, x: torch.Tensor):
    model.set_sparse_infer(False)
    with torch.no_grad():
        outs = [t.clone() for t in model(x)]
    return outs, [m.clone() for m in model.last_masks], model.last_flops.clone()


def _assert_close(outs, reference) -> None:
    assert len(outs) == len(reference)
    for out, ref in zip(outs, reference):
        scale = max(ref.abs().max().item(), 1.0)
        assert (out - ref).abs().max().item() <= REL_TOL * scale


pytestmark = pytest.mark.usefixtures('single_thread')


def test_compiled_parts_count_the_eager_macs():
    """With an eager stand-in for the compiler, the wrapped model is the model: same outputs, masks
    and realised MACs (the wrapper runs the parts without the meter and adds their MACs)."""
    tool = _tool()
    model = _small_sar()
    x = torch.randn(2, 3, 72, 88, generator=torch.Generator().manual_seed(1))
    _mixed_masks(model, x)
    reference, masks, flops = _dense(model, x)
    model.set_sparse_infer(True)
    with torch.no_grad():
        model(x)
        sparse_flops = model.last_flops.clone()
    tool.compile_sar(model, lambda fn: fn, refine=True)
    for stage in model.stages:
        wrapped = list(stage.base) + list(stage.refine) + [stage.fuse, stage.fusion_block]
        assert all(isinstance(m, tool.CompiledPart) for m in wrapped)
        assert all(tool.COMPILED_FORWARD in m.__dict__ for m in stage.masks)
    assert all(isinstance(m, tool.CompiledPart) for m in model.layer4)
    for sparse in (True, False):
        model.set_sparse_infer(sparse)
        for _ in range(2):  # the second call takes the static MACs from the cache
            with torch.no_grad():
                outs = model(x)
            _assert_close(outs, reference)
            assert all(torch.equal(a, b) for a, b in zip(model.last_masks, masks))
            assert torch.equal(model.last_flops, flops if not sparse else sparse_flops)
    assert torch.equal(sparse_flops, flops)


@pytest.mark.parametrize('refine', [
    pytest.param(False, id='dense_parts'),  # what benchmark_sar.py --compile does: ~10 s each
    pytest.param(True, id='with_refine', marks=pytest.mark.inductor),  # --compile-refine
])
@pytest.mark.parametrize('freezing', [False, True])
def test_compiled_sar_sparse_equals_eager_dense(freezing, refine):
    """Inductor-compiled SAR (sparse path, halo) equals the eager dense path to 1e-4, on two inputs
    whose masks select different numbers of cells (the dynamic dimension)."""
    import torch._inductor.config as inductor_config
    tool = _tool()
    model = _small_sar()
    inputs = [torch.randn(2, 3, 72, 88, generator=torch.Generator().manual_seed(seed))
              for seed in (1, 2)]
    _mixed_masks(model, inputs[0])
    references = [_dense(model, x) for x in inputs]
    assert references[0][1][0].sum() != references[1][1][0].sum()  # other cell counts
    set_sparse_impl(model, 'halo')
    model.set_sparse_infer(True)
    saved = dict(freezing=inductor_config.freezing,
                 layout_optimization=inductor_config.layout_optimization)
    try:
        tool.compile_sar(model, tool.make_compiler(freezing=freezing), refine=refine)
        with torch.inference_mode():
            for x, (reference, masks, flops) in zip(inputs, references):
                outs = model(x)
                _assert_close(outs, reference)
                assert all(torch.equal(a, b) for a, b in zip(model.last_masks, masks))
                assert torch.equal(model.last_flops, flops)
    finally:
        for key, value in saved.items():
            setattr(inductor_config, key, value)
        torch._dynamo.reset()
