# Copyright (c) mmdynamic contributors. All rights reserved.
"""Uni-AdaFocus demo config through tools/train.py and tools/test.py --budget (real decord decoding)."""
import json
import os.path as osp

import pytest

from tests.conftest import REPO, run_tool

DEMO_CONFIG = osp.join(REPO, 'configs', 'uniadafocus',
                       'uniadafocus_mn2-r18-tiny_1xb8-30e_demo-video.py')


def _config_on(data_root: str, out_dir: str) -> str:
    """The demo config reading the videos under ``data_root``."""
    video = osp.join(data_root, 'video')
    loader = ("dict(dataset=dict(ann_file='{root}/{split}_list.txt', "
              "data_prefix=dict(video='{root}')))")
    text = '\n'.join([
        f"_base_ = ['{DEMO_CONFIG}']",
        'train_dataloader = ' + loader.format(root=video, split='train'),
        'val_dataloader = ' + loader.format(root=video, split='val'),
        'test_dataloader = val_dataloader',
        'train_cfg = dict(max_epochs=1, val_interval=1)',
        'default_hooks = dict(checkpoint=dict(interval=1))',
    ])
    path = osp.join(out_dir, 'uniadafocus_demo.py')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    return path


def test_train_then_budgeted_test_then_early_exit(demo_root, tmp_path):
    config = _config_on(demo_root, str(tmp_path))
    work = str(tmp_path / 'work')
    log = run_tool(['tools/train.py', config, '--work-dir', work]).stdout
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt), log[-3000:]

    out = str(tmp_path / 'test')
    run_tool(['tools/test.py', config, ckpt, '--work-dir', out, '--budget', '0.03', '--fit-on',
              'train', '--confidence', 'neg_entropy', '--ratios', 'uniadafocus'])
    with open(osp.join(out, 'budget.json'), encoding='utf-8') as f:
        report = json.load(f)
    costs = report['exit_flops']
    assert len(costs) == 5  # exit 0 (glance) + 4 focus steps
    assert all(b > a for a, b in zip(costs, costs[1:]))
    assert len(report['curve']) == 19  # the Uni-AdaFocus operating points
    assert all(costs[0] - 1e-9 <= c <= costs[-1] + 1e-9 for c, _ in report['curve'])
    assert report['confidence'] == 'neg_entropy' and report['fit_split'] == 'train'
    policy = osp.join(out, 'exit_policy_0.03G.json')
    assert osp.isfile(policy)

    # real early exit with the fitted policy: realised cost within the exits' range
    exit_config = osp.join(str(tmp_path), 'uniadafocus_demo_exit.py')
    with open(exit_config, 'w', encoding='utf-8') as f:
        f.write(f"_base_ = ['{config}']\nmodel = dict(exit_policy='{policy}')\n"
                "test_evaluator = dict(_delete_=True, type='AccMetric', "
                "metric_list=('top_k_accuracy', ))\n")
    out2 = str(tmp_path / 'exit')
    run_tool(['tools/test.py', exit_config, ckpt, '--work-dir', out2])
    with open(osp.join(out2, 'early_exit.json'), encoding='utf-8') as f:
        realised = json.load(f)
    assert costs[0] - 1e-6 <= realised['realised_gmacs'] <= costs[-1] + 1e-6
    assert abs(sum(realised['exit_fractions']) - 1) < 1e-6


def test_benchmark_tool_reports_every_model(tmp_path):
    out = str(tmp_path / 'bench.md')
    proc = run_tool(['tools/analysis_tools/benchmark_adafocus.py', '--image-size', '64',
                     '--patch-size', '32', '--min-box-size', '32', '--batch-sizes', '2',
                     '--runs', '1', '--warmup', '0', '--videos', '4', '--focus-chunks', '1', '4',
                     '--device', 'cpu', '--out', out])
    with open(out, encoding='utf-8') as f:
        report = f.read()
    assert report.strip() in proc.stdout
    assert report.startswith('CPU: ')  # the report names the device that ran
    rows = [line for line in report.splitlines() if line.startswith('| ') and '| 2 |' in line]
    # static pair, Uni-AdaFocus, Uni-AdaFocus with early exit (f_L on 1 and on 4 patches per call)
    assert len(rows) == 4 and 'f_L on 4 patches per call' in rows[3]
    assert 'MALLOC_MMAP_MAX_=0' in report  # restarted with the tuned allocator
    assert 'TorchScript-frozen encoders' in report  # checked against the eager ones, else it fails
    static, uni = rows[0].split('|'), rows[1].split('|')
    assert static[-2].strip() == '1.00'  # the reference
    assert float(uni[5]) < float(static[5])  # Uni-AdaFocus counts fewer GMACs per video
    # the thresholds are fitted on the timed videos (BN calibrated: their confidences differ), so
    # some of them exit early and the realised cost is below the full one
    early = rows[2].split('|')
    assert float(early[5]) < float(uni[5]) and early[6].strip() not in ('-', '0%')


def _stats_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'uniadafocus_policy_stats',
        osp.join(REPO, 'tools', 'analysis_tools', 'uniadafocus_policy_stats.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_policy_stats_geometry():
    import torch
    tool = _stats_tool()
    obj = torch.tensor([10., 20., 24., 34.])  # x1, y1, x2, y2: a 14 px object
    boxes = torch.tensor([[27., 17., 14., 14.],  # exactly the object
                          [27., 17., 14., 7.],  # its left half
                          [80., 80., 20., 20.]])  # elsewhere
    assert torch.allclose(tool.object_fraction_inside(boxes, obj), torch.tensor([1., .5, 0.]))
    # a 32 px box at a uniformly random place in a 64 px frame holds the object when its left
    # edge is in [x2 - 32, x1] = [0, 10] and its top edge in [2, 20] (of [0, 32] each)
    ref = tool.random_place_fraction(torch.tensor([[32., 32.]]), obj, (64, 64), steps=321)
    assert float(ref['covered']) == pytest.approx(10 / 32 * 18 / 32, abs=0.02)
    # a box as large as the frame always holds it
    full = tool.random_place_fraction(torch.tensor([[64., 64.]]), obj, (64, 64))
    assert float(full['covered']) == 1 and float(full['object_in_box']) == 1


def test_policy_stats_tool_on_demo_videos(demo_root, tmp_path):
    """The tool on the demo videos: a model with uniform frames puts exactly the uniform share of its
    weight on the frames with the object, and the learned-policy model's numbers are fractions."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS
    import mmdynamic.models  # noqa: F401
    config = _config_on(demo_root, str(tmp_path))
    results = {}
    for mode in ('learned', 'uniform'):
        cfg = Config.fromfile(config)
        cfg.model.temporal_mode = mode
        init_default_scope('mmaction')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        ckpt = str(tmp_path / f'{mode}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
        args = [config, ckpt, '--cfg-options', f'model.temporal_mode={mode}']
        if mode == 'learned':  # in this process
            tool = _stats_tool()
            results[mode] = tool.run(tool.parse_args(args))
            continue
        out = str(tmp_path / f'{mode}.json')
        proc = run_tool(['tools/analysis_tools/uniadafocus_policy_stats.py'] + args + ['--out', out])
        assert '| frame-weight mass on glance frames with the object |' in proc.stdout
        with open(out, encoding='utf-8') as f:
            results[mode] = json.load(f)
    uniform = results['uniform']
    assert uniform['num_videos'] == 20 and uniform['num_focus_boxes'] == 20 * 4
    assert uniform['weight_on_visible'] == pytest.approx(uniform['uniform_share'], abs=1e-9)
    assert uniform['focus_visible'] == pytest.approx(uniform['uniform_focus_visible'], abs=1e-9)
    learned = results['learned']
    for key in ('weight_on_visible', 'focus_visible', 'object_in_box', 'covered',
                'random_same_size_covered', 'random_patch_covered', 'top1_final_exit'):
        assert 0 <= learned[key] <= 1, key
    assert 24 <= learned['box_side'] <= 112  # the config's min_box_size .. frame side
