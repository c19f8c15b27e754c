# Copyright (c) mmdynamic contributors. All rights reserved.
"""Stage inputs: checkpoints of earlier stages named once, resolved after --cfg-options, checked."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdynamic.utils.stage_inputs import check_stage_inputs, resolve_stage_inputs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GFNET_DEMO = 'configs/gfnet/gfnet-r18w16-p48-t3_stage{}_{}_demo-cls.py'
STAGES = {1: '1xb32-6e', 2: '1xb32-20e', 3: '1xb32-2e'}


def _demo(stage: int) -> Config:
    return Config.fromfile(osp.join(REPO, GFNET_DEMO.format(stage, STAGES[stage])))


def _encoder_checkpoints(cfg: Config):
    return [cfg.model[e].backbone.init_cfg.checkpoint for e in ('global_encoder', 'local_encoder')]


def test_cfg_options_override_reaches_every_use(tmp_path):
    """One override of ``stage_inputs.pretrained`` changes both encoders' init (it did nothing when
    the path was substituted at parse time)."""
    cfg = _demo(1)
    assert cfg.runner_type == 'StageInputsRunner'
    cfg.merge_from_dict({'stage_inputs.pretrained': str(tmp_path / 'standin.pth')})
    used = resolve_stage_inputs(cfg)
    assert _encoder_checkpoints(cfg) == [str(tmp_path / 'standin.pth')] * 2
    assert {'model.global_encoder.backbone.init_cfg.checkpoint',
            'model.local_encoder.backbone.init_cfg.checkpoint'} <= set(used['pretrained'])


def test_default_inputs_resolve_to_the_readme_paths():
    cfg = _demo(1)
    resolve_stage_inputs(cfg)
    assert _encoder_checkpoints(cfg) == [
        'work_dirs/resnet18w16_card-crops_1xb32-20e_demo-cls/epoch_20.pth'] * 2
    for stage, previous in ((2, 'gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls/epoch_6.pth'),
                            (3, 'gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-cls/epoch_20.pth')):
        cfg = _demo(stage)
        resolve_stage_inputs(cfg)
        assert cfg.load_from == f'work_dirs/{previous}'


def test_previous_stage_work_dir_option(tmp_path):
    for stage, key in ((2, 'stage1'), (3, 'stage2')):
        cfg = _demo(stage)
        cfg.merge_from_dict({f'stage_inputs.{key}': str(tmp_path / 'prev')})
        resolve_stage_inputs(cfg)
        assert cfg.load_from.startswith(str(tmp_path / 'prev') + '/epoch_')


def test_missing_checkpoint_fails_clearly(tmp_path):
    cfg = _demo(1)
    cfg.merge_from_dict({'stage_inputs.pretrained': str(tmp_path / 'missing.pth')})
    used = resolve_stage_inputs(cfg)
    with pytest.raises(FileNotFoundError, match=r'missing\.pth does not exist .*stage_inputs\.'
                       r'pretrained=PATH'):
        check_stage_inputs(cfg, used)
    cfg = _demo(2)
    cfg.merge_from_dict({'stage_inputs.stage1': str(tmp_path)})
    used = resolve_stage_inputs(cfg)
    with pytest.raises(FileNotFoundError, match=r'load_from: checkpoint .*epoch_6\.pth does not '
                       r'exist .*stage_inputs\.stage1=PATH'):
        check_stage_inputs(cfg, used)


def test_present_checkpoints_are_listed_and_stale_ones_warned(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    ckpt = tmp_path / 'standin.pth'
    torch.save({}, str(ckpt))
    (data / '.complete').write_text('{}')
    os.utime(str(ckpt), (1, 1))  # written long before the data
    cfg = _demo(1)
    cfg.merge_from_dict({'stage_inputs.pretrained': str(ckpt),
                         'train_dataloader.dataset.data_root': str(data)})
    used = resolve_stage_inputs(cfg)
    checked = check_stage_inputs(cfg, used)
    assert [(path, stale) for _, path, stale in checked] == [(str(ckpt), True)] * 2
    os.utime(str(ckpt))  # written now, after the data
    assert [stale for _, _, stale in check_stage_inputs(cfg, used)] == [False, False]


def test_unknown_placeholder_and_bad_entries():
    cfg = Config(dict(stage_inputs=dict(a='x'), load_from='${b}/epoch_1.pth'))
    with pytest.raises(KeyError, match=r'load_from refers to \$\{b\}'):
        resolve_stage_inputs(cfg)
    cfg = Config(dict(stage_inputs=dict(a=3), load_from=None))
    with pytest.raises(TypeError, match='stage_inputs.a must be a plain path string'):
        resolve_stage_inputs(cfg)
    # a config without stage inputs and placeholders is unchanged
    cfg = Config(dict(load_from='x.pth', model=dict(type='M')))
    assert resolve_stage_inputs(cfg) == {} and cfg.load_from == 'x.pth'


def test_runner_resolves_after_cfg_options(tmp_path):
    """``tools/train.py`` builds the runner named by ``runner_type``: the placeholders are resolved
    there, after the command line's options were merged, and training checks the files first."""
    from mmdynamic.utils.run_config import build_runner
    cfg = _demo(2)
    cfg.merge_from_dict({'stage_inputs.stage1': str(tmp_path / 'nowhere'),
                         'work_dir': str(tmp_path / 'work')})
    runner = build_runner(cfg)
    assert runner._load_from == str(tmp_path / 'nowhere' / 'epoch_6.pth')
    with pytest.raises(FileNotFoundError, match='stage_inputs.stage1=PATH'):
        runner.train()
