# Copyright (c) mmdynamic contributors. All rights reserved.
"""Check that every released official checkpoint layout converts, loads strictly and runs through
``tools/test.py``, without the released files: for each released setting, write a file in the official
layout (key names, nesting, shapes and full size of the released model; random values) named like the
released file, convert it with the method's converter (config picked by the converter), load the result
strictly into the config's model and evaluate it with ``tools/test.py`` on the demo data (a few samples,
the checkpoint's own classes; ``--budget`` for the step-wise models).

Random weights give chance-level metrics: the check is that the whole path runs, not the accuracy.

Example:
    python tools/misc/check_released_layouts.py                       # every released setting
    python tools/misc/check_released_layouts.py --only sar_cifar100_r32 mgnet_r18_in100
    python tools/misc/check_released_layouts.py --list
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import torch  # noqa: E402

CONVERTERS = osp.join(REPO, 'tools', 'model_converters')


class Setting(NamedTuple):
    """One released checkpoint.

    Args:
        name (str): Short name (``--only``).
        method (str): Converter name (``tools/model_converters/<method>_official_to_mmdynamic.py``).
        filename (str): The released file's name (the converters read dataset / P / T from it).
        config (str): The config the converter must pick (relative to the repository).
        data (str): Demo data task: ``'cls'`` or ``'video'``.
        writer (str): Name of the function of this module that writes the official file
            (``writer(path, setting)``).
        kwargs (dict): What the writer needs (architecture, setting, classes, ...).
        stepwise (bool): Evaluate with ``--budget`` (one budget between the first and last exit).
    """
    name: str
    method: str
    filename: str
    config: str
    data: str
    writer: str
    kwargs: dict
    stepwise: bool = True


def _gfnet(name, arch, patch, steps, epochs):
    short = {'resnet50': 'r50', 'densenet121': 'densenet121', 'densenet169': 'densenet169',
             'densenet201': 'densenet201', 'regnety_600m': 'regnety-600mf',
             'regnety_800m': 'regnety-800mf', 'regnety_1.6g': 'regnety-1.6gf',
             'mobilenetv3_large_100': 'mbv3-l-100', 'mobilenetv3_large_125': 'mbv3-l-125',
             'efficientnet_b2': 'effnet-b2', 'efficientnet_b3': 'effnet-b3'}[arch]
    config = f'configs/gfnet/gfnet-{short}-p{patch}-t{steps}_stage3_4xb64-{epochs}e_in1k.py'
    # GFNet-Pytorch's README links the files without naming them; the converter reads model_name,
    # patch_size and T from the file, not from its name
    return Setting(name, 'gfnet', f'{arch}_patch_size_{patch}_T{steps}.pth.tar', config, 'cls',
                   'write_gfnet', dict(arch=arch, patch_size=patch, num_steps=steps))


UA = 'configs/uniadafocus/'
SETTINGS: List[Setting] = [
    _gfnet('gfnet_r50_p96_t5', 'resnet50', 96, 5, 60),
    _gfnet('gfnet_r50_p128_t5', 'resnet50', 128, 5, 60),
    _gfnet('gfnet_densenet121_p96_t5', 'densenet121', 96, 5, 60),
    _gfnet('gfnet_densenet169_p96_t5', 'densenet169', 96, 5, 60),
    _gfnet('gfnet_densenet201_p96_t5', 'densenet201', 96, 5, 60),
    _gfnet('gfnet_regnety600mf_p96_t5', 'regnety_600m', 96, 5, 60),
    _gfnet('gfnet_regnety800mf_p96_t5', 'regnety_800m', 96, 5, 60),
    _gfnet('gfnet_regnety1.6gf_p96_t5', 'regnety_1.6g', 96, 5, 60),
    _gfnet('gfnet_mbv3l100_p96_t3', 'mobilenetv3_large_100', 96, 3, 90),
    _gfnet('gfnet_mbv3l100_p128_t3', 'mobilenetv3_large_100', 128, 3, 90),
    _gfnet('gfnet_mbv3l125_p128_t3', 'mobilenetv3_large_125', 128, 3, 90),
    _gfnet('gfnet_effnetb2_p128_t4', 'efficientnet_b2', 128, 4, 30),
    _gfnet('gfnet_effnetb3_p128_t4', 'efficientnet_b3', 128, 4, 30),
    _gfnet('gfnet_effnetb3_p144_t4', 'efficientnet_b3', 144, 4, 30),
    Setting('mgnet_r18_in100', 'mgnet', 'mgnet_r18_in100.ckpt',
            'configs/mgnet/mgnet-r18-4x96_4xb64-onecycle-400e_in100.py', 'cls', 'write_mgnet',
            dict(hparams=dict(arch='resnet18', n_iter=4, scale=2.33, alpha=0.6, s=0.02))),
    Setting('ffnet_r18_in100', 'mgnet', 'ffnet_r18_in100.ckpt',
            'configs/mgnet/ffnet-r18_4xb64-onecycle-400e_in100.py', 'cls', 'write_mgnet',
            dict(hparams=dict(arch='resnet18', n_iter=1, scale=1.0, alpha=0.0, s=0.02)),
            stepwise=False),
    Setting('uniadafocus_actnet_p128', 'uniadafocus', 'actnet_p128.pth.tar',
            UA + 'uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py', 'video',
            'write_uniadafocus', dict(setting='mn2r50')),
    Setting('uniadafocus_fcvid_p128', 'uniadafocus', 'fcvid_p128.pth.tar',
            UA + 'uniadafocus_mn2-r50-p128_4xb16-50e_fcvid-rgb.py', 'video', 'write_uniadafocus',
            dict(setting='mn2r50')),
    Setting('uniadafocus_minik_p128', 'uniadafocus', 'minik_p128.pth.tar',
            UA + 'uniadafocus_mn2-r50-p128_4xb16-50e_minikinetics-rgb.py', 'video',
            'write_uniadafocus', dict(setting='mn2r50')),
    Setting('uniadafocus_tsm_sthv1_p128_8and12', 'uniadafocus', 'sthv1_p128_8and12.pth.tar',
            UA + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb.py', 'video',
            'write_uniadafocus', dict(setting='tsm')),
    Setting('uniadafocus_tsm_jester_p128_8and12', 'uniadafocus', 'jester_p128_8and12.pth.tar',
            UA + 'uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_jester-rgb.py', 'video',
            'write_uniadafocus', dict(setting='tsm')),
    Setting('uniadafocus_x3d_k400_p128_16and32', 'uniadafocus', 'kinetics400_p128_16and32.pth.tar',
            UA + 'uniadafocus-x3d_x3ds-x3dl-p128-16+32_4xb16-50e_kinetics400-rgb.py', 'video',
            'write_uniadafocus', dict(setting='x3d')),
    Setting('adafocusv2_actnet_p128_mbv2', 'adafocusv2', 'actnet_p128_mbv2.pth.tar',
            UA + 'adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py', 'video',
            'write_adafocusv2', dict(setting='mbv2', classes=200)),
    Setting('adafocusv2_actnet_p128_res50', 'adafocusv2', 'actnet_p128_res50.pth.tar',
            UA + 'adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py', 'video',
            'write_adafocusv2', dict(setting='res50', classes=200)),
    Setting('adafocusv2_tsm_sthv1_p128', 'adafocusv2', 'sthv1_p128.pth.tar',
            UA + 'adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py', 'video',
            'write_adafocusv2', dict(setting='tsm', classes=174)),
    Setting('adafocusv2_tsm_jester_p128', 'adafocusv2', 'jester_p128.pth.tar',
            UA + 'adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_jester-rgb.py', 'video',
            'write_adafocusv2', dict(setting='tsm', classes=27)),
    Setting('sar_in1k_r50_att', 'sar', 'sar_resnet50_1attFuse_checkpoint.pth.tar',
            'configs/sar/sar-r50-g2s2a2b1-t0.5_4xb64-200e_in1k.py', 'cls', 'write_sar',
            dict(setting='imagenet'), stepwise=False),
    Setting('sar_cifar100_r32', 'sar', 'sar_resnet32_cifar100_checkpoint.pth.tar',
            'configs/sar/sar-resnet32-g2a2b1-t0.5_1xb128-300e_cifar100.py', 'cls', 'write_sar',
            dict(setting='cifar'), stepwise=False),
]
BY_NAME = OrderedDict((s.name, s) for s in SETTINGS)
# demo samples evaluated per run (the weights stay at full size: each run well under a minute here)
NUM_SAMPLES = dict(cls=8, video=4)


# ------------------------------------------------------------------------------------------------
# writing the official files (the builders of mmdynamic.testing.official_layouts)
# ------------------------------------------------------------------------------------------------
def load_converter(method: str):
    """The converter script of ``method`` as a module."""
    path = osp.join(CONVERTERS, f'{method}_official_to_mmdynamic.py')
    spec = importlib.util.spec_from_file_location(f'{method}_official_to_mmdynamic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _our_model(config: str) -> torch.nn.Module:
    from mmdynamic.utils.official_converter import build_model_from_config
    return build_model_from_config(osp.join(REPO, config))


def write_gfnet(path: str, setting: Setting) -> None:
    """The 13-key released GFNet file (``module.``-prefixed encoders)."""
    from mmdynamic.testing.official_layouts.gfnet import official_gfnet_file
    torch.save(official_gfnet_file(_our_model(setting.config), **setting.kwargs), path)


def write_mgnet(path: str, setting: Setting) -> None:
    """A PyTorch Lightning checkpoint (``model.`` keys under ``state_dict``, hyper_parameters)."""
    from mmdynamic.testing.official_layouts.mgnet import lightning_file, official_state
    from mmdynamic.testing.official_layouts.uniadafocus import _perturb
    state = _perturb(official_state(_our_model(setting.config).state_dict()))
    lightning_file(path, state, dict(setting.kwargs['hparams'], lr=0.1, max_epochs=400))


def write_uniadafocus(path: str, setting: Setting) -> None:
    """``main.py``'s file: DDP ``module.`` keys under ``state_dict``, epoch / arch / best_prec1."""
    from mmdynamic.testing.official_layouts import uniadafocus as layouts
    kind = setting.kwargs['setting']
    ours = _our_model(setting.config).state_dict()
    if kind == 'mn2r50':
        state = layouts.mn2r50_official(ours)['state']
    elif kind == 'tsm':
        state = layouts.tsm_official(ours)['state']
    else:
        state = layouts.x3d_official(ours)
    torch.save({'epoch': 49, 'arch': 'resnet50', 'best_prec1': 0.0,
                'state_dict': OrderedDict(('module.' + k, v) for k, v in state.items())}, path)


def write_adafocusv2(path: str, setting: Setting) -> None:
    """``main_v2.py`` (``state_dict`` only) or TSM ``main.py`` (epoch, arch, best_prec1) file."""
    from mmdynamic.testing.official_layouts.adafocusv2 import layout, random_state
    kind, classes = setting.kwargs['setting'], setting.kwargs['classes']
    state = OrderedDict(('module.' + k, v) for k, v in random_state(layout(kind, classes)).items())
    obj = {'state_dict': state}
    if kind == 'tsm':
        obj.update(epoch=50, arch='resnet50', best_prec1=0.0)
    torch.save(obj, path)


def write_sar(path: str, setting: Setting) -> None:
    """The official ``save_checkpoint`` dict (``model``, ``hyper_set``, ``module.`` state_dict)."""
    from mmdynamic.testing.official_layouts.sar import _checkpoint, _cifar, _hyper_set
    sar = load_converter('sar')
    if setting.kwargs['setting'] == 'cifar':
        layout, name, hyper_set = _cifar(sar)
    else:
        layout = sar.official_imagenet_layout('bottleneck', (3, 4, 6, 3))
        name, hyper_set = 'sar_resnet50_1attFuse', _hyper_set()
    torch.save(_checkpoint(layout, name, hyper_set, seed=1), path)


# ------------------------------------------------------------------------------------------------
# the demo data
# ------------------------------------------------------------------------------------------------
def ensure_demo_data(root: str, task: str) -> str:
    """``<root>/<task>`` (written by ``tools/misc/make_demo_data.py`` if missing)."""
    folder = osp.join(root, task)
    if not osp.isdir(folder):
        from mmdynamic.datasets import make_demo_data
        make_demo_data(root, [task])
    return folder


def _input_size(pipeline: Sequence[dict]) -> int:
    for step in pipeline:
        if 'crop_size' in step:
            size = step['crop_size']
            return int(size if isinstance(size, int) else size[0])
    return 32  # CIFAR: the images as they are


def demo_data_config(config: str, demo_root: str, task: str) -> str:
    """Python text of a config that inherits ``config`` and swaps only its data part for the demo
    data: the test (and val) dataloader's dataset and a test pipeline that gives the model the input
    its own test pipeline gives (``cls``: the config's pipeline on the demo images, or
    load + resize for CIFAR's in-memory pipeline; ``video``: the config's frame sampler and
    resize / crop on the demo mp4 videos, decoded by decord, with the config's label format)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    pipeline = [dict(step) for step in cfg.test_dataloader.dataset.pipeline]
    folder = osp.join(demo_root, task)
    if task == 'cls':
        if not any(step['type'] == 'LoadImageFromFile' for step in pipeline):
            size = _input_size(pipeline)
            pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(size, size))
                        ] + pipeline
        dataset = dict(_delete_=True, type='CustomDataset', data_root=folder, data_prefix='val',
                       with_label=True, pipeline=pipeline)
        if '_scope_' in cfg.test_dataloader.dataset:
            dataset['_scope_'] = cfg.test_dataloader.dataset['_scope_']
    else:
        out = [dict(type='DecordInit')]
        for step in pipeline:
            if step['type'] in ('DecordInit', 'OpenCVInit'):
                continue
            if step['type'] in ('RawFrameDecode', 'OpenCVDecode'):
                step = dict(type='DecordDecode')
            out.append(step)
        dataset = dict(_delete_=True, type='VideoDataset', ann_file=f'{folder}/val_list.txt',
                       data_prefix=dict(video=folder), pipeline=out, test_mode=True)
        # the label format the evaluator expects (ActivityNet / FCVID mAP: one-hot multi-class)
        for key in ('multi_class', 'num_classes'):
            if key in cfg.test_dataloader.dataset:
                dataset[key] = cfg.test_dataloader.dataset[key]
    loader = dict(dataset=dataset, num_workers=0, persistent_workers=False)
    return '\n'.join([
        f'# {config} on the demo data (written by tools/misc/check_released_layouts.py)',
        f'_base_ = [{osp.join(REPO, config)!r}]',
        f'test_dataloader = {loader!r}',
        'val_dataloader = test_dataloader', ''])


def budget_for(config: str, task: str) -> Optional[float]:
    """One budget (GMACs) halfway between the first and the last exit of the config's model."""
    from mmengine.config import Config
    model = _our_model(config)
    if not hasattr(model, 'exit_macs'):
        return None
    cfg = Config.fromfile(osp.join(REPO, config))
    size = _input_size(cfg.test_dataloader.dataset.pipeline)
    if task == 'cls':
        shape = (3, size, size)
    else:
        sampler = next(s for s in cfg.test_dataloader.dataset.pipeline
                       if s['type'] in ('SampleFrames', 'SampleGlanceAndFocusFrames'))
        if sampler['type'] == 'SampleFrames':
            frames = sampler['num_clips'] * sampler.get('clip_len', 1)
        else:  # the glance clip, then the focus candidates
            frames = sampler['num_glance'] + sampler['num_candidates']
        shape = (frames, 3, size, size)
    costs = model.exit_macs(shape)
    return round((costs[0] + costs[-1]) / 2e9, 3)


# ------------------------------------------------------------------------------------------------
# one setting
# ------------------------------------------------------------------------------------------------
def _run(args: List[str], log: str, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    with open(log, 'w', encoding='utf-8') as f:
        f.write(f'$ {" ".join(args)}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}')
    return proc


def _main_metric(metrics: Dict[str, Any]) -> str:
    for pattern in (r'.*top1$', r'.*mean_average_precision$', r'.*top1.*', r'.*accuracy.*'):
        for key, value in metrics.items():
            if re.fullmatch(pattern, key) and isinstance(value, (int, float)):
                return f'{key.split("/")[-1]} {value:.2f}'
    return ', '.join(f'{k} {v}' for k, v in list(metrics.items())[:1])


def check_setting(setting: Setting, work_dir: str, demo_root: str,
                  num_samples: Optional[int] = None, timeout: int = 600,
                  keep_files: bool = False) -> Dict[str, Any]:
    """Write, convert, load strictly and evaluate one released setting.

    Args:
        setting (Setting): The released setting.
        work_dir (str): Where its files and logs go (``<work_dir>/<setting.name>``).
        demo_root (str): The demo data root (``cls`` / ``video`` written if missing).
        num_samples (int, optional): Demo test samples evaluated (default: ``NUM_SAMPLES`` of the
            data task: 8 images, 4 videos).
        timeout (int): Seconds each subprocess may take.
        keep_files (bool): Keep the official and converted files (full size: up to a few hundred
            MB each); by default they are removed once checked, the logs and metrics stay.

    Returns:
        dict: ``name``, ``ok``, ``keys`` (tensors converted), ``strict`` (loaded strictly),
        ``config`` (the picked one), ``metric``, ``budget``, ``seconds``, ``error``.
    """
    from mmdynamic.utils.official_converter import build_model_from_config
    num_samples = num_samples or NUM_SAMPLES[setting.data]
    start = time.time()
    out_dir = osp.join(work_dir, setting.name)
    os.makedirs(out_dir, exist_ok=True)
    row = dict(name=setting.name, ok=False, keys=None, strict=False, config=None, metric='',
               budget=None, seconds=0.0, error='')
    try:
        src = osp.join(out_dir, setting.filename)
        globals()[setting.writer](src, setting)
        dst = osp.join(out_dir, 'converted.pth')
        proc = _run([osp.join(CONVERTERS, f'{setting.method}_official_to_mmdynamic.py'), src,
                     dst], osp.join(out_dir, 'convert.log'), timeout)
        if proc.returncode != 0:
            raise RuntimeError(f'conversion failed: {(proc.stderr or proc.stdout).strip()[-800:]}')
        ckpt = torch.load(dst, map_location='cpu', weights_only=True)
        row['keys'] = len(ckpt['state_dict'])
        picked = osp.relpath(ckpt['meta']['config'], REPO) if osp.isabs(
            ckpt['meta']['config']) else ckpt['meta']['config']
        row['config'] = picked
        if osp.normpath(picked) != osp.normpath(setting.config):
            raise RuntimeError(f'the converter picked {picked}, expected {setting.config}')
        model = build_model_from_config(osp.join(REPO, setting.config))
        model.load_state_dict(ckpt['state_dict'], strict=True)
        row['strict'] = True
        del model

        ensure_demo_data(demo_root, setting.data)
        config = osp.join(out_dir, 'demo_data_config.py')
        with open(config, 'w', encoding='utf-8') as f:
            f.write(demo_data_config(setting.config, demo_root, setting.data))
        cmd = ['tools/test.py', config, dst, '--work-dir', osp.join(out_dir, 'test'),
               '--metrics-out', osp.join(out_dir, 'metrics.json'), '--cfg-options',
               f'test_dataloader.dataset.indices={num_samples}',
               f'val_dataloader.dataset.indices={num_samples}',
               'test_dataloader.batch_size=2', 'val_dataloader.batch_size=2']
        if setting.stepwise:
            row['budget'] = budget_for(setting.config, setting.data)
            if row['budget'] is not None:
                cmd += ['--budget', str(row['budget']), '--fit-on', 'val']
        proc = _run(cmd, osp.join(out_dir, 'test.log'), timeout)
        if proc.returncode != 0:
            raise RuntimeError(f'tools/test.py failed: {(proc.stderr or proc.stdout).strip()[-800:]}')
        with open(osp.join(out_dir, 'metrics.json'), encoding='utf-8') as f:
            metrics = json.load(f)
        if not metrics:
            raise RuntimeError('tools/test.py wrote no metrics')
        row['metric'] = _main_metric(metrics)
        found = re.search(r'budget [\d.]+ GMACs: (.+?) on the test data', proc.stdout + proc.stderr)
        if found:
            row['metric'] += f'; at the budget: {found.group(1)}'
        elif row['budget'] is not None:
            raise RuntimeError('tools/test.py --budget reported no result at the budget')
        row['ok'] = True
    except Exception as exc:  # noqa: BLE001  (reported in the table, the others still run)
        row['error'] = f'{type(exc).__name__}: {exc}'
    finally:
        if not keep_files:
            for name in (setting.filename, 'converted.pth'):
                if osp.isfile(osp.join(out_dir, name)):
                    os.remove(osp.join(out_dir, name))
    row['seconds'] = round(time.time() - start, 1)
    return row


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """A Markdown table: setting, keys converted, strict load, test.py metric, seconds."""
    lines = ['| setting | config picked | keys converted | strict load | tools/test.py metric '
             '(random weights, demo data) | budget (GMACs) | seconds |',
             '|---|---|---|---|---|---|---|']
    for row in rows:
        metric = row['metric'] if row['ok'] else 'FAILED: ' + ' '.join(row['error'].split())[-200:]
        metric = metric.replace('|', '/')
        lines.append(f"| {row['name']} | `{osp.basename(row['config'] or '-')}` | "
                     f"{row['keys'] if row['keys'] is not None else '-'} | "
                     f"{'OK' if row['strict'] else 'no'} | {metric} | "
                     f"{row['budget'] if row['budget'] is not None else '-'} | {row['seconds']} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', nargs='+', metavar='NAME', choices=list(BY_NAME),
                        help='check only these settings (default: all; --list shows them)')
    parser.add_argument('--list', action='store_true', help='list the settings and exit')
    parser.add_argument('--work-dir', default='work_dirs/released_layouts')
    parser.add_argument('--demo-root', default='data/demo',
                        help='demo data root (written by tools/misc/make_demo_data.py if missing)')
    parser.add_argument('--num-samples', type=int,
                        help='demo test samples per run (default: 8 images, 4 videos)')
    parser.add_argument('--timeout', type=int, default=600, help='seconds per subprocess')
    parser.add_argument('--json-out', help='also write the rows as JSON')
    parser.add_argument('--keep-files', action='store_true',
                        help='keep the official and converted files (default: removed once checked)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    if args.list:
        for s in SETTINGS:
            print(f'{s.name:<36} {s.filename:<44} {s.config}')
        return []
    settings = [BY_NAME[n] for n in args.only] if args.only else SETTINGS
    demo_root = osp.abspath(args.demo_root)
    rows = []
    for setting in settings:
        row = check_setting(setting, osp.abspath(args.work_dir), demo_root, args.num_samples,
                            args.timeout, args.keep_files)
        status = 'ok' if row['ok'] else f'FAILED ({row["error"][:300]})'
        print(f'[{setting.name}] {status} in {row["seconds"]} s', flush=True)
        rows.append(row)
    print(format_table(rows))
    if args.json_out:
        with open(args.json_out, 'w', encoding='utf-8') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    rows = main()
    sys.exit(0 if all(r['ok'] for r in rows) else 1)
