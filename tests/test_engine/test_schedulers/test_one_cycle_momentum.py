# Copyright (c) mmdynamic contributors. All rights reserved.
"""MMEngine's OneCycleLR + our OneCycleMomentum reproduce torch's OneCycleLR (the MGNet recipe)."""
import pytest
import torch
from mmengine.optim.scheduler import OneCycleLR

from mmdynamic.engine.schedulers import OneCycleMomentum
from mmdynamic.registry import PARAM_SCHEDULERS


def _sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9,
                           weight_decay=1e-4)


@pytest.mark.parametrize('three_phase', [False, True])
def test_matches_torch_one_cycle(three_phase):
    total = 50
    ref_opt = _sgd()
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.1, total_steps=total,
                                              pct_start=0.2, three_phase=three_phase)
    opt = _sgd()
    lr = OneCycleLR(opt, eta_max=0.1, total_steps=total, pct_start=0.2, by_epoch=False,
                    three_phase=three_phase)
    mom = PARAM_SCHEDULERS.build(dict(type='OneCycleMomentum', optimizer=opt, total_steps=total,
                                      pct_start=0.2, by_epoch=False, three_phase=three_phase))
    assert isinstance(mom, OneCycleMomentum)
    moms = []
    for _ in range(total - 1):
        assert opt.param_groups[0]['lr'] == pytest.approx(ref_opt.param_groups[0]['lr'], rel=1e-9)
        assert opt.param_groups[0]['momentum'] == pytest.approx(
            ref_opt.param_groups[0]['momentum'], abs=1e-12)
        moms.append(opt.param_groups[0]['momentum'])
        ref_opt.step(), opt.step()
        ref.step(), lr.step(), mom.step()
    assert max(moms) == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=1e-3)


def test_adam_betas_and_errors():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    mom = OneCycleMomentum(opt, total_steps=10, pct_start=0.5, by_epoch=False)
    for _ in range(4):
        mom.step()
    assert opt.param_groups[0]['betas'][0] == pytest.approx(0.85)
    with pytest.raises(ValueError, match='base_momentum'):
        OneCycleMomentum(_sgd(), base_momentum=0.96, total_steps=10)
    with pytest.raises(ValueError, match='total_steps'):
        OneCycleMomentum(_sgd())


def test_mgnet_recipe_config_matches_torch_per_iteration():
    """configs/mgnet/_base_/onecycle_sgd_400e.py converted to iterations (as the runner does) gives
    torch's OneCycleLR(max_lr=0.1, pct_start=0.2) learning rate and momentum at every iteration."""
    import os.path as osp

    from mmengine.config import Config

    from ...conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs/mgnet/_base_/onecycle_sgd_400e.py'))
    epoch_length = 3
    total = 400 * epoch_length
    opt = _sgd()
    schedulers = []
    for sched in cfg.param_scheduler:
        sched = dict(sched)
        sched.pop('convert_to_iter_based')
        cls = PARAM_SCHEDULERS.get(sched.pop('type'))
        schedulers.append(cls.build_iter_from_epoch(opt, epoch_length=epoch_length, **sched))
    ref_opt = _sgd()
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.1, total_steps=total,
                                              pct_start=0.2)
    for it in range(total - 1):
        for key in ('lr', 'momentum'):
            assert opt.param_groups[0][key] == pytest.approx(ref_opt.param_groups[0][key],
                                                             rel=1e-9), (it, key)
        ref_opt.step(), opt.step()
        ref.step()
        for sched in schedulers:
            sched.step()
    assert opt.param_groups[0]['lr'] < 1e-5 and opt.param_groups[0]['momentum'] > 0.949
