# Copyright (c) mmdynamic contributors. All rights reserved.
"""``--amp`` (``mmdynamic.utils.run_config.enable_amp``) must switch every demo config to MMEngine's
AmpOptimWrapper, also when the config's ``optim_wrapper`` names no type (MMEngine then builds an
``OptimWrapper``). Checked on the CPU with CUDA faked as available (the switch is a config edit)."""
import copy

import pytest
import torch

from .demo_runs import DEMO_CONFIGS


@pytest.fixture(scope='module')
def demo_cfgs():
    from mmengine.config import Config
    return {config: Config.fromfile(config, import_custom_modules=False) for config in DEMO_CONFIGS}


def _wrapper_types(demo_cfgs, monkeypatch, typed: bool):
    """{config: the optim_wrapper type after enable_amp} of the demo configs whose optim_wrapper
    names its type (``typed``) or does not."""
    from mmdynamic.utils.run_config import enable_amp
    out = {}
    for config, cfg in demo_cfgs.items():
        if ('type' in cfg.optim_wrapper) != typed:
            continue
        cfg = copy.deepcopy(cfg)
        with monkeypatch.context() as patch:  # only around the edit: imports ask torch too
            patch.setattr(torch.cuda, 'is_available', lambda: True)
            enable_amp(cfg)
        assert cfg.test_cfg['fp16'] is True, config
        out[config] = cfg.optim_wrapper.get('type', 'OptimWrapper (MMEngine default)')
    return out


def test_amp_switches_typed_optim_wrappers(demo_cfgs, monkeypatch):
    types = _wrapper_types(demo_cfgs, monkeypatch, typed=True)
    assert types and all(t == 'AmpOptimWrapper' for t in types.values()), types


def test_amp_switches_untyped_optim_wrappers(demo_cfgs, monkeypatch):
    types = _wrapper_types(demo_cfgs, monkeypatch, typed=False)
    assert types and all(t == 'AmpOptimWrapper' for t in types.values()), types
