# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/test.py --throughput (StepMajorTestLoop, issue #20): the same per-sample predictions,
exits and costs, and the same metrics, as the per-batch early exit; in one and in two processes."""
import glob
import json
import math
import os.path as osp
import pickle

import pytest
import torch

from mmdynamic.evaluation.functional.budget import ExitPolicy
from ...conftest import run_tool
from ...test_downstream.test_downstream import config_with_data_root


@pytest.fixture(scope='module')
def toy_with_policy(demo_root, tmp_path_factory):
    """The toy step-wise classifier trained for 10 iterations and an exit policy fitted for a
    budget between its first two exits (most samples leave early, some run every step)."""
    tmp = tmp_path_factory.mktemp('step_major')
    base = config_with_data_root('toy_mmpretrain.py', osp.join(demo_root, 'cls'), str(tmp))
    with open(osp.join(osp.dirname(__file__), '../../data/configs/toy_stepwise_cls.py')) as f:
        text = f.read()
    config = str(tmp / 'toy_stepwise_cls.py')
    with open(config, 'w') as f:
        f.write(text.replace("'./toy_mmpretrain.py'", repr(base)))
    run_tool(['tools/train.py', config, '--work-dir', str(tmp / 'train'), '--cfg-options',
              'train_cfg.max_iters=10', 'default_hooks.checkpoint.interval=10'])
    ckpt = str(tmp / 'train' / 'iter_10.pth')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp / 'budget'), '--budget',
              '0.00055', '--fit-on', 'train'])
    policy = str(tmp / 'budget' / 'exit_policy_0.00055G.json')
    return config, ckpt, policy, tmp


def _load(work_dir, out):
    with open(osp.join(work_dir, 'metrics.json')) as f:
        metrics = json.load(f)
    with open(out, 'rb') as f:
        samples = pickle.load(f)
    return metrics, samples


def _assert_same_samples(samples, reference):
    assert len(samples) == len(reference) == 20
    for a, b in zip(samples, reference):
        assert a['img_path'] == b['img_path']  # dataset order, not the order of exiting
        assert int(a['exit_index']) == int(b['exit_index'])
        assert torch.equal(a['exit_macs'], b['exit_macs'])
        assert torch.equal(a['pred_label'], b['pred_label'])
        assert torch.allclose(a['pred_score'], b['pred_score'], atol=1e-6)


@pytest.mark.slow
def test_throughput_equals_per_batch_early_exit(toy_with_policy):
    config, ckpt, policy, tmp = toy_with_policy
    # per-batch early exit: the model's policy, the default test loop
    per_batch = str(tmp / 'per_batch')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', per_batch, '--out',
              osp.join(per_batch, 'out.pkl'), '--cfg-options', f'model.exit_policy={policy}',
              'test_dataloader.batch_size=6'])
    ref_metrics, ref_samples = _load(per_batch, osp.join(per_batch, 'out.pkl'))
    exits = {int(s['exit_index']) for s in ref_samples}
    assert len(exits) > 1, 'the policy should send samples to several exits'
    # step-major: a remainder (20 = 3 x 6 + 2), another step batch size, and a queue limit that
    # forces partial batches
    for options in ([], ['--step-batch-size', '4'], ['--max-queued', '2']):
        work = str(tmp / ('throughput' + '_'.join(options)))
        proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', work, '--exit-policy', policy,
                         '--throughput', *options, '--out', osp.join(work, 'out.pkl'),
                         '--cfg-options', 'test_dataloader.batch_size=6'])
        assert 'Step-major early exit: step 1:' in proc.stdout + proc.stderr
        metrics, samples = _load(work, osp.join(work, 'out.pkl'))
        assert metrics == pytest.approx(ref_metrics)
        assert metrics['early_exit/gmacs'] > 0 and 'early_exit/exit1_fraction' in metrics
        _assert_same_samples(samples, ref_samples)
    with open(osp.join(work, 'early_exit.json')) as f, \
            open(osp.join(per_batch, 'early_exit.json')) as g:
        realised, reference = json.load(f), json.load(g)
    assert realised['num_samples'] == reference['num_samples'] == 20
    assert realised['realised_gmacs'] == pytest.approx(reference['realised_gmacs'])
    assert realised['exit_fractions'] == pytest.approx(reference['exit_fractions'])


@pytest.mark.slow
def test_throughput_through_the_config_and_the_frameworks_test_tool(toy_with_policy):
    """mmpretrain's own tools/test.py gets the loop and the policy from the config."""
    import importlib.util
    config, ckpt, policy, tmp = toy_with_policy
    derived = tmp / 'step_major_cfg.py'
    derived.write_text(f'_base_ = [{config!r}]\n'
                       f'model = dict(exit_policy={policy!r})\n'
                       "test_cfg = dict(type='mmdynamic.StepMajorTestLoop', batch_size=4)\n")
    tool = osp.join(osp.dirname(importlib.util.find_spec('mmpretrain').origin), '.mim', 'tools',
                    'test.py')
    work = str(tmp / 'framework')
    proc = run_tool([tool, str(derived), ckpt, '--work-dir', work])
    assert 'Step-major early exit' in proc.stdout + proc.stderr
    reference = str(tmp / 'framework_ref')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', reference, '--cfg-options',
              f'model.exit_policy={policy}'])
    with open(osp.join(reference, 'metrics.json')) as f:
        top1 = json.load(f)['accuracy/top1']
    assert f'accuracy/top1: {top1:.4f}' in proc.stdout + proc.stderr


@pytest.mark.slow
def test_throughput_in_two_processes(toy_with_policy):
    from ...test_tools.test_train_tools import _free_port
    config, ckpt, policy, tmp = toy_with_policy
    work = str(tmp / 'dist')
    run_tool(['tools/dist_test.sh', config, ckpt, '2', '--work-dir', work, '--exit-policy',
              policy, '--throughput', '--out', osp.join(work, 'out.pkl'), '--cfg-options',
              'test_dataloader.batch_size=3'], env=dict(PORT=_free_port()))
    single = str(tmp / 'dist_ref')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', single, '--out',
              osp.join(single, 'out.pkl'), '--cfg-options', f'model.exit_policy={policy}'])
    metrics, samples = _load(work, osp.join(work, 'out.pkl'))
    ref_metrics, ref_samples = _load(single, osp.join(single, 'out.pkl'))
    assert metrics == pytest.approx(ref_metrics)
    # the gathered results interleave the ranks' shards: compare per image
    by_path = {s['img_path']: s for s in ref_samples}
    _assert_same_samples(samples, [by_path[s['img_path']] for s in samples])


@pytest.mark.slow
def test_throughput_errors_are_clear(toy_with_policy):
    config, ckpt, policy, tmp = toy_with_policy
    work = str(tmp / 'bad')
    cases = [
        (['--throughput'], '--throughput needs an exit policy'),
        (['--throughput', '--exit-policy', policy, '--budget', '0.0005'],
         '--throughput runs early exit with one exit policy'),
        (['--max-queued', '2'], '--step-batch-size and --max-queued need --throughput'),
    ]
    for options, message in cases:
        proc = run_tool(['tools/test.py', config, ckpt, '--work-dir', work, *options],
                        check=False)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]


def _assert_same_outputs(samples, reference, where: str = '') -> None:
    """Every field of every dumped sample equal (float tensors to 1e-6), in the dataset's order."""
    assert len(samples) == len(reference), where
    for i, (a, b) in enumerate(zip(samples, reference)):
        assert a.keys() == b.keys(), f'{where}[{i}]'
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                assert torch.allclose(x, torch.as_tensor(y), rtol=0, atol=1e-6), f'{where}[{i}].{key}'
            elif isinstance(x, torch.Tensor):
                assert torch.equal(x, torch.as_tensor(y)), f'{where}[{i}].{key}'
            else:
                assert x == y, f'{where}[{i}].{key}'


# a shipped demo config of an image and of a video family: briefly trained, thresholds fitted for
# a budget between the cheapest and the dearest exit, then per-batch against step-major early exit
DEMO_STREAMS = {
    'gfnet_stage3': ('configs/gfnet/gfnet-*_stage3_*_demo-cls.py', 'cls', 8,
                     ['model.test_locations=mean'], (3, 128, 128)),
    'adafocusv2': ('configs/uniadafocus/adafocusv2_mn2-r18-tiny_1xb8-30e_demo-video.py', 'video', 4,
                   [], (16, 3, 112, 112)),
}


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DEMO_STREAMS))
def test_throughput_on_demo_configs(name, demo_root, tmp_path):
    """``tools/test.py CONFIG CKPT --exit-policy P --throughput`` on a shipped demo config gives
    every sample the outputs, exit and MACs of the per-batch early exit, and the same metrics."""
    from .test_demo_resume_dist import _mid_budget, demo_config, find_config
    from .tool_runs import ToolRun
    pattern, task, batch, options, shape = DEMO_STREAMS[name]
    config = demo_config(find_config(pattern), str(tmp_path), demo_root, task)
    train = str(tmp_path / 'train')
    ToolRun(['tools/train.py', config, '--work-dir', train, '--no-validate', '--cfg-options',
             f'train_dataloader.dataset.indices={batch}', f'train_dataloader.batch_size={batch}',
             'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1', *options],
            tmp_path / 'train.log').wait()
    ckpt = osp.join(train, 'epoch_1.pth')
    test = ['--cfg-options', 'test_dataloader.batch_size=3', *options]
    fit = str(tmp_path / 'fit')
    budget = _mid_budget(config, shape)
    ToolRun(['tools/test.py', config, ckpt, '--work-dir', fit, '--budget', budget, '--fit-on', 'val',
             *test], tmp_path / 'fit.log').wait()
    policies = glob.glob(osp.join(fit, 'exit_policy_*G.json'))
    assert len(policies) == 1, policies
    # the thresholds are scores of the very samples tested below, whose scores float rounding moves
    # with the batch composition (CPU-dependent): off the ties (1e-5 lower), both executors must
    # take the same exits
    fitted = ExitPolicy.load(policies[0])
    fitted.thresholds = [t - 1e-5 * max(1.0, abs(t)) if math.isfinite(t) else t
                         for t in fitted.thresholds]
    policy = str(tmp_path / 'policy_off_ties.json')
    fitted.save(policy)
    runs = {}
    modes = dict(per_batch=[*test, f'model.exit_policy={policy}'],
                 step_major=['--exit-policy', policy, '--throughput', '--step-batch-size', '4', *test])
    for mode, extra in modes.items():
        work = str(tmp_path / mode)
        log = ToolRun(['tools/test.py', config, ckpt, '--work-dir', work, '--out',
                       osp.join(work, 'out.pkl'), *extra], tmp_path / f'{mode}.log').wait()
        if task == 'video':  # the video demo configs evaluate every exit (AnytimeAccuracy) too
            assert 'not evaluating' in log and 'AnytimeAccuracy' in log, log[-3000:]
        runs[mode] = _load(work, osp.join(work, 'out.pkl'))
    (metrics, samples), (ref_metrics, ref_samples) = runs['step_major'], runs['per_batch']
    assert len({int(s['exit_index']) for s in ref_samples}) > 1, 'a policy with one exit used'
    assert metrics == pytest.approx(ref_metrics)
    _assert_same_outputs(samples, ref_samples, name)
