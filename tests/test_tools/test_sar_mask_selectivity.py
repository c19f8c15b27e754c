# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/sar_mask_selectivity.py on the SAR classification demo: the model it measures
sees the same (normalised) inputs as in tools/test.py, and the per-stage rates are those of the masks."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from ..conftest import REPO, run_tool

SCRIPT = osp.join('tools', 'analysis_tools', 'sar_mask_selectivity.py')
CONFIG = osp.join('configs', 'sar', 'sar-r50-g2s2a2b1-w16_1xb32-12e_demo-cls.py')


def test_selectivity_tool_measures_the_test_time_masks(demo_root, tmp_path):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmdynamic.models  # noqa: F401
    from mmdynamic.utils.run_config import build_model
    root = osp.join(demo_root, 'cls')
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    cfg.merge_from_dict({o.split('=')[0]: o.split('=')[1] for o in options})
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = build_model(cfg)
    # the config keeps its data preprocessor at the top level (mmpretrain style): it must be used
    assert torch.allclose(model.data_preprocessor.mean.flatten(),
                          torch.tensor(cfg.data_preprocessor.mean))
    ckpt = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    # the masks of the model's own test step on the first batch (as tools/test.py runs it)
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    with torch.no_grad():
        model.test_step(batch)
    masks = model.backbone.last_masks
    sizes = [len(stage.masks) for stage in model.backbone.stages]
    expected = [torch.cat([m.flatten() for m in masks[sum(sizes[:i]):sum(sizes[:i + 1])]]).mean()
                for i in range(len(sizes))]

    out = tmp_path / 'selectivity.json'
    proc = run_tool([SCRIPT, CONFIG, ckpt, '--boxes', osp.join(root, 'val_boxes.json'),
                     '--max-batches', '1', '--out', str(out), '--cfg-options', *options], cwd=REPO)
    assert 'overall: refined' in proc.stdout
    result = json.loads(out.read_text())
    # the density it measured: the mean of each mask (fixed grid), per stage and over all masks
    per_mask = [m.float().mean().item() for m in masks]
    assert result['num_images'] == len(batch['inputs'])
    assert result['densities'] == pytest.approx(per_mask, abs=1e-6)
    assert result['overall']['density'] == pytest.approx(sum(per_mask) / len(per_mask), abs=1e-6)
    assert f"density {result['overall']['density']:.3f}" in proc.stdout
    assert len(result['masks']) == len(masks)
    for item, mask in zip(result['masks'], masks):
        cells = item['num_object_cells'] + item['num_background_cells']
        assert cells == mask.numel()
        assert (item['object_rate'] * item['num_object_cells'] + item['background_rate'] *
                item['num_background_cells']) / cells == pytest.approx(item['density'], abs=1e-6)
    for i, stage in enumerate(result['stages']):
        own = per_mask[sum(sizes[:i]):sum(sizes[:i + 1])]
        assert stage['density'] == pytest.approx(sum(own) / len(own), abs=1e-6)
    assert len(result['stages']) == len(sizes)
    for stage, rate in zip(result['stages'], expected):
        assert stage['num_object_cells'] > 0 and stage['num_background_cells'] > 0
        cells = stage['num_object_cells'] + stage['num_background_cells']
        mean = (stage['object_rate'] * stage['num_object_cells'] +
                stage['background_rate'] * stage['num_background_cells']) / cells
        assert abs(mean - rate.item()) < 1e-6, (mean, rate)
