# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR sparse inference equals the dense masked path where mmdet and mmseg deploy it (issue #18).

The backbones are those of the COCO and VOC configs (their mask cells, strides and dilations), made
thin (8 planes in stage 1) so that the real test sizes of the frameworks' pipelines run on CPU:
mmdet's ``Resize(scale=(1333, 800), keep_ratio=True)`` of COCO-shaped images, batched with padding by
mmdet's ``DetDataPreprocessor`` (``pad_size_divisor=32``), and mmseg's ``Resize(scale=(2048, 512),
keep_ratio=True)`` of VOC-shaped images (512 x 683, 683 x 512) and its 512 x 512 crops at output
stride 8. The whole demo detector is also compared on a padded batch of two image sizes.
"""
import copy
from typing import List, Sequence, Tuple

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from ..test_layers.test_sar_sparse import _compare_backbone, _mixed_masks, _randomise

COCO_CONFIG = 'configs/sar/sar-r50_faster-rcnn_coco.py'
VOC_CONFIG = 'configs/sar/sar-r50-g2s4a1-t0.5_deeplabv3_4xb4-20k_voc12aug-512x512.py'
DEMO_DET_CONFIG = 'configs/sar/sar-r50-g2s2a2b1-w16_faster-rcnn_fpn_1xb4-8e_demo-det.py'
# thin: stem 8 and stage-1 planes 8 (the configs: 64 / 64, the demos: 16 / 16)
THIN = dict(stem_channels=8, base_channels=8, init_cfg=None, norm_cfg=dict(type='BN'),
            frozen_stages=-1)


pytestmark = pytest.mark.usefixtures('single_thread')  # tests/conftest.py


def _config_backbone(config: str, groups: int) -> nn.Module:
    """The SAR backbone of ``config`` (thin, ``groups`` G, random trained-like weights)."""
    from mmdynamic.models.backbones.sar_resnet import SARResNet
    cfg = copy.deepcopy(Config.fromfile(config).model.backbone.to_dict())
    cfg.pop('_delete_', None)
    assert cfg.pop('type') == 'SARResNet' and cfg.get('mask_cell_size') is not None
    cfg.update(THIN, groups=groups)
    return _randomise(SARResNet(**cfg), seed=groups)


def calibrate_bn(module: nn.Module, x: torch.Tensor) -> None:
    """Set every BN's running statistics to those of ``x`` (one training-mode forward; affine
    parameters kept; variances at least 0.1), so that a randomised network's features stay of order one through the
    detector's heads instead of growing through 16 blocks of random statistics."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, that batch's statistics
    module.train()
    with torch.no_grad():
        module(x)
        for m in norms:  # nearly constant (e.g. dead) channels: no 1 / sqrt(eps) amplification
            m.running_var.clamp_(min=0.1)
    module.eval()


def _resized(sizes: Sequence[Tuple[int, int]], scale: Tuple[int, int], seed: int
             ) -> List[np.ndarray]:
    """Random uint8 images of the given (h, w), resized by mmcv's keep-ratio ``Resize`` as the
    frameworks' test pipelines do."""
    from mmcv.transforms import Resize
    rng = np.random.default_rng(seed)
    resize = Resize(scale=scale, keep_ratio=True)
    return [resize(dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))['img']
            for h, w in sizes]


def _det_batch(images: List[np.ndarray]) -> Tuple[torch.Tensor, list]:
    """mmdet's ``DetDataPreprocessor`` (COCO config: normalised, BGR -> RGB, padded to 32)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(COCO_CONFIG).model.data_preprocessor
    preprocessor = MMDET_MODELS.build(cfg)
    samples = []
    for img in images:
        h, w = img.shape[:2]
        samples.append(DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                                   scale_factor=(1.0, 1.0))))
    data = dict(inputs=[torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images],
                data_samples=samples)
    out = preprocessor(data, False)
    return out['inputs'], out['data_samples']


# COCO-shaped originals (h, w): landscape 480 x 640 and portrait 640 x 427 -> 800 x 1067 and
# 1199 x 800 after the test Resize, one padded batch of 1216 x 1088
COCO_ORIGINALS = ((480, 640), (640, 427))
# sparse vs dense detections (torch.testing.assert_close tolerances): box deltas pass through exp(),
# so 1e-5 in the features may become 1e-4 of a box side
BOX_TOL = dict(atol=1e-3, rtol=1e-3)
SCORE_TOL = dict(atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('groups', [1, 2, 4])
def test_coco_padded_multi_size_batch_sparse_equals_dense(groups):
    images = _resized(COCO_ORIGINALS, (1333, 800), seed=groups)
    assert [i.shape[:2] for i in images] == [(800, 1067), (1199, 800)]
    inputs, samples = _det_batch(images)
    assert inputs.shape == (2, 3, 1216, 1088)
    assert [s.batch_input_shape for s in samples] == [(1216, 1088)] * 2
    assert [s.pad_shape for s in samples] == [(800, 1088), (1216, 800)]  # each padded to 32
    model = _config_backbone(COCO_CONFIG, groups)
    assert model.mask_cell_size == (4, 4, 7) and model.mask_grid is None
    _mixed_masks(model, inputs, seed=groups)
    _compare_backbone(model, inputs, rel_tol=1e-5)
    # 4 / 4 / 7 px cells on the 304 x 272 / 152 x 136 / 76 x 68 maps
    grids = sorted({tuple(m.shape[-2:]) for m in model.last_masks})
    assert grids == [(11, 10), (38, 34), (76, 68)]


@pytest.mark.parametrize('size,groups', [((512, 512), 1), ((512, 512), 2), ((512, 512), 4),
                                         ((512, 683), 2), ((683, 512), 4)])
def test_voc_os8_test_sizes_sparse_equals_dense(size, groups):
    # 512 x 683 and 683 x 512: VOC's 375 x 500 and 500 x 375 images after mmseg's test Resize;
    # 512 x 512: the training crop (mmseg batches only images of one size at test time)
    if size != (512, 512):
        originals = {(512, 683): (375, 500), (683, 512): (500, 375)}
        (img, ) = _resized([originals[size]], (2048, 512), seed=0)
        assert img.shape[:2] == size
    model = _config_backbone(VOC_CONFIG, groups)
    assert model.mask_cell_size == (4, 4, 14)
    batch = 2 if size == (512, 512) else 1  # (batch > 1 with padding: the COCO test)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(groups))
    _mixed_masks(model, x, seed=groups)
    # 14 px cells on the 64 x 64 stride-8 map of SAR-3: 25 cells per group, so a mixed mask may
    # refine fewer than 10 % of them (the density is still strictly between 0 and 1)
    _compare_backbone(model, x, rel_tol=1e-5, density_range=(0.0, 1.0))
    outs = model(x)
    assert [tuple(o.shape[-2:]) for o in outs[1:]] == [tuple(-(-s // 8) for s in size)] * 3


@pytest.mark.parametrize('groups', [2, 4])
def test_demo_detector_padded_batch_predictions_sparse_equal_dense(groups):
    """The whole demo Faster R-CNN in eval (``predict``) on one padded batch of a 160 x 120 and a
    112 x 160 image: equal features, equal boxes."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import mmdynamic.models  # noqa: F401  (registers the SAR detectors)
    cfg = Config.fromfile(DEMO_DET_CONFIG)
    cfg.model.backbone.groups = groups
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(groups)
    model = MMDET_MODELS.build(cfg.model)
    model.init_weights()
    _randomise(model.backbone, seed=groups)
    rng = np.random.default_rng(groups)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((160, 120), (112, 160))]
    samples = [DetDataSample(metainfo=dict(img_shape=i.shape[:2], ori_shape=i.shape[:2],
                                           scale_factor=(1.0, 1.0))) for i in images]
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images],
             data_samples=samples), False)
    inputs, samples = data['inputs'], data['data_samples']
    assert inputs.shape == (2, 3, 160, 160)
    calibrate_bn(model.backbone, inputs)
    _mixed_masks(model.backbone, inputs, seed=groups)
    model.eval()
    results = {}
    for sparse in (False, True):
        model.backbone.set_sparse_infer(sparse)
        with torch.no_grad():
            feats = model.extract_feat(inputs)
            preds = model.predict(inputs, copy.deepcopy(samples))
        results[sparse] = (feats, preds, [m.clone() for m in model.backbone.last_masks])
    (dense_feats, dense_preds, dense_masks), (feats, preds, masks) = results[False], results[True]
    density = torch.stack([m.mean() for m in dense_masks])
    assert ((density > 0) & (density < 1)).all(), density
    assert all(torch.equal(a, b) for a, b in zip(dense_masks, masks))
    for a, b in zip(feats, dense_feats):  # FPN levels
        assert (a - b).abs().max() <= 1e-5 * max(b.abs().max().item(), 1.0)
    for a, b in zip(preds, dense_preds):
        a, b = a.pred_instances, b.pred_instances
        assert len(b) > 0 and len(a) == len(b)
        torch.testing.assert_close(a.bboxes, b.bboxes, **BOX_TOL)
        torch.testing.assert_close(a.scores, b.scores, **SCORE_TOL)
        assert torch.equal(a.labels, b.labels)
