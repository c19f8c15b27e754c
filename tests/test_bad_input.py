# Copyright (c) mmdynamic contributors. All rights reserved.
"""The bad-input table of the README: every row is produced here, with its exact message.

Each case triggers one mistake and checks the error type and message pattern (``<...>`` stands for
a value that varies: a path, a size). A last test checks that the README's table lists exactly these
cases with these messages, so the documentation cannot drift from the behaviour.
"""
import json
import os.path as osp
import re
from typing import Callable, Dict, NamedTuple

import pytest
import torch

from .conftest import REPO


class Case(NamedTuple):
    what: str  # the bad input, as the README names it
    error: str  # exception type name
    message: str  # the message pattern (<...> = a varying value)
    trigger: Callable  # trigger(tmp_path, demo_root) raises the error


def _sar(**kwargs):
    from mmdynamic.models.backbones import SARResNet
    return SARResNet(**dict(dict(depth=50), **kwargs))


def _sar_sparse_on_200px(tmp_path, demo_root):
    model = _sar(out_indices=(0, 1, 2, 3)).eval()
    model.set_sparse_infer(True)
    with torch.no_grad():
        model(torch.randn(1, 3, 200, 200))


def _solver():
    from mmdynamic.evaluation.functional import BudgetSolver
    logits = torch.randn(3, 20, 5, generator=torch.Generator().manual_seed(0))
    return BudgetSolver(logits, [1e9, 2e9, 3e9])


def _policy(tmp_path, model='GFNet', num_exits=5):
    from mmdynamic.evaluation.functional import ExitPolicy
    path = str(tmp_path / 'policy.json')
    ExitPolicy(thresholds=[0.5] * (num_exits - 1) + [float('-inf')],
               exit_costs=[1e9 * (k + 1) for k in range(num_exits)], confidence='max_softmax',
               model=model, fit_split='train', ratio=1.0, expected_cost=2e9).save(path)
    return ExitPolicy.load(path)


def _load_image(path):
    import mmdynamic.datasets  # noqa: F401  (installs the clear decode errors)
    from mmcv.transforms import LoadImageFromFile
    LoadImageFromFile()(dict(img_path=str(path)))


def _load_video(path):
    import mmdynamic.datasets  # noqa: F401
    from mmaction.datasets.transforms import DecordDecode, DecordInit, SampleFrames
    results = DecordInit()(dict(filename=str(path)))
    results = SampleFrames(clip_len=1, num_clips=8, test_mode=True)(dict(results, start_index=0))
    DecordDecode()(results)


def _demo_file(demo_root, *parts):
    return osp.join(demo_root, *parts)


def _bad_image(kind):
    def trigger(tmp_path, demo_root):
        good = _demo_file(demo_root, 'cls', 'train', '0')
        src = osp.join(good, sorted(p for p in __import__('os').listdir(good))[0])
        data = open(src, 'rb').read()
        path = tmp_path / f'{kind}.png'
        path.write_bytes({'corrupt': b'\x89PNG' + bytes(range(256)) * 4, 'truncated':
                          data[:len(data) // 2], 'empty': b''}[kind])
        _load_image(path)
    return trigger


def _bad_video(kind):
    def trigger(tmp_path, demo_root):
        folder = _demo_file(demo_root, 'video', 'train')
        src = osp.join(folder, sorted(__import__('os').listdir(folder))[0])
        data = open(src, 'rb').read()
        path = tmp_path / f'{kind}.mp4'
        path.write_bytes({'corrupt': bytes(range(256)) * 8, 'truncated': data[:len(data) // 2],
                          'empty': b''}[kind])
        _load_video(path)
    return trigger


def _label_out_of_range(tmp_path, demo_root):
    from mmpretrain.datasets import CustomDataset

    from mmdynamic.engine.hooks import check_label_range
    ann = tmp_path / 'ann.txt'
    ann.write_text('0/train_00000.png 0\n0/train_00001.png 12\n')
    dataset = CustomDataset(data_root=osp.join(demo_root, 'cls', 'train'), ann_file=str(ann),
                            pipeline=[], with_label=True)
    check_label_range(dataset, 10, 'train')


def _missing_data_root(tmp_path, demo_root):
    from mmpretrain.datasets import CustomDataset
    CustomDataset(data_root=str(tmp_path / 'no_such_root'), data_prefix='train', pipeline=[])


def _checkpoint_of_another_model(tmp_path, demo_root):
    from mmdynamic.utils.checkpoint_check import check_checkpoint_fits
    other = _sar(depth=34, groups=2)
    path = str(tmp_path / 'r34.pth')
    torch.save(dict(state_dict=other.state_dict()), path)
    check_checkpoint_fits(_sar(groups=2), path)


def _truncated_resume(tmp_path, demo_root):
    from mmengine.config import Config

    from mmdynamic.utils.run_config import resolve_resume
    path = tmp_path / 'epoch_3.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1000))), str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    resolve_resume(Config(dict(work_dir=str(tmp_path))), str(path))


def _nan_loss(tmp_path, demo_root):
    from .test_engine.test_hooks.test_nonfinite_loss_hook import _runner
    _runner(tmp_path, nan_from=24).train()


def _missing_framework(tmp_path, demo_root):
    from mmengine.config import Config

    from mmdynamic.utils import frameworks, run_config
    original = frameworks.is_framework_available
    frameworks.is_framework_available = lambda name: name != 'mmaction'
    try:
        run_config.check_framework(Config(dict(default_scope='mmaction')))
    finally:
        frameworks.is_framework_available = original


def _missing_config(tmp_path, demo_root):
    import argparse

    from mmdynamic.utils.run_config import load_config
    load_config(argparse.Namespace(config=str(tmp_path / 'nope.py'), local_rank=0))


def _unknown_type(tmp_path, demo_root):
    from mmengine.registry import MODELS, init_default_scope

    import mmdynamic.models  # noqa: F401
    init_default_scope('mmpretrain')
    MODELS.build(dict(type='SARResNet50'))


def _amp_on_cpu(tmp_path, demo_root):
    from mmengine.config import Config

    from mmdynamic.utils import run_config
    original = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        run_config.enable_amp(Config(dict(optim_wrapper=dict(type='OptimWrapper'))))
    finally:
        torch.cuda.is_available = original


def _policy_file_corrupt(tmp_path, demo_root):
    from mmdynamic.evaluation.functional import ExitPolicy
    path = tmp_path / 'thresholds.json'
    path.write_text('{"model": "GFNet", "thresholds": [0.5, ')
    ExitPolicy.load(str(path))


def _gfnet(**kwargs):
    from mmengine.registry import MODELS, init_default_scope

    from .test_models.test_gfnet.test_gfnet import tiny_cfg
    init_default_scope('mmpretrain')
    return MODELS.build(tiny_cfg(**kwargs))


def _gfnet_patch_larger_than_input(tmp_path, demo_root):
    model = _gfnet(patch_size=96).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64), mode='tensor')


def _mgnet(**kwargs):
    from mmengine.registry import init_default_scope

    from .test_models.test_mgnet.test_mgnet import tiny_mgnet
    init_default_scope('mmpretrain')
    return tiny_mgnet(**kwargs)


CASES: Dict[str, Case] = {
    'sar-groups': Case(
        'SAR: `groups` does not divide the channels', 'ValueError',
        'groups=3 does not divide the refine channels (64 in, 64 planes)',
        lambda t, d: _sar(groups=3)),
    'sar-depth': Case(
        'SAR: unsupported depth', 'KeyError',
        'invalid depth 18 for SARResNet; choose from [34, 50, 101]',
        lambda t, d: _sar(depth=18)),
    'sar-base-scale': Case(
        'SAR: base-branch scale other than 2 or 4', 'ValueError', 'base_scale must be 2 or 4, got 3',
        lambda t, d: _sar(base_scale=3)),
    'sar-fusion': Case(
        'SAR: unknown fusion', 'ValueError', "fusion must be 'att' or 'add', got 'cat'",
        lambda t, d: _sar(fusion='cat')),
    'sar-sparse-grid': Case(
        'SAR: sparse inference with a mask grid that does not divide the feature map (200 px input, '
        'grids 14/7/2)', 'ValueError',
        'sparse_infer: the 50x50 feature map of this refine block is not divisible by its 14x14 '
        'mask grid, so the patches do not tile it.', _sar_sparse_on_200px),
    'gfnet-patch': Case(
        'GFNet: a patch larger than the input (96 px patches, 64 px images)', 'ValueError',
        'patch size (96, 96) is larger than the image (64, 64)', _gfnet_patch_larger_than_input),
    'gfnet-steps': Case(
        'GFNet: T < 1', 'ValueError', 'num_steps must be >= 1, got 0',
        lambda t, d: _gfnet(num_steps=0)),
    'mgnet-glimpses': Case(
        'MGNet: T < 1 glimpses', 'ValueError', 'num_glimpses must be >= 1, got 0',
        lambda t, d: _mgnet(num_glimpses=0)),
    'budget-below': Case(
        'a budget below the cheapest exit', 'ValueError',
        'budget 0.5 GMACs is below the cheapest exit (1 GMACs): no operating point can meet it',
        lambda t, d: _solver().policy_for_budget(0.5e9)),
    'budget-above': Case(
        'a budget above the dearest exit', 'ValueError',
        'budget 4 GMACs is above the dearest exit (3 GMACs): every sample can run every step',
        lambda t, d: _solver().policy_for_budget(4e9)),
    'confidence': Case(
        'an unknown confidence function', 'ValueError',
        "unknown confidence function 'max_prob'; choose one of ['max_logit', 'max_softmax', "
        "'neg_entropy']", lambda t, d: __import__(
            'mmdynamic.models.utils.confidence', fromlist=['x']).get_confidence_fn('max_prob')),
    'policy-model': Case(
        'an exit-policy (thresholds) file made for another model', 'ValueError',
        "these exit thresholds were fitted for model 'GFNet', not for 'MGNet'",
        lambda t, d: _policy(t).check_compatible('MGNet', 5)),
    'policy-exits': Case(
        'an exit-policy file made for another number of exits', 'ValueError',
        'these exit thresholds are for 5 exits, but the model has 4',
        lambda t, d: _policy(t).check_compatible('GFNet', 4)),
    'policy-corrupt': Case(
        'a corrupt exit-policy file', 'ValueError', '<path> is not a valid exit-policy JSON file',
        _policy_file_corrupt),
    'image-corrupt': Case(
        'a corrupt image', 'UndecodableInputError',
        'cannot decode image <path> (1028 bytes): the file is corrupt, truncated or not an image',
        _bad_image('corrupt')),
    'image-truncated': Case(
        'a truncated image', 'UndecodableInputError',
        'cannot decode image <path> (<n> bytes): the file is corrupt, truncated or not an image',
        _bad_image('truncated')),
    'image-empty': Case(
        'an empty image file', 'UndecodableInputError',
        'cannot decode image <path> (0 bytes): the file is empty', _bad_image('empty')),
    'video-corrupt': Case(
        'a corrupt video', 'UndecodableInputError',
        'cannot decode video <path> (2048 bytes): the file is corrupt, truncated or not a video',
        _bad_video('corrupt')),
    'video-truncated': Case(
        'a truncated video', 'UndecodableInputError',
        'cannot decode video <path> (<n> bytes): the file is corrupt, truncated or not a video',
        _bad_video('truncated')),
    'video-empty': Case(
        'an empty video file', 'UndecodableInputError',
        'cannot decode video <path> (0 bytes): the file is empty', _bad_video('empty')),
    'label-range': Case(
        'a class label out of range (label 12, 10 classes)', 'ValueError',
        'train dataset (CustomDataset): sample 1 (<path>) has class label 12, outside [0, 10) for '
        'a model with 10 classes.', _label_out_of_range),
    'data-root': Case(
        'a missing data root', 'FileNotFoundError', 'No such file or directory: <path>',
        _missing_data_root),
    'checkpoint-model': Case(
        'a checkpoint of another model (SAR-R34 weights for SAR-R50)', 'ValueError',
        'checkpoint <path> does not fit the model SARResNet of this config: <n> weights of the '
        'model are missing from it (<keys>); <n> weights differ in shape (<keys>). Is it a '
        'checkpoint of another model or config?',
        _checkpoint_of_another_model),
    'checkpoint-truncated': Case(
        '`--resume` from a truncated checkpoint', 'ValueError',
        '--resume checkpoint <path> is truncated or not a torch checkpoint', _truncated_resume),
    'nan-loss': Case(
        'a NaN loss during training', 'FloatingPointError',
        'non-finite loss at iteration 25 (epoch 1): loss=nan, loss_fit=nan, loss_aux=0; training '
        'stopped '
        'before saving: the last checkpoint written, <path>/iter_20.pth, is kept', _nan_loss),
    'framework': Case(
        'a config for a framework that is not installed (mmaction2 missing)', 'ModuleNotFoundError',
        "This config (default_scope='mmaction') needs mmaction2 (import name 'mmaction'), which is "
        "not installed. Install it with `pip install 'mmdynamic[action]'`", _missing_framework),
    'config-missing': Case(
        'a config file that does not exist', 'FileNotFoundError', 'config file not found: <path>',
        _missing_config),
    'unknown-type': Case(
        'an unknown model type in a config', 'KeyError',
        'SARResNet50 is not in the mmpretrain::model registry.', _unknown_type),
    'amp-cpu': Case(
        '`--amp` without a GPU', 'RuntimeError',
        "--amp needs a CUDA GPU: MMEngine's AmpOptimWrapper does not run on CPU.", _amp_on_cpu),
}


def test_video_shorter_than_the_candidates_repeats_frames():
    """Not an error: a video with fewer frames than T_0 gives every frame at least once, in order,
    with repeats (mmaction2's segment sampling), in training and at test."""
    from mmdynamic.datasets.transforms import SampleGlanceAndFocusFrames
    for test_mode in (False, True):
        out = SampleGlanceAndFocusFrames(4, 12, test_mode=test_mode)(
            dict(total_frames=5, start_index=0))
        candidates = out['frame_inds'][4:]
        assert len(candidates) == 12 and set(candidates.tolist()) <= set(range(5))
        assert (candidates[1:] >= candidates[:-1]).all()
        assert len(set(candidates.tolist())) == 5


def _pattern(message: str) -> str:
    return '.*?'.join(re.escape(part) for part in re.split(r'<[^>]+>', message))


@pytest.mark.parametrize('name', sorted(CASES))
def test_bad_input_gives_the_documented_error(name, tmp_path, demo_root):
    case = CASES[name]
    with pytest.raises(Exception) as info:
        case.trigger(tmp_path, demo_root)
    assert type(info.value).__name__ == case.error, f'{name}: {info.value!r}'
    text = str(info.value)
    assert re.search(_pattern(case.message), text, re.S), f'{name}: {text}'


def _code(cell: str) -> str:
    """The text of a markdown code span (double backticks when the text holds one)."""
    if cell.startswith('`` ') and cell.endswith(' ``'):
        return cell[3:-3]
    return cell[1:-1] if cell.startswith('`') and cell.endswith('`') else cell


def _span(text: str) -> str:
    return f'`` {text} ``' if '`' in text else f'`{text}`'


def readme_table() -> Dict[str, tuple]:
    """Rows ``| id | bad input | error | message |`` of the README's bad-input table."""
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('## Bad input', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split(' | ')]
        if len(cells) == 4 and cells[0].startswith('`') and cells[0] != '`id`':
            rows[cells[0].strip('`')] = (_code(cells[2]), _code(cells[3]))
    return rows


def test_readme_table_lists_every_case_with_its_message():
    rows = readme_table()
    assert sorted(rows) == sorted(CASES)
    for name, case in CASES.items():
        assert rows[name] == (case.error, case.message.replace('|', '\\|')), name
    assert len(rows) >= 25
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        assert render_table() in f.read(), 'regenerate the table: python -m tests.test_bad_input'


def render_table() -> str:
    lines = ['| `id` | bad input | error | message |', '|---|---|---|---|']
    for name, case in CASES.items():
        lines.append(f'| `{name}` | {case.what} | {_span(case.error)} | '
                     f'{_span(case.message)} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    print(render_table())
    print(json.dumps(len(CASES)))
