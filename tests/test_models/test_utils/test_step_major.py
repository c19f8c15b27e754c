# Copyright (c) mmdynamic contributors. All rights reserved.
"""Step-major early exit (issue #20): per sample the same prediction, exit and cost as the
per-batch path of each family, with a batch remainder and with queue limits that force partial
batches.

Tolerance: the exits and costs must be identical. The logits are compared with ``atol=1e-5``: a
sample runs step k in a batch of other samples than in the per-batch executor, and CPU GEMM /
convolution kernels block the batch differently, which changes the last float32 bits (measured on
the development CPU, largest difference per family: toy 1.5e-8, GFNet 3e-8, AdaFocusV2 9e-8,
Uni-AdaFocus-TSM 3e-7, MGNet 2.6e-6 (its transformer fusion); Uni-AdaFocus, its X3D variant and
AdaFocusV2-TSM bit-identical). With ``max_queued=0`` and stream batches no larger than the step
batch, the batches are the per-batch executor's, and the logits are bit-identical (tested).
Thresholds are placed in gaps of the confidences wider than 1e-5, so that such float differences
cannot flip an exit decision.
"""
import pytest
import torch
import torch.nn as nn

from mmdynamic.evaluation import ExitPolicy
from mmdynamic.models.utils import EarlyExitExecutor
from mmdynamic.models.utils.confidence import get_confidence_fn
from mmdynamic.models.utils.step_major import (StepMajorExecutor, concat_batch, executor_view,
                                               exit_costs, run_stream, slice_batch)
from mmdynamic.models.utils.early_exit import gather_batch
from .test_early_exit import ToyStepwise

ATOL = 1e-5


def gap_thresholds(conf: torch.Tensor, quantiles) -> list:
    """Thresholds (K, ) for confidences (K, N): for exit k < K-1, the middle of the widest gap
    between sorted confidences near quantile ``quantiles[k]``; -inf for the last exit."""
    out = []
    for k in range(conf.shape[0] - 1):
        values = conf[k].sort().values
        n = values.numel()
        centre = int(quantiles[k % len(quantiles)] * (n - 1))
        lo, hi = max(0, centre - n // 4), min(n - 1, centre + n // 4)
        gaps = values[lo + 1:hi + 1] - values[lo:hi]
        i = lo + int(gaps.argmax())
        assert float(values[i + 1] - values[i]) > 1e-5, 'confidences too close for a safe threshold'
        out.append(float((values[i] + values[i + 1]) / 2))
    return out + [float('-inf')]


def per_batch(stepwise_of, model, batches, thresholds, confidence):
    """The per-batch executor on each batch (what ``predict`` runs): logits, exits, costs."""
    logits, exits = [], []
    executor = EarlyExitExecutor(thresholds, confidence)
    for x in batches:
        result = executor.run(*stepwise_of(model, x))
        logits.append(result.logits)
        exits.append(result.exits)
    exits = torch.cat(exits)
    return torch.cat(logits), exits, sample_costs(model, batches, exits)


def step_major(model, batches, thresholds, confidence, batch_size, max_queued):
    executor = StepMajorExecutor(thresholds, confidence, batch_size=batch_size,
                                 max_queued=max_queued)
    result = run_stream(executor, model, batches)
    return result, sample_costs(model, batches, result.exits), executor


def sample_costs(model, batches, exits):
    """(N, ) MACs of each sample at its exit (the exit index itself for models without costs)."""
    if not hasattr(model, 'exit_macs_for'):
        return exits.double()
    costs = torch.cat([exit_costs(model, x).expand(x.shape[0], -1) for x in batches])
    return costs.gather(1, exits[:, None])[:, 0]


def check_equal(model, batches, confidence='max_softmax', quantiles=(0.4, 0.6), batch_size=4,
                conf_fn=None):
    """Per-batch vs step-major, unbounded and with limits that force early flushing."""
    model.eval()
    with torch.no_grad():
        all_logits = torch.cat([executor_view(model, x)[0].forward_exits(executor_view(model, x)[1])
                                for x in batches], dim=1)
    conf = (conf_fn or get_confidence_fn(confidence))(all_logits.flatten(0, 1)).view(
        all_logits.shape[:2])
    thresholds = gap_thresholds(conf, quantiles)
    ref_logits, ref_exits, ref_costs = per_batch(executor_view, model, batches, thresholds,
                                                 confidence)
    assert 0 < int((ref_exits == 0).sum()) < len(ref_exits), 'every sample exits at one place'
    for max_queued in (None, batch_size // 2, 0):
        result, costs, executor = step_major(model, batches, thresholds, confidence, batch_size,
                                             max_queued)
        assert torch.equal(result.keys, torch.arange(len(ref_exits)))
        assert torch.equal(result.exits, ref_exits), max_queued
        assert torch.equal(costs, ref_costs)
        assert torch.allclose(result.logits, ref_logits, atol=ATOL, rtol=0), max_queued
        if max_queued == 0 and all(len(x) <= batch_size for x in batches):
            assert torch.equal(result.logits, ref_logits)  # the per-batch executor's batches
        assert all(n <= batch_size for sizes in executor.step_batches for n in sizes)
        assert executor.num_queued == 0
    return ref_exits


def _videos(n, shape, seed):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_toy_stream_with_remainder_and_limits():
    torch.manual_seed(0)
    model = ToyStepwise()
    x = torch.rand(27, 3, 24, 24)
    check_equal(model, list(x.split(8)), batch_size=8)
    # another batch size than the stream's batches, and a stream of unequal batches
    check_equal(model, [x[:5], x[5:6], x[6:20], x[20:]], batch_size=6)


def test_queue_never_exceeds_its_limit_and_steps_run_full_batches():
    torch.manual_seed(0)
    model = ToyStepwise().eval()
    x = torch.rand(64, 3, 24, 24)
    thresholds = [0.0, float('inf'), float('inf'), float('-inf')]  # half leave at exit 0 (below)
    with torch.no_grad():
        conf0 = model.forward_exits(x)[0].softmax(-1).amax(-1)
    thresholds[0] = float(conf0.median())
    for max_queued in (None, 5):
        executor = StepMajorExecutor(thresholds, batch_size=8, max_queued=max_queued)
        for batch in x.split(8):
            executor.submit(model, batch)
            bound = model.num_exits * 7 if max_queued is None else max_queued
            assert executor.num_queued <= bound
        if max_queued is None:  # full batches on every step until the stream ends
            assert all(n == 8 for sizes in executor.step_batches for n in sizes[:-1])
        executor.finish()
        assert executor.num_queued == 0
        assert len(executor.pop_finished().keys) == 64
    # the per-batch executor's late steps run on the survivors of one batch only
    assert EarlyExitExecutor(thresholds).run(model, x[:8]).batch_sizes[1] < 8


def test_dynamic_toy_classifier_predict_path():
    from mmdynamic.testing.toy_stepwise import DynToyStepwiseClassifier
    torch.manual_seed(0)
    model = DynToyStepwiseClassifier(num_classes=6, num_steps=3, patch_size=16)
    x = torch.randn(14, 3, 40, 40)
    exits = check_equal(model, list(x.split(4)), quantiles=(0.3, 0.7))
    # the data samples of predict (the per-batch path) have the same exits and costs
    with torch.no_grad():
        conf = model.forward_exits(x).softmax(-1).amax(-1)
    thresholds = gap_thresholds(conf, (0.3, 0.7))
    costs = model.exit_macs_for(x.shape[1:])
    model.set_exit_policy(ExitPolicy(thresholds=thresholds, exit_costs=costs,
                                     confidence='max_softmax', model=type(model).__name__,
                                     fit_split='val', ratio=1.0, expected_cost=costs[-1]))
    samples = [s for b in x.split(4) for s in model.predict(b)]
    assert [int(s.exit_index) for s in samples] == exits.tolist()
    assert all(torch.equal(s.exit_macs, exit_costs(model, x)) for s in samples)


def test_gfnet():
    from tests.test_models.test_gfnet.test_gfnet import build
    model = build(test_locations='mean')  # the stage-1 default, random locations, is not repeatable
    x = torch.randn(11, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    check_equal(model, list(x.split(4)))


@pytest.mark.parametrize('mode', ['random', 'sample'])
def test_gfnet_random_locations_refused(mode):
    """Locations drawn for a whole batch cannot be reproduced per sample by a pooled stream."""
    from tests.test_models.test_gfnet.test_gfnet import build
    model = build(test_locations=mode).eval()
    assert model.batch_dependent_steps() is not None
    executor = StepMajorExecutor([0.5] * model.num_exits, batch_size=2)
    with pytest.raises(ValueError, match=f"location mode '{mode}'.*test_locations='mean'"):
        executor.submit(*executor_view(model, torch.randn(2, 3, 64, 64)))
    assert build(test_locations='mean').eval().batch_dependent_steps() is None


def test_mgnet():
    from mmengine.registry import init_default_scope
    from tests.test_models.test_mgnet.test_mgnet import tiny_mgnet
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = tiny_mgnet()
    model.init_weights()
    x = torch.randn(11, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    check_equal(model, list(x.split(4)))


@pytest.mark.parametrize('overrides', [dict(), dict(focus_chunk=2)], ids=['chunk1', 'chunk2'])
def test_uni_adafocus(overrides):
    from tests.test_models.test_action.test_uni_adafocus import T0, build
    model = build(**overrides)
    x = _videos(7, (T0, 3, 64, 64), 5)
    check_equal(model, list(x.split(3)), confidence='max_logit', batch_size=3)


def test_uni_adafocus_three_views():
    """Multi-view videos: the step-major stream runs the view-averaging adapter as predict does."""
    from tests.test_models.test_action.test_uni_adafocus import T0, build
    model = build()
    x = _videos(5, (3 * T0, 3, 64, 64), 6)
    exits = check_equal(model, list(x.split(2)), batch_size=2, confidence='max_logit')
    # exit_costs is what predict writes (3 views: 3 x the costs of one view)
    from mmaction.structures import ActionDataSample
    costs = model.exit_macs_for((T0, 3, 64, 64))
    model.set_exit_policy(ExitPolicy(thresholds=[float('inf')] * (model.num_exits - 1) +
                                     [float('-inf')], exit_costs=costs, confidence='max_logit',
                                     model=type(model).__name__, fit_split='val', ratio=1.0,
                                     expected_cost=costs[-1]))
    out = model.predict(x[:2], [ActionDataSample() for _ in range(2)])
    assert torch.equal(out[0].exit_macs, exit_costs(model, x[:2]))
    assert torch.equal(exit_costs(model, x[:2]), 3 * torch.tensor(costs, dtype=torch.float64))
    assert len(exits) == 5
    with pytest.raises(ValueError, match='configured differently'):
        executor = StepMajorExecutor([0.5] * model.num_exits, batch_size=2)
        for batch in (x[:2], _videos(2, (T0, 3, 64, 64), 0)):  # 3 views, then 1 view
            executor.submit(*executor_view(model.eval(), batch))


def test_adafocus_v2():
    from tests.test_models.test_action.test_adafocus_v2 import T, build
    model = build()
    x = _videos(7, (T, 3, 64, 64), 5)
    check_equal(model, list(x.split(3)), batch_size=3)


def test_adafocus_v2_tsm():
    from tests.test_models.test_action.test_adafocus_v2_tsm import TG, TL, build
    model = build()
    x = _videos(7, (TG + TL, 3, 64, 64), 5)
    check_equal(model, list(x.split(3)), batch_size=3)


def test_uni_adafocus_tsm():
    from tests.test_models.test_action.test_uni_adafocus_tsm import T0, TG, build
    model = build()
    x = _videos(7, (TG + T0, 3, 64, 64), 5)
    check_equal(model, list(x.split(3)), batch_size=3)


def test_uni_adafocus_x3d():
    from tests.test_models.test_action.test_uni_adafocus_x3d import small
    model = small()
    x = _videos(5, (16, 3, 64, 64), 5)  # T_G + T_0 frames
    check_equal(model, list(x.split(2)), batch_size=2)


def test_training_batchnorm_and_bad_arguments_are_refused():
    model = ToyStepwise().train()
    executor = StepMajorExecutor([0.5] * 4, batch_size=2)
    with pytest.raises(RuntimeError, match='BatchNorm in training mode'):
        executor.submit(model, torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match='thresholds for a model with'):
        StepMajorExecutor([0.5] * 3, batch_size=2).submit(model.eval(), torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match='batch_size'):
        StepMajorExecutor([0.5], batch_size=0)
    with pytest.raises(ValueError, match='max_queued'):
        StepMajorExecutor([0.5], batch_size=2, max_queued=-1)
    other = ToyStepwise().eval()
    executor = StepMajorExecutor([float('inf')] * 3 + [float('-inf')], batch_size=4)
    executor.submit(model.eval(), torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match='same step-wise model'):
        executor.submit(other, torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match='different shapes beyond the batch'):
        executor.submit(model, torch.rand(2, 3, 28, 28))


def test_concat_and_slice_batch_invert_gather():
    tree = dict(a=torch.arange(12.).view(6, 2), b=[torch.arange(6), None], c=torch.tensor(3.),
                n=7, t=(torch.zeros(6, 0, 4), ))
    parts = [gather_batch(tree, torch.tensor(i)) for i in ([0, 1], [2], [3, 4, 5])]
    joined = concat_batch(parts)
    assert torch.equal(joined['a'], tree['a']) and torch.equal(joined['b'][0], tree['b'][0])
    assert joined['b'][1] is None and joined['n'] == 7 and joined['t'][0].shape == (6, 0, 4)
    assert torch.equal(slice_batch(tree, 2, 5)['a'], tree['a'][2:5])
    with pytest.raises(ValueError, match=r"state\['n'\] is a per-batch value"):
        concat_batch([dict(n=1), dict(n=2)])
    with pytest.raises(ValueError, match='keys'):
        concat_batch([dict(a=torch.zeros(1)), dict(b=torch.zeros(1))])
    with pytest.raises(ValueError, match=r"state\['x'\] is None in one batch"):
        concat_batch([dict(x=None), dict(x=torch.zeros(1))])
    with pytest.raises(ValueError, match='0-dim tensor that differs'):
        concat_batch([torch.tensor(1.), torch.tensor(2.)])
    with pytest.raises(TypeError, match='cannot concatenate a state of type'):
        concat_batch([object(), object()])


def test_batch_norm_in_a_wrapped_model_is_found():
    from mmdynamic.models.action.multi_view import ViewAveragedSteps
    from mmdynamic.models.utils.step_major import batch_coupled_modules

    class Wrapped(ToyStepwise):
        pass

    model = Wrapped().train()
    names = batch_coupled_modules(ViewAveragedSteps(model, 2))
    assert names == ['model.encoder.1']
    assert batch_coupled_modules(ViewAveragedSteps(model.eval(), 2)) == []
    assert isinstance(model.encoder[1], nn.BatchNorm2d)
