# Copyright (c) mmdynamic contributors. All rights reserved.
"""The SAR detection / segmentation configs use mask cells in pixels (issue #18; README "Mask cells
for detection and segmentation"), build from them, and start from a fixed-grid ImageNet checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdynamic.models.backbones.sar_resnet import SARResNet

from ..test_layers.test_sar_sparse import _randomise

CONFIGS = 'configs/sar'
# config pattern: (mask cells, the ImageNet config whose checkpoint it starts from)
DENSE_TASKS = {
    '*_coco.py': ((4, 4, 7), 'sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py'),
    '*_voc12aug-512x512.py': ((4, 4, 14), 'sar-r50-g2s4a1-t0.5_4xb64-200e_in1k.py'),
    '*_demo-det.py': ((4, 4, 5), None),
    '*_demo-seg.py': ((4, 4, 8), None),
}


def _backbone_cfg(path: str, types=('SARResNet', )) -> dict:
    cfg = Config.fromfile(path).model.backbone.to_dict()
    cfg.pop('_delete_', None)
    assert cfg.pop('type') in types, path
    return cfg


def _configs(pattern: str):
    paths = sorted(glob.glob(osp.join(CONFIGS, pattern)))
    assert paths, pattern
    return paths


@pytest.mark.parametrize('pattern', sorted(DENSE_TASKS))
def test_det_seg_configs_use_mask_cells_and_a_sparse_switch(pattern):
    cells, _ = DENSE_TASKS[pattern]
    for path in _configs(pattern):
        cfg = _backbone_cfg(path)
        assert cfg.get('mask_grid') is None and tuple(cfg['mask_cell_size']) == cells, path
        assert cfg['sparse_infer'] is False, path  # the switch, off by default (dense reference)


def test_classification_demos_keep_their_fixed_grid():
    # they share _base_/sar-r50-w16_demo.py with the detection demos
    for path in _configs('*_demo-cls.py'):
        cfg = _backbone_cfg(path)
        assert cfg.get('mask_cell_size') is None and cfg['mask_grid'] is not None, path


@pytest.mark.parametrize('pattern', ['*_coco.py', '*_voc12aug-512x512.py'])
def test_cell_configs_start_from_a_fixed_grid_imagenet_checkpoint(pattern, tmp_path):
    """The ImageNet classifier's checkpoint ((14, 7, 2) grid, a 1000-way head) loads through the
    config's ``init_cfg`` (``Pretrained``, prefix ``backbone.``) into its cell-size backbone: every
    tensor, nothing left over."""
    cells, in1k = DENSE_TASKS[pattern]
    source = _backbone_cfg(osp.join(CONFIGS, in1k))
    assert source.get('mask_grid', (14, 7, 2)) == (14, 7, 2)
    imagenet = _randomise(SARResNet(**dict(source, init_cfg=None)), 0)
    state = {f'backbone.{k}': v for k, v in imagenet.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 2048)
    ckpt = str(tmp_path / 'in1k.pth')
    torch.save(dict(state_dict=state), ckpt)
    for path in _configs(pattern):
        cfg = _backbone_cfg(path)
        cfg['init_cfg']['checkpoint'] = ckpt
        cfg['norm_cfg'] = dict(type='BN', requires_grad=True)  # SyncBN needs a process group
        model = SARResNet(**cfg)
        assert model.mask_grid is None and model.mask_cell_size == cells
        model.init_weights()
        loaded = model.state_dict()
        assert set(loaded) == set(imagenet.state_dict())
        for key, value in imagenet.state_dict().items():
            assert torch.equal(loaded[key], value), key


def test_coco_cells_reproduce_the_imagenet_grid_at_224():
    """At the ImageNet size the COCO backbone (4 / 4 / 7 px cells) computes what the ImageNet
    backbone ((14, 7, 2) grid) computes, with the same weights: the same masks and features."""
    cfg = _backbone_cfg(osp.join(CONFIGS, 'sar-r50_faster-rcnn_coco.py'))
    cfg.update(init_cfg=None, frozen_stages=-1)
    cells = _randomise(SARResNet(**cfg), 1).eval()
    grid = SARResNet(**dict(cfg, mask_cell_size=None, mask_grid=(14, 7, 2))).eval()
    grid.load_state_dict(cells.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = cells(x), grid(x)
    for m, n in zip(cells.last_masks, grid.last_masks):
        assert m.shape == n.shape and torch.equal(m, n)
    assert [tuple(m.shape[-2:]) for m in cells.last_masks] == [(14, 14)] * 2 + [(7, 7)] * 3 + \
        [(2, 2)] * 5
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)
