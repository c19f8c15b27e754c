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


@pytest.mark.parametrize('sharing', ['block', 'stage'])
def test_selectivity_tool_task_gradient_is_the_loss_change_per_cell(demo_root, tmp_path, sharing):
    """--task-gradient: per mask, the mean d(task loss of one image) / d(mask cell) on object and on
    background cells; checked against a central finite difference of the loss when every object
    cell (then every background cell) of one mask is moved by +-eps. With one mask per stage
    (mask_sharing='stage') the gradient sums over the refine blocks the mask gates."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmdynamic.models  # noqa: F401
    import mmdynamic.models.backbones.sar_resnet as sar_resnet
    from mmdynamic.evaluation.functional.mask_selectivity import object_cells
    from mmdynamic.utils.run_config import build_model
    root = osp.join(demo_root, 'cls')
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    options += ['test_dataloader.batch_size=8', f'model.backbone.mask_sharing={sharing}']
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    cfg.merge_from_dict({o.split('=')[0]: o.split('=')[1] for o in options})
    cfg.test_dataloader.batch_size = 8
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = build_model(cfg)
    # refine blocks that change their input (their last BNs start at zero), and logits that put
    # some cells on either side (the select-all init refines everything)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    for stage in model.backbone.stages:
        for gen in stage.masks:
            torch.nn.init.normal_(gen.fc.weight, 0.0, 0.5)
            torch.nn.init.zeros_(gen.fc.bias)
    ckpt = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    out = tmp_path / 'selectivity.json'
    # a sparse-inference config is measured on the (equal) dense masked path, which has the gradient
    proc = run_tool([SCRIPT, CONFIG, ckpt, '--boxes', osp.join(root, 'val_boxes.json'),
                     '--max-batches', '1', '--task-gradient', '--out', str(out),
                     '--cfg-options', *options, 'model.backbone.sparse_infer=True'], cwd=REPO)
    assert 'mask 0: refined' in proc.stdout and 'gradient' in proc.stdout
    result = json.loads(out.read_text())

    model = build_model(cfg, ckpt).eval()
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    data = model.data_preprocessor(batch, False)
    # the finite difference in float64 (a float32 loss is too coarse for it)
    model.double()
    inputs, samples = data['inputs'].double(), data['data_samples']
    with open(osp.join(root, 'val_boxes.json'), encoding='utf-8') as f:
        table = json.load(f)
    prefix = osp.join(root, cfg.test_dataloader.dataset.data_prefix)
    boxes = [torch.tensor(table[osp.relpath(s.img_path, prefix)]).view(-1, 4) for s in samples]
    shift = {}
    original = sar_resnet.masks_from_logits

    def shifted(logits, *args, **kwargs):
        mask = original(logits, *args, **kwargs)
        index = shift['count']
        shift['count'] += 1
        if index == shift['mask']:
            where = object_cells(boxes, mask.shape[-1], inputs.shape[-2:])[:, None].expand_as(mask)
            mask = mask + shift['eps'] * (where if shift['object'] else ~where).float()
        return mask

    def loss(mask, on_object, eps):
        shift.update(count=0, mask=mask, object=on_object, eps=eps)
        with torch.no_grad():
            losses = model.loss(inputs, samples)
        return sum(v for k, v in losses.items() if k.startswith('loss') and 'sparsity' not in k)

    sar_resnet.masks_from_logits = shifted
    try:
        checked = 0
        for n in (0, len(result['masks']) - 1):
            row = result['masks'][n]
            for on_object, key, count in ((True, 'object', row['num_object_cells']),
                                          (False, 'background', row['num_background_cells'])):
                eps = 1e-3
                change = (loss(n, on_object, eps) - loss(n, on_object, -eps)) / (2 * eps)
                # the loss is a batch mean: times B per image, over the cells: the mean gradient
                expected = change.item() * inputs.shape[0] / count
                assert row['task_gradient'][key] == pytest.approx(expected, rel=0.03, abs=1e-9)
                checked += abs(expected) > 1e-7
        assert checked >= 2  # the check is not about zeros (measured: 7e-7 to 3e-6, within 1 %)
    finally:
        sar_resnet.masks_from_logits = original
