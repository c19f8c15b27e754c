# Copyright (c) mmdynamic contributors. All rights reserved.
"""Each framework's own train tool runs a config (framework default scope + ``custom_imports``) with an
mmdynamic component; our ``tools/test.py`` then evaluates the checkpoint with the framework's metric."""
import importlib.util
import json
import os.path as osp
import re

import pytest

from ..conftest import TEST_CONFIGS, run_tool

CASES = {
    # framework: (config, demo task, metric key written by tools/test.py)
    'mmpretrain': ('toy_mmpretrain.py', 'cls', 'accuracy/top1'),
    'mmdet': ('toy_mmdet.py', 'det', 'coco/bbox_mAP'),
    'mmseg': ('toy_mmseg.py', 'seg', 'mIoU'),
    'mmaction': ('toy_mmaction.py', 'video', 'acc/top1'),
}


def config_with_data_root(name: str, data_root: str, out_dir: str) -> str:
    """Copy a test config with its ``data_root`` pointing at ``data_root``."""
    with open(osp.join(TEST_CONFIGS, name), encoding='utf-8') as f:
        text = f.read()
    sep = '/' if re.search(r"^data_root = '.*/'$", text, flags=re.M) else ''
    text = re.sub(r"^data_root = '.*'$", f"data_root = '{data_root}{sep}'", text, flags=re.M)
    path = osp.join(out_dir, name)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('framework', sorted(CASES))
def test_framework_train_tool_with_mmdynamic_component(framework, demo_root, tmp_path):
    config_name, task, metric = CASES[framework]
    config = config_with_data_root(config_name, osp.join(demo_root, task), str(tmp_path))
    tool = osp.join(osp.dirname(importlib.util.find_spec(framework).origin), '.mim', 'tools',
                    'train.py')
    work_dir = str(tmp_path / 'work')
    proc = run_tool([tool, config, '--work-dir', work_dir])
    log = proc.stdout + proc.stderr
    assert 'DynToyBackbone' in log  # the model printed at start-up
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt), log[-3000:]
    # evaluate the framework's checkpoint with our test tool (weights_only-safe loading)
    run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'eval')])
    with open(tmp_path / 'eval' / 'metrics.json', encoding='utf-8') as f:
        metrics = json.load(f)
    assert metric in metrics, metrics
    assert 0.0 <= metrics[metric] <= 100.0
