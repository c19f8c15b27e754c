# Copyright (c) mmdynamic contributors. All rights reserved.
"""Recipe details of the Uni-AdaFocus configs (every config builds: tests/test_configs.py)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmdynamic.models  # noqa: F401
from tests.conftest import REPO

CONFIGS = osp.join(REPO, 'configs', 'uniadafocus')


def test_activitynet_learning_rates_per_component():
    """Spec §3.5: f_L 0.002, f_G / FC_G / FC_Aux 0.001, policy 0.0004, f_C 0.04 on ActivityNet."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py'))
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr_of = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lr_of[names[id(p)].split('.')[0]] = group['lr']
    expected = dict(local_backbone=0.002, backbone=0.001, fc_global=0.001, fc_aux=0.001,
                    fc_local=0.002, spatial_policy=0.0004, temporal_policy=0.0004,
                    fusion_head=0.04)
    assert lr_of == pytest.approx(expected)
    assert wrapper.optimizer.param_groups[0]['weight_decay'] == 2e-4
    assert cfg.model.size_reg == 1.0 and cfg.model.num_candidates == 48


@pytest.mark.parametrize('dataset, classes, alpha, metric', [
    ('activitynet', 200, 1.0, 'mAP'), ('fcvid', 239, 1.0, 'mAP'), ('minikinetics', 200, 0.75, 'top1')])
@pytest.mark.parametrize('patch', [96, 128, 160])
def test_dataset_settings(dataset, classes, alpha, metric, patch):
    batch = 8 if dataset == 'activitynet' else 16
    cfg = Config.fromfile(osp.join(
        CONFIGS, f'uniadafocus_mn2-r50-p{patch}_4xb{batch}-50e_{dataset}-rgb.py'))
    assert cfg.model.patch_size == patch and cfg.model.num_classes == classes
    assert cfg.model.size_reg == alpha
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0]['num_clips'] == 48 and any(t['type'] == 'Flip' for t in pipeline)
    assert cfg.custom_hooks[0]['metric'] == metric
    assert cfg.custom_hooks[0]['confidence'] == 'neg_entropy'


@pytest.mark.parametrize('name, focus, patch, alpha, wd', [
    ('p96-8+8_4xb16-50e_sthv1', 8, 96, 0.5, 1e-3), ('p128-8+16_4xb16-50e_sthv2', 16, 128, 0.5, 5e-4),
    ('p128-8+12_4xb16-50e_jester', 12, 128, 0.25, 1e-3)])
def test_tsm_settings(name, focus, patch, alpha, wd):
    """Sth-Sth / Jester: T_0 = 3 T_L candidates, f_L's TSM segments = T_L, no flip, grad clip 20."""
    cfg = Config.fromfile(osp.join(CONFIGS, f'uniadafocus-tsm_mn2-r50-{name}-rgb.py'))
    model = cfg.model
    assert (model.num_focus, model.num_candidates, model.patch_size) == (focus, 3 * focus, patch)
    assert model.local_backbone.num_segments == focus and model.backbone.num_segments == 8
    assert model.size_reg == alpha and cfg.optim_wrapper.optimizer.weight_decay == wd
    assert cfg.optim_wrapper.clip_grad.max_norm == 20
    loaders = (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)
    for loader, test_mode in zip(loaders, (False, True, True)):
        pipeline = loader.dataset.pipeline
        assert pipeline[0]['num_candidates'] == 3 * focus and pipeline[0]['num_glance'] == 8
        assert pipeline[0].get('test_mode', False) == test_mode
        assert loader.dataset.ann_file.startswith(f"data/{name.split('_')[-1]}/")
        assert not any(t['type'] == 'Flip' for t in pipeline)


@pytest.mark.parametrize('suffix', ['', '_3crop'])
def test_x3d_kinetics_input_as_the_official_code(suffix):
    """Issue #16 items 9-10: ImageNet mean / std (all official code bases), short side 256 by PIL,
    and raw-logit view averaging for the (3-crop) test."""
    import torch
    cfg = Config.fromfile(osp.join(
        CONFIGS, f'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb{suffix}.py'))
    init_default_scope('mmaction')
    from mmaction.registry import MODELS
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    assert cfg.model.data_preprocessor.mean == mean and cfg.model.data_preprocessor.std == std
    assert cfg.model.view_average == 'logits'
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    clip = torch.randint(0, 256, (1, 2, 3, 4, 4), dtype=torch.uint8)
    out = preprocessor(dict(inputs=[clip[0]], data_samples=None), False)['inputs']
    expected = (clip.double() - torch.tensor(mean, dtype=torch.float64).view(3, 1, 1)) / torch.tensor(
        std, dtype=torch.float64).view(3, 1, 1)
    assert torch.allclose(out.double(), expected, atol=1e-5)
    types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert types[3] == 'PillowResize' and cfg.test_dataloader.dataset.pipeline[3]['scale'] == (-1, 256)
    assert types[4] == ('TSNThreeCrop' if suffix else 'TSNCenterCrop')


def _official_recipe_configs():
    """Every config of an official recipe (the demo configs run on the synthetic data instead)."""
    import glob
    return sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIGS, '*.py'))
                  if 'demo' not in osp.basename(p))


@pytest.mark.parametrize('name', _official_recipe_configs())
def test_official_recipes_test_frames_as_the_official_code(name):
    """The official test frames of every code base: short side 256 resized with PIL's bilinear
    filter, then torchvision's centre crop (or the TSN 3-crop of the X3D 3-crop test)."""
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert 'Resize' not in types and 'CenterCrop' not in types and 'ThreeCrop' not in types
    resize = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'PillowResize')
    assert tuple(resize['scale']) == (-1, 256) and resize['interpolation'] == 'bilinear'
    assert ('TSNCenterCrop' in types) != ('TSNThreeCrop' in types)
