# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR sparse inference through the tools where it is deployed (issue #18): ``tools/test.py`` and
mmdet's / mmseg's own ``tools/test.py`` run the SAR demo detectors and segmentors with
``--cfg-options model.backbone.sparse_infer=True`` and give the dense predictions and metric.

The checkpoints are seeded random models with trained-like backbones (random BN affine parameters,
running statistics of the demo images) whose
mask generators are biased so that every mask refines part of the demo images (the test checks
that each mask's density over the val set lies strictly between 0 and 1; seen: 0.32-0.68), so that
the sparse path runs on real mixtures of selected and skipped cells. A random detector's COCO mAP is
0.0, so for the detectors the check that matters is that of the predictions (every box, score and
label); the random segmentors reach 18-27 % mIoU. (The trained demo Faster R-CNN, 0.122 mAP, gives the
same mAP dense and sparse through both tools: configs/sar/README.md.)
"""
import importlib.util
import json
import os
import os.path as osp
import pickle
import re
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from ..test_engine.test_runner.tool_runs import ToolRun
from ..test_models.test_layers.test_sar_sparse import _mixed_masks, _randomise
from ..test_models.test_sar.test_sar_det_seg_sparse import BOX_TOL, SCORE_TOL, calibrate_bn

SPARSE = 'model.backbone.sparse_infer=True'
DEMOS = {
    # name: (config, framework, metric key, demo task)
    'faster-rcnn': ('configs/sar/sar-r50-g2s2a2b1-w16_faster-rcnn_fpn_1xb4-8e_demo-det.py', 'mmdet',
                    'coco/bbox_mAP', 'det'),
    'retinanet': ('configs/sar/sar-r50-g2s2a2b1-w16_retinanet_fpn_1xb4-8e_demo-det.py', 'mmdet',
                  'coco/bbox_mAP', 'det'),
    'deeplabv3': ('configs/sar/sar-r50-g2s4a1-w16_deeplabv3_1xb4-600i_demo-seg.py', 'mmseg',
                  'mIoU', 'seg'),
    'pspnet': ('configs/sar/sar-r50-g2s4a1-w16_pspnet_1xb4-600i_demo-seg.py', 'mmseg', 'mIoU',
               'seg'),
}


def data_options(name: str, demo_root: str) -> List[str]:
    """--cfg-options pointing the demo config at ``demo_root`` (20 val images)."""
    _, _, _, task = DEMOS[name]
    root = osp.join(demo_root, task) + ('/' if task == 'det' else '')
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    if task == 'det':
        ann = root + 'annotations/instances_val.json'
        options += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    if name == 'retinanet':  # random heads score below mmdet's 0.05: keep every box
        options.append('model.test_cfg.score_thr=0.0')
    return options


def _build(config: str, framework: str):
    if framework == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    import mmdynamic.models  # noqa: F401  (registers the SAR task models)
    with DefaultScope.overwrite_default_scope(framework):  # the data preprocessor's registry
        return MODELS.build(Config.fromfile(config).model)


def make_checkpoint(name: str, demo_root: str, path: str, seed: int = 0) -> None:
    """A seeded random model of the demo config with mixed masks on the demo val images."""
    config, framework, _, task = DEMOS[name]
    torch.manual_seed(seed)
    model = _build(config, framework)
    model.init_weights()
    _randomise(model.backbone, seed)
    folder = osp.join(demo_root, task, 'val' if task == 'det' else 'JPEGImages')
    files = sorted(f for f in os.listdir(folder) if f.endswith('.jpg'))[:8]
    images = [torch.from_numpy(cv2.imread(osp.join(folder, f))).permute(2, 0, 1).contiguous()
              for f in files]
    with torch.no_grad():
        inputs = model.data_preprocessor(dict(inputs=images), False)['inputs']
    calibrate_bn(model.backbone, inputs)
    _mixed_masks(model.backbone, inputs, seed)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(seed=seed)), path)


def densities(log: str) -> List[float]:
    """The per-mask densities of the 'SAR test:' line of ``SARScheduleHook``."""
    (line, ) = re.findall(r'SAR test: .*mask densities ([0-9., ]+)', log)
    return [float(d) for d in line.split(',')]


def framework_metric(log: str, key: str) -> float:
    """The metric as the framework's test tool logs it (its 'Epoch(test)' or 'Iter(test)' line)."""
    (line, ) = [x for x in log.splitlines() if '(test)' in x and key + ':' in x]
    return float(re.search(re.escape(key) + r': ([0-9.]+)', line).group(1))


def _load(path: str) -> list:
    with open(path, 'rb') as f:
        return pickle.load(f)


def _same_detections(a: Dict, b: Dict) -> None:
    """The detections of ``a`` are those of ``b``, one to one: the same label, boxes within
    ``BOX_TOL`` and scores within ``SCORE_TOL`` (``assert_close``'s atol + rtol * |b|). Matched as
    sets: two detections with scores within rounding of each other (a tie in the demo's
    near-uniform scores) may come out of the score sort in either order."""
    a, b = a['pred_instances'], b['pred_instances']
    labels_a, labels_b = torch.as_tensor(a['labels']), torch.as_tensor(b['labels'])
    assert len(labels_b) > 0 and len(labels_a) == len(labels_b)
    boxes_a, boxes_b = torch.as_tensor(a['bboxes']), torch.as_tensor(b['bboxes'])
    scores_a, scores_b = torch.as_tensor(a['scores']), torch.as_tensor(b['scores'])
    unmatched = list(range(len(labels_b)))
    for i in range(len(labels_a)):
        box_err = ((boxes_a[i] - boxes_b[unmatched]).abs()
                   - BOX_TOL['rtol'] * boxes_b[unmatched].abs()).amax(-1)
        score_err = ((scores_a[i] - scores_b[unmatched]).abs()
                     - SCORE_TOL['rtol'] * scores_b[unmatched].abs())
        fits = ((labels_b[unmatched] == labels_a[i]) & (box_err <= BOX_TOL['atol'])
                & (score_err <= SCORE_TOL['atol']))
        assert fits.any(), (i, labels_a[i], boxes_a[i], scores_a[i])
        unmatched.pop(int(torch.where(fits, box_err, torch.inf).argmin()))


def _same_labels(label: torch.Tensor, dense: Dict, tol: float) -> None:
    """``label`` (H, W) is the dense prediction's, except at pixels where the dense logits of the
    two labels lie within ``tol`` (an argmax tie that fp32 rounding may break either way)."""
    reference = dense['pred_sem_seg']['data'][0].long()
    differ = label.long() != reference
    assert differ.float().mean() < 0.01, differ.float().mean()
    logits = dense['seg_logits']['data']  # (C, H, W)
    ours = logits.gather(0, label.long()[None])[0][differ]
    theirs = logits.gather(0, reference[None])[0][differ]
    assert ((theirs - ours).abs() <= tol).all(), (theirs - ours).abs().max()


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DEMOS))
def test_sparse_inference_through_our_and_the_framework_test_tools(name, demo_root, tmp_path):
    config, framework, metric, task = DEMOS[name]
    ckpt = str(tmp_path / 'random_mixed_masks.pth')
    make_checkpoint(name, demo_root, ckpt)
    options = data_options(name, demo_root)
    framework_tool = osp.join(osp.dirname(importlib.util.find_spec(framework).origin), '.mim',
                              'tools', 'test.py')
    framework_out = str(tmp_path / ('fw.pkl' if framework == 'mmdet' else 'fw_png'))
    runs = {
        'dense': ToolRun(['tools/test.py', config, ckpt, '--work-dir', tmp_path / 'dense', '--out',
                          tmp_path / 'dense.pkl', '--cfg-options', *options], tmp_path / 'd.log'),
        'sparse': ToolRun(['tools/test.py', config, ckpt, '--work-dir', tmp_path / 'sparse',
                           '--out', tmp_path / 'sparse.pkl', '--cfg-options', *options, SPARSE],
                          tmp_path / 's.log'),
    }
    logs = {k: run.wait() for k, run in runs.items()}
    logs['framework'] = ToolRun([framework_tool, config, ckpt, '--work-dir', tmp_path / 'fw',
                                 '--out', framework_out, '--cfg-options', *options, SPARSE],
                                tmp_path / 'fw.log').wait()
    # the switch reached the backbone of both sparse runs, and the masks are mixed
    assert 'sparse_infer=False' in logs['dense'] and 'sparse_infer=True' not in logs['dense']
    for key in ('sparse', 'framework'):
        assert 'sparse_infer=True' in logs[key]
    dense_density = densities(logs['dense'])
    assert len(dense_density) == 10 and all(0.0 < d < 1.0 for d in dense_density), dense_density
    for key in ('sparse', 'framework'):
        assert densities(logs[key]) == dense_density
    # the same metric ...
    values = {}
    for key in ('dense', 'sparse'):
        with open(tmp_path / key / 'metrics.json', encoding='utf-8') as f:
            values[key] = json.load(f)[metric]
    values['framework'] = framework_metric(logs['framework'], metric)
    assert values['sparse'] == values['dense'], values
    assert values['framework'] == pytest.approx(values['dense'], abs=0.01), values
    # ... from the same predictions
    dense, sparse = _load(tmp_path / 'dense.pkl'), _load(tmp_path / 'sparse.pkl')
    assert len(dense) == len(sparse) == 20
    if framework == 'mmdet':
        for a, b in zip(sparse, dense):
            _same_detections(a, b)
        for a, b in zip(_load(framework_out), dense):
            _same_detections(a, b)
    else:
        for a, b in zip(sparse, dense):
            # the backbone to 1e-5 (test_sar_det_seg_sparse.py), then the ASPP / PPM head and the
            # upsampling in fp32: 1e-4 of the largest logit
            logits, reference = a['seg_logits']['data'], b['seg_logits']['data']
            scale = max(reference.abs().max().item(), 1.0)
            assert (logits - reference).abs().max().item() <= 1e-4 * scale, scale
            _same_labels(a['pred_sem_seg']['data'][0], b, 2e-4 * scale)
        for b in dense:
            png = osp.join(framework_out, osp.basename(b['img_path'])[:-4] + '.png')
            label = torch.from_numpy(cv2.imread(png, cv2.IMREAD_UNCHANGED).astype(np.int64))
            scale = max(b['seg_logits']['data'].abs().max().item(), 1.0)
            _same_labels(label, b, 2e-4 * scale)
