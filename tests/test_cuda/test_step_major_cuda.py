# Copyright (c) mmdynamic contributors. All rights reserved.
"""The step-major early-exit executor (issue #20) on a GPU: per sample the exit, the cost and (within
a tolerance) the logits of the per-batch executor, with every output on the model's device.

Tolerance: exits and costs identical; logits within 1e-4 (TF32 off): a sample runs step k in another
batch than in the per-batch executor, and cuDNN picks kernels per batch shape, so the last float32
bits differ. The thresholds lie in gaps of the confidences (the CPU test's ``gap_thresholds``).
The ``cpu`` variant of the toy model runs the same body in CI.
"""
import pytest
import torch

from ..conftest import DEVICES

step_major = pytest.importorskip('mmdynamic.models.utils.step_major')

ATOL = 1e-4


def _toy():
    from ..test_models.test_utils.test_early_exit import ToyStepwise
    torch.manual_seed(0)
    return ToyStepwise(), (3, 24, 24), 'max_softmax'


def _gfnet():
    from ..test_models.test_gfnet.test_gfnet import build
    return build(test_locations='mean'), (3, 64, 64), 'max_softmax'


def _mgnet():
    from mmengine.registry import init_default_scope

    from ..test_models.test_mgnet.test_mgnet import tiny_mgnet
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = tiny_mgnet()
    model.init_weights()
    return model, (3, 48, 48), 'max_softmax'


def _uni_adafocus():
    from ..test_models.test_action.test_uni_adafocus import T0, build
    return build(), (T0, 3, 64, 64), 'max_logit'


MODELS = {'toy': _toy, 'gfnet': _gfnet, 'mgnet': _mgnet, 'uni_adafocus': _uni_adafocus}
CASES = [pytest.param('cpu', 'toy', id='cpu-toy')] + [
    pytest.param('cuda', name, id=f'cuda-{name}', marks=pytest.mark.cuda) for name in MODELS]


@pytest.mark.parametrize('device,name', CASES)
def test_step_major_matches_per_batch_executor(device, name, no_tf32):
    from mmdynamic.models.utils import EarlyExitExecutor
    from mmdynamic.models.utils.confidence import get_confidence_fn

    from ..test_models.test_utils.test_step_major import gap_thresholds
    model, shape, confidence = MODELS[name]()
    model = model.to(device).eval()
    x = torch.randn(11, *shape, generator=torch.Generator().manual_seed(3)).to(device)
    batches = list(x.split(4))
    with torch.no_grad():
        logits = torch.cat([step_major.executor_view(model, b)[0].forward_exits(
            step_major.executor_view(model, b)[1]) for b in batches], dim=1)
    conf = get_confidence_fn(confidence)(logits.flatten(0, 1)).view(logits.shape[:2])
    thresholds = gap_thresholds(conf.cpu(), (0.4, 0.6))

    reference = [EarlyExitExecutor(thresholds, confidence).run(*step_major.executor_view(model, b))
                 for b in batches]
    ref_logits = torch.cat([r.logits for r in reference])
    ref_exits = torch.cat([r.exits for r in reference])
    assert ref_logits.device == x.device
    for max_queued in (None, 2, 0):
        executor = step_major.StepMajorExecutor(thresholds, confidence, batch_size=4,
                                                max_queued=max_queued)
        result = step_major.run_stream(executor, model, batches)
        assert result.logits.device == x.device, (result.logits.device, x.device)
        assert torch.equal(result.keys.cpu(), torch.arange(len(ref_exits)))
        assert torch.equal(result.exits.cpu(), ref_exits.cpu()), max_queued
        torch.testing.assert_close(result.logits, ref_logits, atol=ATOL, rtol=0)
        costs = step_major.exit_costs(model, batches[0]) if hasattr(model, 'exit_macs_for') else None
        if costs is not None:  # the same cost table whatever the device
            assert torch.equal(costs.cpu(), step_major.exit_costs(model.cpu(), batches[0].cpu()))
            model.to(device)
        assert executor.num_queued == 0
