# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/misc/check_released_layouts.py: every released official layout (random values, full size)
converts, loads strictly and runs through tools/test.py on the demo data."""
import importlib.util
import json
import os
import os.path as osp
from collections import Counter

import pytest

from ..conftest import REPO, run_tool

TOOL = 'tools/misc/check_released_layouts.py'


@pytest.fixture(scope='module')
def check():
    spec = importlib.util.spec_from_file_location('check_released_layouts', osp.join(REPO, TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_released_settings(check):
    """The settings of issue #17: GFNet's 14 released models, MGNet + FF-Net R18, Uni-AdaFocus
    MN2+R50 x 3 / TSM x 2 / X3D, AdaFocusV2 x 2 / TSM x 2, SAR ImageNet + CIFAR; every config
    exists and every writer is a function of the script."""
    methods = Counter(s.method for s in check.SETTINGS)
    assert methods == {'gfnet': 14, 'mgnet': 2, 'uniadafocus': 6, 'adafocusv2': 4, 'sar': 2}
    assert len(check.BY_NAME) == len(check.SETTINGS) == 28
    for s in check.SETTINGS:
        assert osp.isfile(osp.join(REPO, s.config)), s.config
        assert callable(getattr(check, s.writer)), s.writer
        assert s.data in ('cls', 'video')
    assert {s.filename for s in check.SETTINGS if s.method != 'gfnet'} >= {
        'sthv1_p128_8and12.pth.tar', 'jester_p128_8and12.pth.tar',
        'kinetics400_p128_16and32.pth.tar', 'actnet_p128_mbv2.pth.tar', 'actnet_p128_res50.pth.tar',
        'sthv1_p128.pth.tar', 'jester_p128.pth.tar'}


def test_demo_data_config_swaps_only_the_data(check, tmp_path):
    """Video: the config's own frame sampler and resize / crop, decoded from the demo mp4s; the
    model and evaluator are the released config's."""
    from mmengine.config import Config
    config = 'configs/uniadafocus/uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb.py'
    path = tmp_path / 'demo.py'
    path.write_text(check.demo_data_config(config, '/demo', 'video'))
    cfg, base = Config.fromfile(str(path)), Config.fromfile(osp.join(REPO, config))
    dataset = cfg.test_dataloader.dataset
    assert dataset.type == 'VideoDataset' and dataset.ann_file == '/demo/video/val_list.txt'
    assert 'split' not in dataset and 'data_root' not in dataset
    types = [step['type'] for step in dataset.pipeline]
    assert types == ['DecordInit', 'SampleGlanceAndFocusFrames', 'DecordDecode', 'PillowResize',
                     'TSNCenterCrop', 'FormatShape', 'PackActionInputs']
    assert dataset.pipeline[1] == base.test_dataloader.dataset.pipeline[0]
    assert cfg.model == base.model and cfg.test_evaluator == base.test_evaluator
    # ActivityNet's mAP needs one-hot labels: the config's label format is kept
    path.write_text(check.demo_data_config(
        'configs/uniadafocus/adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py', '/demo', 'video'))
    dataset = Config.fromfile(str(path)).test_dataloader.dataset
    assert dataset.multi_class is True and dataset.num_classes == 200
    # CIFAR's in-memory pipeline: the demo images are loaded and resized to 32 px
    path.write_text(check.demo_data_config(
        'configs/sar/sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py', '/demo', 'cls'))
    cfg = Config.fromfile(str(path))
    assert [s['type'] for s in cfg.test_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'Resize', 'PackInputs']
    assert cfg.test_dataloader.dataset.data_root == '/demo/cls'


def test_sar_cifar_end_to_end(demo_root, tmp_path):
    """The cheapest released setting through the script: the official SAR-ResNet-32 CIFAR-100 file
    is written, converted (config picked from its ``hyper_set``), loaded strictly and evaluated by
    tools/test.py on 4 demo images; the table and the JSON rows say so."""
    out = tmp_path / 'rows.json'
    proc = run_tool([TOOL, '--only', 'sar_cifar100_r32', '--work-dir', str(tmp_path / 'work'),
                     '--demo-root', demo_root, '--num-samples', '4', '--json-out', str(out)])
    assert '| sar_cifar100_r32 | `sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py` | 464 | OK |' \
        in proc.stdout
    (row, ) = json.loads(out.read_text())
    assert row['ok'] and row['strict'] and row['keys'] == 464 and not row['error']
    assert row['metric'].startswith('top1 ')
    work = tmp_path / 'work' / 'sar_cifar100_r32'
    assert 'tensors of sar_resnet32_cifar100_checkpoint.pth.tar converted' in \
        (work / 'convert.log').read_text()
    # the (full-size) official and converted files are removed once checked; the logs stay
    assert not (work / 'sar_resnet32_cifar100_checkpoint.pth.tar').exists()
    assert not (work / 'converted.pth').exists()
    assert json.loads((work / 'metrics.json').read_text())['accuracy/top1'] >= 0
    assert 'Epoch(test) [2/2]' in (work / 'test.log').read_text()  # 4 images, batches of 2


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('MMDYNAMIC_RUN_RELEASED') != '1',
                    reason='set MMDYNAMIC_RUN_RELEASED=1 to run every released setting')
def test_every_released_setting(demo_root, tmp_path):
    """Every released setting (28 full-size models: about 15 to 60 s each on a 2-core CPU, far too
    slow for CI, hence ``slow`` AND skipped unless ``MMDYNAMIC_RUN_RELEASED=1``)."""
    out = tmp_path / 'rows.json'
    proc = run_tool([TOOL, '--work-dir', str(tmp_path / 'work'), '--demo-root', demo_root,
                     '--json-out', str(out)], check=False, timeout=3 * 3600)
    rows = json.loads(out.read_text())
    assert len(rows) == 28
    failed = [(r['name'], r['error']) for r in rows if not r['ok']]
    assert not failed and proc.returncode == 0, failed
