# Copyright (c) mmdynamic contributors. All rights reserved.
import copy

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
import mmdynamic.testing  # noqa: F401
from mmdynamic.evaluation import ExitPolicy
from mmdynamic.models.utils import EarlyExitExecutor

T0, TG, TL, NUM_CLASSES = 12, 4, 3, 5

TINY = dict(
    type='UniAdaFocus',
    backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=4, return_tuple=False),
    local_backbone=dict(type='DynToyBackbone', base_channels=4, num_stages=3, out_indices=(2, ),
                        return_tuple=False),
    num_classes=NUM_CLASSES, global_channels=32, local_channels=16, feature_size=4,
    num_candidates=T0, num_glance=TG, num_focus=TL, patch_size=24, min_box_size=16,
    spatial_hidden=8, temporal_hidden=8, fusion_hidden=16, num_mc_samples=16)


def build(**overrides):
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def samples(labels):
    return [ActionDataSample().set_gt_label(int(y)) for y in labels]


def videos(batch=4, seed=0):
    return torch.randn(batch, T0, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_loss_terms_and_backward():
    model = build()
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_global', 'loss_local', 'loss_spatial',
                           'loss_temporal', 'loss_size', 'acc_final'}
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    for name in ('backbone', 'local_backbone', 'fusion_head', 'spatial_policy', 'temporal_policy',
                 'fc_global', 'fc_local', 'fc_aux'):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def _grads(module):
    return [p.grad for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0]


def test_stop_gradient_policy_gets_nothing_from_local_path():
    """The encoder/classifier loss trains f_G, f_L, f_C but never the policy (spec §8.1)."""
    model = build()
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    (losses['loss_cls'] + losses['loss_local'] + losses['loss_global']).backward()
    assert not _grads(model.spatial_policy) and not _grads(model.temporal_policy)
    assert _grads(model.local_backbone) and _grads(model.backbone)


def test_policy_losses_train_only_the_policy():
    model = build()
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    (losses['loss_spatial'] + losses['loss_size']).backward(retain_graph=True)
    assert _grads(model.spatial_policy) and not _grads(model.temporal_policy)
    assert not _grads(model.backbone)  # stop-gradient on the policy's input
    model.zero_grad(set_to_none=True)
    losses['loss_temporal'].backward()
    assert _grads(model.temporal_policy) and not _grads(model.spatial_policy)
    assert not _grads(model.backbone) and not _grads(model.fc_global)


def test_temporal_grad_to_global_switch_and_mixture_form():
    model = build(temporal_grad_to_global=True, temporal_loss='ce_of_mixture')
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    losses['loss_temporal'].backward()
    assert _grads(model.temporal_policy) and _grads(model.backbone) and _grads(model.fc_global)


def test_random_patch_branch_switch():
    model = build(random_patch_branch=False)
    calls = []
    model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    model.train()
    model(videos(2), samples([0, 1]), mode='loss')
    assert calls == [2 * TL]
    for joint, expected in ((True, [4 * TL]), (False, [2 * TL, 2 * TL])):
        model = build(joint_local_batch=joint)
        calls = []
        model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
        model.train()
        model(videos(2), samples([0, 1]), mode='loss')
        # policy and random patches in one f_L batch (official), or one pass each
        assert calls == expected


def _capture_focus_plan(model, monkeypatch, random_boxes_value):
    """Record the focus plan of the next forward and inject the random boxes of the diversity branch."""
    from mmdynamic.models.action import uni_adafocus
    plans = []
    plan_focus = model.plan_focus

    def recording_plan(*args, **kwargs):
        plans.append(plan_focus(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(model, 'plan_focus', recording_plan)
    monkeypatch.setattr(uni_adafocus, 'random_boxes',
                        lambda shape, *a, **k: random_boxes_value[:, :shape[1]].clone())
    return plans


def _bn_stats(module):
    return [t.clone() for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize('joint', [True, False])
def test_local_encoder_runs_once_on_both_branches_with_joint_batch_statistics(joint, monkeypatch):
    """Item 3 of issue 16: in training f_L reads the policy patches and the random patches as ONE
    batch of 2 B T_L patches (official: BatchNorm normalises with, and updates its running statistics
    from, their joint statistics); ``joint_local_batch=False`` keeps one pass per branch. Compared with
    a hand-made pass of f_L on the same patches (random boxes injected)."""
    from mmdynamic.models.utils import crop_boxes
    x = videos(2)
    model = build(dropout=0.0, joint_local_batch=joint)
    model.train()
    reference = copy.deepcopy(model.local_backbone)
    before = _bn_stats(model.local_backbone)
    gen = torch.Generator().manual_seed(3)
    random = torch.tensor([[20.0, 30.0, 24.0, 24.0], [40.0, 44.0, 24.0, 24.0],
                           [12.0, 50.0, 24.0, 24.0]]).expand(2, TL, 4)
    plans = _capture_focus_plan(model, monkeypatch, random)
    losses = model(x, samples([0, 1]), mode='loss', generator=gen)
    (index, boxes), = plans

    def patches(b):
        frames = torch.stack([x[v, index[v]] for v in range(2)]).flatten(0, 1)
        return crop_boxes(frames, b.reshape(-1, 4), 24)

    policy, rand = patches(boxes), patches(random)
    joint_ref = copy.deepcopy(reference)
    feats = joint_ref(torch.cat([policy, rand])).mean(dim=(-2, -1)).view(2, 2, TL, -1)
    split_ref = copy.deepcopy(reference)
    split_ref(policy)
    split_ref(rand)
    joint_stats, split_stats, stats = _bn_stats(joint_ref), _bn_stats(split_ref), \
        _bn_stats(model.local_backbone)
    assert not all(torch.equal(a, b) for a, b in zip(stats, before))
    expected, other = (joint_stats, split_stats) if joint else (split_stats, joint_stats)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(stats, expected))
    assert max((a - b).abs().max() for a, b in zip(stats, other)) > 1e-4
    if joint:  # the losses are those of the joint pass
        labels = torch.tensor([0, 1])
        ce = [torch.nn.functional.cross_entropy(model.fc_local(f).flatten(0, 1),
                                                labels.repeat_interleave(TL)) for f in feats]
        assert torch.allclose(losses['loss_local'], (ce[0] + ce[1]) / 2, atol=1e-6)


def test_stepwise_equals_batched_and_predict_fields():
    model = build().eval()
    x = videos()
    with torch.no_grad():
        steps = model.forward_steps(x)['steps']
        exits = model.forward_exits(x)
    assert steps.shape == (4, TG + TL, NUM_CLASSES)
    assert model.num_exits == TL + 1 and exits.shape == (TL + 1, 4, NUM_CLASSES)
    assert torch.allclose(exits, steps[:, TG - 1:].transpose(0, 1), atol=1e-5)
    out = model(x, samples([0, 1, 2, 3]), mode='predict')
    assert out[0].exit_logits.shape == (TL + 1, NUM_CLASSES)
    assert torch.allclose(out[0].pred_score, steps[0, -1].softmax(-1), atol=1e-5)
    macs = out[0].exit_macs
    assert macs.shape == (TL + 1, ) and (macs[1:] > macs[:-1]).all()
    # test-time frame choice is deterministic
    with torch.no_grad():
        again = model.forward_steps(x)
    assert torch.equal(again['steps'], steps)


def test_early_exit_executor_equals_run_all_then_pick_and_skips_local_encoder():
    model = build().eval()
    x = videos(8, seed=3)
    with torch.no_grad():
        exits = model.forward_exits(x)  # (K, B, C)
    from mmdynamic.models.utils import neg_entropy
    scores = neg_entropy(exits)
    thresholds = scores.median(dim=1).values.tolist()
    thresholds[-1] = -float('inf')
    calls = []
    hook = model.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    result = EarlyExitExecutor(thresholds, 'neg_entropy').run(model, x)
    hook.remove()
    # reference: every step for every video, then the first exit whose score passes
    passed = scores >= torch.tensor(thresholds)[:, None]
    first = passed.float().argmax(dim=0)
    assert torch.equal(result.exits, first)
    picked = exits[first, torch.arange(8)]
    assert torch.allclose(result.logits, picked, atol=1e-5)
    # f_L runs once per focus step on the survivors only
    alive = [(first >= k).sum().item() for k in range(1, TL + 1)]
    assert calls == [a for a in alive if a > 0]
    assert sum(calls) < 8 * TL


def test_exit_macs_counted_once_per_repeated_step_equals_counting_every_step():
    model = build()
    shape = (T0, 3, 64, 64)
    fast = model.exit_macs(shape)
    model.repeated_steps_from = None
    assert model.exit_macs(shape) == fast
    assert model.training  # restored


def test_predict_with_exit_policy():
    model = build().eval()
    x = videos(4)
    costs = model.exit_macs_for(x.shape[1:])
    policy = ExitPolicy(thresholds=[float('inf')] * TL + [-float('inf')], exit_costs=costs,
                        confidence='max_logit', model='UniAdaFocus', fit_split='train',
                        ratio=0.5, expected_cost=costs[-1])
    model.set_exit_policy(policy.to_dict())
    out = model(x, samples([0, 1, 2, 3]), mode='predict')
    assert all(int(s.exit_index) == TL for s in out)
    policy.thresholds = [-float('inf')] * (TL + 1)
    model.set_exit_policy(policy)
    out = model(x, samples([0, 1, 2, 3]), mode='predict')
    assert all(int(s.exit_index) == 0 for s in out)
    with pytest.raises(ValueError, match='exits'):
        model.set_exit_policy(dict(policy.to_dict(), thresholds=[0.0, 0.0]))


def test_bad_configs_raise():
    with pytest.raises(ValueError, match='multiple'):
        build(num_candidates=10)
    with pytest.raises(ValueError, match='num_focus'):
        build(num_focus=13)
    with pytest.raises(ValueError, match='temporal_loss'):
        build(temporal_loss='reinforce')
    model = build()
    with pytest.raises(ValueError, match='T_0'):
        model.forward_steps(torch.zeros(1, 8, 3, 64, 64))
    with pytest.raises(ValueError, match='feature_size'):
        build(feature_size=5).forward_steps(videos(1))


def test_multi_hot_labels_train_on_first_positive():
    from mmdynamic.models.action.uni_adafocus import first_labels
    multi = ActionDataSample().set_gt_label(torch.tensor([0, 0, 1, 0, 1]))
    single = ActionDataSample().set_gt_label(3)
    assert first_labels([multi, single], 'cpu').tolist() == [2, 3]


def test_thresholds_fitted_on_train_outputs_meet_the_budget_with_real_skipping():
    """Thresholds from the budget solver on 'training' outputs (neg. entropy) drive the executor:
    the realised exits are those the solver assigns, and the realised cost is that of the exits."""
    from mmdynamic.evaluation.functional.budget import BudgetSolver, assign_exits
    model = build().eval()
    train, val = videos(16, seed=5), videos(8, seed=6)
    costs = model.exit_macs_for(train.shape[1:])
    with torch.no_grad():
        solver = BudgetSolver(model.forward_exits(train), costs, 'neg_entropy',
                              model='UniAdaFocus', fit_split='train')
        val_exits = model.forward_exits(val)
    budget = (costs[0] + costs[-1]) / 2
    policy = solver.policy_for_budget(budget)
    assert abs(policy.expected_cost - budget) < 0.25 * (costs[-1] - costs[0])
    model.set_exit_policy(policy)
    out = model(val, samples(range(8)), mode='predict')
    realised = torch.tensor([int(s.exit_index) for s in out])
    expected = assign_exits(solver.scores_of(val_exits), torch.tensor(policy.thresholds))
    assert torch.equal(realised, expected)
    assert len(set(realised.tolist())) > 1  # some exit early, some later


def test_baselines_without_learned_policies():
    """Table 9 baselines: random / central P x P patches, uniformly spread frames; no policy modules,
    no policy losses, and the equal-cost comparison has the same f_L work."""
    model = build(spatial_mode='random', temporal_mode='uniform')
    assert model.spatial_policy is None and model.temporal_policy is None and model.fc_aux is None
    model.train()
    losses = model(videos(), samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_global', 'loss_local', 'acc_final'}
    model.eval()
    with torch.no_grad():
        out = model.forward_steps(videos())
    # uniform weights: the centred quantile levels spread the frames evenly
    assert out['focus_index'][0].tolist() == [2, 6, 10]
    assert (out['boxes'][..., 2:] == 24).all()  # fixed P x P patches
    centre = build(spatial_mode='centre').eval()
    with torch.no_grad():
        boxes = centre.forward_steps(videos())['boxes']
    assert torch.allclose(boxes, torch.tensor([32., 32., 24., 24.]).expand_as(boxes))
    learned = build()
    assert model.exit_macs((T0, 3, 64, 64))[-1] < learned.exit_macs((T0, 3, 64, 64))[-1]
    with pytest.raises(ValueError, match='spatial_mode'):
        build(spatial_mode='gaussian')


def test_early_exit_carries_the_videos_only_while_read():
    """predict's early exit (videos in the state until the focus plan, then only the patches) decides
    and predicts as the executor on the model itself, which gathers the videos at every step."""
    from mmdynamic.models.action.uni_adafocus import InputsInState
    model = build().eval()
    x = videos(6)
    with torch.no_grad():
        conf = model.forward_exits(x).softmax(-1).amax(-1)  # (K, B)
    thresholds = conf.median(dim=1).values.tolist()[:-1] + [-float('inf')]
    executor = EarlyExitExecutor(thresholds, 'max_softmax')
    direct = executor.run(model, x)
    light = model.early_exit(x, executor)
    assert torch.equal(direct.exits, light.exits) and len(set(direct.exits.tolist())) > 1
    assert torch.allclose(direct.logits, light.logits, atol=1e-5)
    wrapper = InputsInState(model, x, model.last_input_step)
    state = wrapper.init_state(x.new_empty(6, 0))
    with torch.no_grad():
        _, state = wrapper.step(0, None, state)
        assert state['inputs'] is x
        _, state = wrapper.step(1, None, state)
    assert 'inputs' not in state and state['inner']['patches'].shape == (6, TL, 3, 24, 24)


@pytest.mark.parametrize('chunk', [2, TL])
def test_focus_chunks_same_predictions_and_costs_include_the_work_done_ahead(chunk):
    """With focus_chunk = c the step-wise path encodes c patches per f_L call: exits and logits are
    those of c = 1, and the cost of exit k counts the ceil(k / c) * c patches encoded by then."""
    single, chunked = build().eval(), build(focus_chunk=chunk).eval()
    x = videos(8, seed=3)
    with torch.no_grad():
        conf = single.forward_exits(x).softmax(-1).amax(-1)  # (K, B)
    thresholds = conf.median(dim=1).values.tolist()[:-1] + [-float('inf')]
    executor = EarlyExitExecutor(thresholds, 'max_softmax')
    calls = []
    hook = chunked.local_backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with torch.no_grad():
        reference, result = single.early_exit(x, executor), chunked.early_exit(x, executor)
    hook.remove()
    assert torch.equal(reference.exits, result.exits) and len(set(result.exits.tolist())) > 1
    assert torch.allclose(reference.logits, result.logits, atol=1e-5)
    # f_L runs at the first step of every chunk, on the survivors' next min(c, left) patches
    first = result.exits
    expected = []
    for k in range(1, TL + 1, chunk):
        alive = int((first >= k).sum())
        if alive:
            expected.append(alive * min(chunk, TL - k + 1))
    assert calls == expected
    shape = (T0, 3, 64, 64)
    exact, realised = single.exit_macs(shape), chunked.exit_macs(shape)
    per_step = exact[2] - exact[1]  # one f_L patch and one focus head
    head = realised[2] - realised[1]  # a step whose patch is ready: the head only
    patch = per_step - head
    assert patch > 0 and realised[0] == exact[0]
    for k in range(1, TL + 1):
        encoded = min(-(-k // chunk) * chunk, TL)
        assert realised[k] == exact[k] + (encoded - k) * patch
    assert realised[-1] == exact[-1]


def test_focus_chunk_must_be_a_positive_int():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='focus_chunk'):
            build(focus_chunk=bad)


def test_gather_frames_picks_each_videos_frames_contiguous_or_not():
    from mmdynamic.models.action.uni_adafocus import gather_frames
    videos = torch.randn(3, 7, 2, 4, 5)
    index = torch.tensor([[0, 6], [3, 3], [5, 1]])
    expected = torch.stack([videos[b, index[b]] for b in range(3)])
    assert torch.equal(gather_frames(videos, index), expected)
    tail = videos[:, 2:]  # a non-contiguous view (the X3D model's focus clip)
    assert not tail.is_contiguous()
    assert torch.equal(gather_frames(tail, index.clamp(max=4)),
                       torch.stack([tail[b, index[b].clamp(max=4)] for b in range(3)]))
    # gradients reach the selected frames only
    leaf = videos.clone().requires_grad_()
    gather_frames(leaf, index).sum().backward()
    assert leaf.grad[0, 0].eq(1).all() and leaf.grad[0, 1].eq(0).all() and leaf.grad[1, 3].eq(2).all()


def test_eval_glance_frames_are_the_second_of_each_group():
    """Item 4 of issue 16: at test the official MN2 + R50 code glances at ``arange(T_0)[1::T_0 // T_G]``
    (index 1 of each group), which differs from the middle of a group of 4 or more candidates;
    ``glance_test_offset='middle'`` keeps the middle one."""
    x = torch.randn(2, 16, 3, 64, 64)
    official = build(num_candidates=16, num_glance=4).eval()
    with torch.no_grad():
        index = official.glance_features(x)['index']
    assert index.tolist() == [torch.arange(16)[1::4].tolist()] * 2 == [[1, 5, 9, 13]] * 2
    middle = build(num_candidates=16, num_glance=4, glance_test_offset='middle').eval()
    with torch.no_grad():
        assert middle.glance_features(x)['index'].tolist() == [[2, 6, 10, 14]] * 2
    with pytest.raises(ValueError, match='test_offset'):
        build(glance_test_offset='first')


def test_training_draws_come_from_the_generator():
    """Item 5 of issue 16: every random draw of a training forward (glance members, quantile levels,
    random boxes, Monte-Carlo draws) comes from the generator passed to ``loss``: the same seed gives
    the same losses whatever the global RNG, and the global RNG is left untouched (dropout 0)."""
    model = build(dropout=0.0)
    model.train()
    x, data = videos(), samples([0, 1, 2, 3])

    def run(seed, global_seed):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        losses = copy.deepcopy(model)(x, data, mode='loss',
                                      generator=torch.Generator().manual_seed(seed))
        assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the global RNG
        return losses

    first, again, other = run(7, 0), run(7, 1), run(8, 0)
    assert all(torch.equal(first[k], again[k]) for k in first)
    for key in ('loss_cls', 'loss_local', 'loss_temporal', 'loss_global'):
        assert not torch.equal(first[key], other[key]), key
    # the baselines' random boxes and uniform frames too
    baseline = build(dropout=0.0, spatial_mode='random', temporal_mode='uniform').train()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    baseline(x, data, mode='loss', generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)


def test_generator_reaches_every_helper(monkeypatch):
    """The generator passed to ``loss`` is the one every sampling helper receives (no generator is
    stored on the module)."""
    from mmdynamic.models.action import uni_adafocus
    seen = {}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen.setdefault(name, []).append(kwargs.get('generator'))
            return fn(*args, **kwargs)
        monkeypatch.setattr(uni_adafocus, name, wrapped)

    for name in ('glance_frame_indices', 'quantile_frame_indices', 'random_boxes',
                 'temporal_policy_loss'):
        spy(name, getattr(uni_adafocus, name))
    model = build().train()
    gen = torch.Generator().manual_seed(0)
    model(videos(), samples([0, 1, 2, 3]), mode='loss', generator=gen)
    assert set(seen) == {'glance_frame_indices', 'quantile_frame_indices', 'random_boxes',
                         'temporal_policy_loss'}
    assert all(g is gen for calls in seen.values() for g in calls)
    assert not any(isinstance(v, torch.Generator) for v in vars(model).values())


def test_temporal_loss_draws_are_independent_per_depth_by_default():
    """Item 5 of issue 16: the model's temporal loss is the official Monte-Carlo estimate with a fresh
    draw per depth (same generator seed -> the same value as the official loop written here); the
    nested prefixes stay an option."""
    model = build(dropout=0.0, temporal_loss='ce_of_mixture', num_mc_samples=8)
    assert model.mc_draw_mode == 'independent' and model.num_mc_draws == 1
    model = build(dropout=0.0, temporal_loss='ce_of_mixture', num_mc_samples=8, num_mc_draws=3)
    model.train()
    out = model.forward_steps(videos(), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3])
    logits = model.fc_global(out['feats']).detach()
    weights = out['frame_weights']
    losses = model.policy_losses(out, labels, (64, 64), torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    flat = weights.detach().repeat_interleave(8, dim=0)
    mixed = 0
    for depth in range(3):
        kept = flat.clone()
        if depth:
            kept = kept.scatter(1, torch.multinomial(flat, depth, generator=gen), 0.0)
        mixed = mixed + (kept.view(4, 8, TG, 1) * logits[:, None]).sum(2) / \
            kept.view(4, 8, TG, 1).sum(2)
    official = torch.nn.functional.cross_entropy((mixed / 3).mean(1), labels)
    assert torch.allclose(losses['loss_temporal'], official, atol=1e-6)
    nested = build(dropout=0.0, temporal_loss='ce_of_mixture', num_mc_samples=8, num_mc_draws=3,
                   mc_draw_mode='nested').train()
    nested.load_state_dict(model.state_dict())
    other = nested.policy_losses(out, labels, (64, 64), torch.Generator().manual_seed(5))
    assert not torch.allclose(other['loss_temporal'], official, atol=1e-6)
    with pytest.raises(ValueError, match='mc_draw_mode'):
        build(mc_draw_mode='shared')


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_spatial_loss_box_on_the_7x7_map_is_official(dtype):
    """The MN2 + R50 spatial-loss crop: P // 32 cells a side on the 7 x 7 map, box side
    (P // 32) (96 + 128 a) / P cells, top-left a (7 - side), official theta -> affine_grid ->
    grid_sample, one box per glance frame; the pooled features equal the official op sequence."""
    import torch.nn.functional as F
    model = build()
    model.patch_size, model.min_box_size = 128, 96.0
    model.fc_aux = torch.nn.Identity()
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(2, TG, 32, 7, 7, generator=gen, dtype=dtype)
    actions = torch.rand(2, TG, 4, generator=gen, dtype=dtype)
    actions[0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=dtype)  # small box at the corner
    ours = model.spatial_aux_logits(maps, actions, (224, 224))
    flat = actions.reshape(-1, 4)
    out = 128 // 32
    scale = flat[:, 2:4] * (224 - 96) / 128 + 96 / 128
    coord = flat[:, :2] * (7 - out * scale)
    x1, x2 = coord[:, 1], coord[:, 1] + out * scale[:, 1]
    y1, y2 = coord[:, 0], coord[:, 0] + out * scale[:, 0]
    theta = torch.zeros(flat.shape[0], 2, 3, dtype=dtype)
    theta[:, 0, 0], theta[:, 1, 1] = out * scale[:, 1] / 7, out * scale[:, 0] / 7
    theta[:, 0, 2], theta[:, 1, 2] = -1 + (x1 + x2) / 7, -1 + (y1 + y2) / 7
    grid = F.affine_grid(theta, [flat.shape[0], 32, out, out], align_corners=False)
    crops = F.grid_sample(maps.flatten(0, 1), grid, align_corners=False)
    official = crops.view(2, TG, 32, out, out).mean(dim=(1, 3, 4))
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert (ours - official).abs().max() < tol
