# Copyright (c) mmdynamic contributors. All rights reserved.
"""MGNet through the tools: demo training/testing with budgets, robustness tables, the benchmark and
the ImageNet100 annotation builder."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from ..conftest import REPO, run_tool


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    """The in-process tools build mmpretrain models and datasets: use mmpretrain's scope."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')

MGNET_DEMO = 'configs/mgnet/mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py'
FFNET_DEMO = 'configs/mgnet/ffnet-r18-w16_1xb32-30e_demo-cls.py'
PRE_MGNET_DEMO = 'configs/mgnet/mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls.py'
PRE_FFNET_DEMO = 'configs/mgnet/ffnet-r18w16-pre-112_1xb32-8e_demo-cls.py'
STAND_IN = 'configs/demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py'
ROBUSTNESS = osp.join('tools', 'analysis_tools', 'robustness_eval.py')


def demo_options(demo_root, epochs=1):
    root = osp.join(demo_root, 'cls')
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}', f'test_dataloader.dataset.data_root={root}',
            'model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
            f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


def table_rows(text, first_header_cell):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f'| {first_header_cell} |'))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    return rows


@pytest.fixture(scope='module')
def trained_mgnet(demo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp('mgnet_demo')
    run_tool(['tools/train.py', MGNET_DEMO, '--work-dir', str(work / 'train')] +
             demo_options(demo_root, epochs=1))
    ckpt = work / 'train' / 'epoch_1.pth'
    assert ckpt.is_file()
    return str(ckpt), work


def load_tool(path):
    """Import a tool as a module (its ``main(argv)`` then runs in this process: no start-up)."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0],
                                                  osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mgnet_demo_train_test_budget(trained_mgnet, demo_root):
    ckpt, work = trained_mgnet
    from mmengine.config import Config

    from mmdynamic.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, MGNET_DEMO))
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    costs = [m / 1e9 for m in MODELS.build(cfg.model).exit_macs((3, 128, 128))]
    assert all(a < b for a, b in zip(costs, costs[1:]))
    budget = f'{(costs[1] + costs[2]) / 2:.6g}'
    proc = run_tool(['tools/test.py', MGNET_DEMO, ckpt, '--work-dir', str(work / 'budget'),
                     '--budget', budget, '--fit-on', 'val'] + demo_options(demo_root))
    assert 'anytime/top1_exit4' in proc.stdout + proc.stderr
    with open(work / 'budget' / 'budget.json') as f:
        report = json.load(f)
    assert report['exit_flops'] == pytest.approx(costs, rel=1e-6)
    assert len(report['anytime']) == 4 and len(report['budgets']) == 1
    assert report['budgets'][0]['budget_gmacs'] == pytest.approx(float(budget))


def test_pretrained_demo_configs_load_the_stand_in_encoder(tmp_path):
    """The glance demo (pretrained encoder) and its equal-cost FF-Net: the stand-in classifier's
    checkpoint loads into MGNet's backbone through init_cfg (same architecture, prefix 'backbone.'),
    glimpse 1 is the whole canvas at 56 px, and the FF-Net at 112 px costs what 4 glimpses cost."""
    import torch
    from mmengine.config import Config

    from mmdynamic.registry import MODELS
    from mmdynamic.utils.stage_inputs import resolve_stage_inputs
    from mmpretrain.registry import MODELS as CLS_MODELS
    stand_in = Config.fromfile(osp.join(REPO, STAND_IN))
    teacher = CLS_MODELS.build(stand_in.model)
    ckpt = tmp_path / 'stand_in.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)

    models = {}
    for name, path in (('mgnet', PRE_MGNET_DEMO), ('ffnet', PRE_FFNET_DEMO)):
        cfg = Config.fromfile(osp.join(REPO, path))
        # by default the stand-in's last checkpoint in its default work dir
        assert cfg.stage_inputs.pretrained == (
            f'work_dirs/{osp.splitext(osp.basename(STAND_IN))[0]}/'
            f'epoch_{stand_in.train_cfg.max_epochs}.pth')
        assert cfg.train_dataloader.dataset.data_root == stand_in.data_root
        # one override reaches the encoder's init when the run resolves the config
        cfg.merge_from_dict({'stage_inputs.pretrained': str(ckpt)})
        assert resolve_stage_inputs(cfg) == {'pretrained': ['model.backbone.init_cfg.checkpoint']}
        init = cfg.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.prefix == 'backbone.'
        assert init.checkpoint == str(ckpt)
        model = MODELS.build(cfg.model)
        model.init_weights()
        for key, value in model.backbone.state_dict().items():
            assert torch.equal(value, teacher.backbone.state_dict()[key]), key
        models[name] = model
    mgnet, ffnet = models['mgnet'], models['ffnet']
    assert mgnet.num_exits == 4 and mgnet.glimpse.size == 56
    assert mgnet.localization.scale_range == (0.5, 0.5)
    mg_costs = mgnet.exit_macs((3, 128, 128))
    (ff_cost, ) = ffnet.exit_macs((3, 128, 128))
    assert mg_costs[2] < ff_cost < mg_costs[3]  # 112^2 = 4 x 56^2 pixels, one head instead of four


@pytest.mark.slow
def test_ffnet_demo_trains_and_validates(demo_root, tmp_path):
    proc = run_tool(['tools/train.py', FFNET_DEMO, '--work-dir', str(tmp_path / 'train')] +
                    demo_options(demo_root, epochs=1))
    log = proc.stdout + proc.stderr
    assert 'accuracy/top1' in log and 'anytime/top1_exit1' in log and 'top1_exit2' not in log
    assert (tmp_path / 'train' / 'epoch_1.pth').is_file()


def test_robustness_tools_on_demo_model(trained_mgnet, demo_root, capsys):
    ckpt, work = trained_mgnet
    tool = load_tool(ROBUSTNESS)
    opts = demo_options(demo_root)
    out = work / 'pgd'
    tool.main(['pgd', MGNET_DEMO, ckpt, '--work-dir', str(out), '--steps', '0', '1', '2',
               '--num-samples', '20', '--batch-size', '10'] + opts)
    rows = table_rows(capsys.readouterr().out, 'PGD steps')
    assert [r[0] for r in rows] == ['0', '1', '2'] and all(len(r) == 5 for r in rows)
    with open(out / 'robustness_pgd.json') as f:
        result = json.load(f)
    assert result['space'] == 'normalized' and result['eps'] == pytest.approx(4 / 255)
    assert result['random_start'] is False and result['num_samples'] == 20
    assert (out / 'robustness_pgd.md').read_text().count('\n|') == 5
    # the stronger preset: pixel space with a random start
    tool.main(['pgd', MGNET_DEMO, ckpt, '--work-dir', str(out), '--preset', 'strong', '--eps',
               '8/255', '--steps', '2', '--num-samples', '10', '--batch-size', '10',
               '--unscaled-gradients'] + opts)
    with open(out / 'robustness_pgd.json') as f:
        result = json.load(f)
    assert result['space'] == 'pixel' and result['random_start'] is True
    assert result['eps'] == pytest.approx(8 / 255) and result['unscaled_gradients'] is True

    # --num-samples takes samples evenly spaced over the (class-sorted) test set, not the first ones
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, MGNET_DEMO))
    cfg.test_dataloader.dataset.data_root = osp.join(demo_root, 'cls')
    full = tool.spread_subset(cfg.test_dataloader.dataset, 10**6)
    subset = tool.spread_subset(cfg.test_dataloader.dataset, 5)
    step = (len(full) - 1) / 4
    assert [subset.get_data_info(i)['img_path'] for i in range(5)] == [
        full.get_data_info(round(i * step))['img_path'] for i in range(5)]
    assert len({subset.get_data_info(i)['gt_label'] for i in range(5)}) == 5

    out = work / 'corruptions'
    tool.main(['corruptions', MGNET_DEMO, ckpt, '--work-dir', str(out), '--corruptions',
               'gaussian_noise', 'glass_blur', '--severities', '1', '5', '--num-samples', '10',
               '--batch-size', '10'] + opts)
    rows = table_rows(capsys.readouterr().out, 'exit')
    assert [r[0] for r in rows] == ['1', '2', '3', '4']
    assert all(len(r) == 5 for r in rows)  # exit, clean, Avg, Gauss, Glass
    with open(out / 'robustness_corruptions.json') as f:
        result = json.load(f)
    assert set(result['accuracy']) == {'gaussian_noise', 'glass_blur'}
    assert set(result['accuracy']['glass_blur']) == {'1', '5'}
    with pytest.raises(ValueError, match='unknown corruptions'):
        tool.main(['corruptions', MGNET_DEMO, ckpt, '--work-dir', str(out), '--corruptions',
                   'rain'] + opts)


def test_glimpse_boxes_tool(trained_mgnet, demo_root, capsys):
    import torch
    tool = load_tool(osp.join('tools', 'analysis_tools', 'mgnet_glimpse_boxes.py'))
    # geometry: 11 px image (pixel coordinates 0..10), box x 2..4 / y 6..8 (x2, y2 exclusive)
    boxes = torch.tensor([[2., 6., 5., 9.]])
    params = torch.tensor([[[1.0, 0.0, 0.0]],     # whole image
                           [[0.4, -0.6, 0.4]],    # x 0..4, y 5..9: holds it
                           [[0.4, -0.4, 0.4]],    # x 1..5
                           [[0.4, -0.2, 0.4]],    # x 2..6: holds it (left edge on the box)
                           [[0.4, 0.0, 0.4]],     # x 3..7: cuts it
                           [[0.4, -0.9, 0.4]]])   # clamped to -0.6 like the sampler: holds it
    holds = tool.glimpse_holds_box(params, boxes, 11)[:, 0].tolist()
    assert holds == [True, True, True, True, False, True]

    ckpt, work = trained_mgnet
    cfg = Config.fromfile(osp.join(REPO, MGNET_DEMO))
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.test_dataloader.dataset.data_root = osp.join(demo_root, 'cls')
    cfg_path = work / 'boxes_cfg.py'
    cfg.dump(str(cfg_path))
    result = tool.main([str(cfg_path), ckpt, '--work-dir', str(work / 'boxes')])
    rows = table_rows(capsys.readouterr().out, 'glimpse')
    assert [r[0] for r in rows] == ['1', '2', '3', '4'] and rows[0][2] == '100.00'
    assert result['num_samples'] == 20 and result['image_size'] == 128
    assert all(0 <= g['holds_object'] <= 100 for g in result['glimpses'])
    assert all(0.2 - 1e-6 <= g['mean'][0] <= 0.5 + 1e-6 for g in result['glimpses'][1:])
    assert (work / 'boxes' / 'glimpse_boxes.json').is_file()


def test_benchmark_mgnet_tiny(tmp_path, capsys):
    out = tmp_path / 'latency.md'
    load_tool(osp.join('tools', 'analysis_tools', 'benchmark_mgnet.py')).main([
        '--backbones', 'r18', '--batch-sizes', '1', '2', '--input-size', '64', '--glimpse-size',
        '32', '--num-glimpses', '2', '--width', '8', '--runs', '1', '--warmup', '0', '--device',
        'cpu', '--out', str(out)])
    stdout = capsys.readouterr().out
    assert 'vs FF-Net (64 px), CPU: ' in stdout  # the report names the device that ran
    rows = table_rows(stdout, 'backbone')
    assert [(r[1], r[2], r[3]) for r in rows] == [('FF-Net', '1', '1'), ('MGNet', '1', '1'),
                                                  ('MGNet', '2', '1'), ('FF-Net', '1', '2'),
                                                  ('MGNet', '1', '2'), ('MGNet', '2', '2')]
    for row in rows:
        assert float(row[5]) > 0 and row[6].endswith('x')
        assert float(row[9]) == pytest.approx(float(row[6][:-1]) * float(row[8]), abs=0.02)
    ff, one, two = (float(r[7]) for r in rows[:3])
    assert one < two < ff  # 2 glimpses of 32 px cost less than one 64 px pass
    assert float(rows[2][8]) == pytest.approx(two / ff, rel=0.05)  # GMACs printed rounded
    assert out.read_text().strip() in stdout


def _fake_imagenet(root, wnids, per_class=2, val_folders=True):
    img = np.zeros((8, 8, 3), np.uint8)
    for wnid in wnids:
        os.makedirs(osp.join(root, 'train', wnid))
        for i in range(per_class):
            cv2.imwrite(osp.join(root, 'train', wnid, f'{wnid}_{i}.JPEG'), img)
        if val_folders:
            os.makedirs(osp.join(root, 'val', wnid))
            cv2.imwrite(osp.join(root, 'val', wnid, f'val_{wnid}.JPEG'), img)
    os.makedirs(osp.join(root, 'val'), exist_ok=True)


def test_make_imagenet100_annotations(tmp_path):
    tool = osp.join('tools', 'dataset_converters', 'make_imagenet100.py')
    root = tmp_path / 'imagenet'
    wnids = ['n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475']
    _fake_imagenet(str(root), wnids[::-1])  # creation order must not matter
    run_tool([tool, str(root), '--num-classes', '3', '--out', str(tmp_path / 'in3')])
    classes = (tmp_path / 'in3' / 'classes.txt').read_text().split()
    assert classes == wnids[:3]
    train = (tmp_path / 'in3' / 'train.txt').read_text().splitlines()
    assert train[:2] == ['n01440764/n01440764_0.JPEG 0', 'n01440764/n01440764_1.JPEG 0']
    assert len(train) == 6 and train[-1].endswith(' 2')
    val = (tmp_path / 'in3' / 'val.txt').read_text().splitlines()
    assert val == [f'{w}/val_{w}.JPEG {i}' for i, w in enumerate(wnids[:3])]
    # the annotation files load as an mmpretrain CustomDataset
    from mmpretrain.datasets import CustomDataset
    ds = CustomDataset(data_root=str(root), ann_file=str(tmp_path / 'in3' / 'train.txt'),
                       data_prefix='train', classes=str(tmp_path / 'in3' / 'classes.txt'))
    assert len(ds) == 6 and ds.get_gt_labels().tolist() == [0, 0, 1, 1, 2, 2]
    # an explicit class list, and a bad request
    (tmp_path / 'list.txt').write_text('n01494475\nn01443537\n')
    run_tool([tool, str(root), '--class-list', str(tmp_path / 'list.txt'), '--out',
              str(tmp_path / 'in2')])
    assert (tmp_path / 'in2' / 'classes.txt').read_text().split() == ['n01443537', 'n01494475']
    proc = run_tool([tool, str(root), '--num-classes', '100'], check=False)
    assert proc.returncode != 0 and 'has 5 class folders' in proc.stderr


def test_make_imagenet100_flat_val(tmp_path):
    tool = osp.join('tools', 'dataset_converters', 'make_imagenet100.py')
    root = tmp_path / 'imagenet'
    wnids = [f'n{i:08d}' for i in range(1000)]
    for wnid in wnids[2:]:  # empty folders for the classes that are not selected
        os.makedirs(root / 'train' / wnid)
    _fake_imagenet(str(root), wnids[:2], val_folders=False)
    os.makedirs(root / 'meta')
    (root / 'meta' / 'val.txt').write_text('ILSVRC2012_val_00000001.JPEG 65\n'
                                           'ILSVRC2012_val_00000002.JPEG 1\n'
                                           'ILSVRC2012_val_00000003.JPEG 0\n')
    run_tool([tool, str(root), '--num-classes', '2', '--out', str(tmp_path / 'out')])
    assert (tmp_path / 'out' / 'val.txt').read_text().splitlines() == [
        'ILSVRC2012_val_00000002.JPEG 1', 'ILSVRC2012_val_00000003.JPEG 0']


def test_imagenet100_config_pipelines_on_fake_tree(tmp_path):
    """The ImageNet100 config reads the tool's annotation files; its train pipeline (random resized
    crop, flip, AutoAugment) and test pipeline give 224 px inputs."""
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    tool = osp.join('tools', 'dataset_converters', 'make_imagenet100.py')
    root = tmp_path / 'imagenet'
    wnids = ['n01440764', 'n01443537', 'n01484850']
    _fake_imagenet(str(root), wnids)
    for wnid in wnids:  # real-looking images, not 8 px
        img = (np.random.RandomState(0).rand(300, 260, 3) * 255).astype(np.uint8)
        cv2.imwrite(str(root / 'train' / wnid / f'{wnid}_0.JPEG'), img)
        cv2.imwrite(str(root / 'val' / wnid / f'val_{wnid}.JPEG'), img)
    run_tool([tool, str(root), '--num-classes', '3'])  # default out: <root>/meta/imagenet100
    cfg = Config.fromfile(osp.join(REPO, 'configs/mgnet/mgnet-r18-4x96_4xb64-onecycle-400e_in100.py'))
    for loader, index in ((cfg.train_dataloader, 0), (cfg.val_dataloader, 0)):
        dataset = dict(loader.dataset, data_root=str(root),
                       classes=str(root / 'meta' / 'imagenet100' / 'classes.txt'))
        ds = DATASETS.build(dataset)
        assert ds.CLASSES == tuple(wnids) and len(ds) == (6 if loader is cfg.train_dataloader else 3)
        assert ds[index]['inputs'].shape == (3, 224, 224)
