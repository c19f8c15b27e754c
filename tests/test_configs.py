# Copyright (c) mmdynamic contributors. All rights reserved.
"""Every config of configs/ parses and its model builds (in the config's own default scope)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmdynamic.models  # noqa: F401

from .conftest import REPO

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_there_are_configs():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.get('default_scope') in ('mmpretrain', 'mmdet', 'mmseg', 'mmaction'), \
        'task configs keep the framework default scope'
    assert 'mmdynamic.models' in cfg.custom_imports['imports']
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
