# Copyright (c) mmdynamic contributors. All rights reserved.
"""Convert a checkpoint of the official AdaFocusV2 code (LeapLabTHU/AdaFocusV2) into an mmdynamic
checkpoint (``official_checkpoints.md``, "AdaFocusV2, MobileNet-V2 + ResNet-50" and "AdaFocusV2-TSM").

Both released settings:

- **MN2 + R50** (and the ``res50`` glance; ActivityNet, FCVID, Mini-Kinetics; ``main_v2.py``): the
  file holds ``state_dict`` only, every key under ``module.``. The glance encoder is told apart by its
  keys: ``global_CNN.features.*`` (tonylins MobileNet-V2, ``--glance_arch mbv2``) or
  ``global_CNN.layer*`` (torchvision ResNet-50 on 96 x 96 frames, ``--glance_arch res50``). Our model:
  :class:`~mmdynamic.models.action.AdaFocusV2` (configs ``adafocusv2_{mn2,r50}-r50-p*``); the official
  classifier reads ``cat([global, local])``, global first, and so does our ``fusion_head``: its MLP
  weight is copied as is (no column permutation).
- **TSM** (Something-Something V1/V2, Jester; ``main.py``): ``epoch``, ``arch``, ``state_dict``,
  ``optimizer``, ``best_prec1``; TSM-MobileNet-V2 / TSM-ResNet-50 encoders (``.net.`` wrappers of the
  shifted convs), two heads per encoder (``new_fc`` -> our prediction heads ``fc_global`` /
  ``fc_local``; ``new_new_fc`` -> our frame heads ``fc_global_frame`` / ``fc_local_frame``) and the
  MLP policy ``policy_stn.{0,1,4,5,7,8,10}``. Our model:
  :class:`~mmdynamic.models.action.AdaFocusV2TSM` (configs ``adafocusv2-tsm_mn2-r50-p*``).
  ``epoch``, ``best_prec1`` and ``arch`` are kept in ``meta['adafocusv2_official']``.

Dropped (with a note in the report and in ``meta['dropped']``): the unused 1000-way ImageNet heads of
the MN2 + R50 encoders (``global_CNN.classifier.*`` or, res50 glance, ``global_CNN.fc.*``, and
``local_CNN.fc.*``). The optimizer state is not read.

The config is picked from the checkpoint: the setting from the keys, the dataset from the number of
classes (239: FCVID; 27: Jester) and, where the classes do not tell (200: ActivityNet or Mini-Kinetics;
174: Sth-Sth V1 or V2), from the released file name (``actnet_p128_mbv2.pth.tar``,
``minik_p128_res50.pth.tar``, ``sthv2_p144.pth.tar``); the patch size P (which changes no tensor) from
the file name too. Otherwise pass ``--config``. A config whose ``patch_size`` differs from the P of
the file name is refused (``--allow-mismatch`` turns it into a warning): it would load strictly and
still not be the released model.

Example:
    python tools/model_converters/adafocusv2_official_to_mmdynamic.py \
        actnet_p128_mbv2.pth.tar work_dirs/adafocusv2_actnet_p128_mbv2.pth
    python tools/model_converters/adafocusv2_official_to_mmdynamic.py \
        ckpt.best.pth.tar adafocusv2_tsm_sthv1_p128.pth \
        --config configs/uniadafocus/adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py
"""
import glob
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmdynamic.utils.official_converter import (Rule, convert_checkpoint,  # noqa: E402
                                                converter_arg_parser, load_official, run_cli,
                                                unwrap_state_dict)
from mmdynamic.utils.official_encoder_rules import (IMAGENET_HEAD, MBV2_BLOCKS,  # noqa: E402,F401
                                                    MBV2_RESIDUAL_BLOCKS, PARAM,
                                                    mobilenet_v2_rules, resnet_rules)

METHOD = 'AdaFocusV2'
CONFIG_DIR = osp.join(REPO, 'configs', 'uniadafocus')
SETTINGS = ('mbv2', 'res50', 'tsm')

# the MN2 + R50 model (main_v2.py): heads, GRU policy, classifier (global first, as ours)
_V2_HEAD_RULES = [
    Rule(rf'global_CNN_fc\.1\.{PARAM}', r'fc_global.1.\1'),
    Rule(rf'local_CNN_fc\.1\.{PARAM}', r'fc_local.1.\1'),
    Rule(rf'policy_stn\.encoder\.([0145])\.{PARAM}', r'policy.embed.\1.\2'),
    Rule(rf'policy_stn\.gru\.{PARAM}', r'policy.gru.\1'),
    Rule(rf'policy_stn\.fc\.0\.{PARAM}', r'policy.out.\1'),
    Rule(rf'classifier\.mlp\.layers\.([01])\.{PARAM}', r'fusion_head.mlp.\1.\2'),
    Rule(rf'classifier\.classifiers\.(\d+)\.1\.{PARAM}', r'fusion_head.heads.\1.\2'),
]

RULES: Dict[str, List[Rule]] = {
    # --glance_arch mbv2: tonylins MobileNet-V2 + torchvision ResNet-50
    'mbv2': ([Rule(r'global_CNN\.classifier\..+', None, IMAGENET_HEAD)]
             + mobilenet_v2_rules(r'global_CNN\.features\.', 'backbone.')
             + resnet_rules(r'local_CNN\.', 'local_backbone.') + _V2_HEAD_RULES),
    # --glance_arch res50: torchvision ResNet-50 on 96 x 96 frames + torchvision ResNet-50
    'res50': (resnet_rules(r'global_CNN\.', 'backbone.')
              + resnet_rules(r'local_CNN\.', 'local_backbone.') + _V2_HEAD_RULES),
    # AdaFocusV2-TSM (main.py): TSN-wrapped TSM encoders, two heads each, MLP policy
    'tsm': ([Rule(rf'global_CNN\.new_fc\.{PARAM}', r'fc_global.1.\1'),
             Rule(rf'global_CNN\.new_new_fc\.{PARAM}', r'fc_global_frame.1.\1'),
             Rule(rf'local_CNN\.new_fc\.{PARAM}', r'fc_local.1.\1'),
             Rule(rf'local_CNN\.new_new_fc\.{PARAM}', r'fc_local_frame.1.\1')]
            + mobilenet_v2_rules(r'global_CNN\.base_model\.features\.', 'backbone.', tsm=True)
            + resnet_rules(r'local_CNN\.base_model\.', 'local_backbone.', tsm=True, head_note=None)
            + [Rule(rf'policy_stn\.([0145])\.{PARAM}', r'policy.embed.\1.\2'),
               Rule(rf'policy_stn\.7\.{PARAM}', r'policy.hidden.0.\1'),
               Rule(rf'policy_stn\.8\.{PARAM}', r'policy.hidden.1.\1'),
               Rule(rf'policy_stn\.10\.{PARAM}', r'policy.out.\1')]),
}

# the released datasets (as our config names end) -> (classes, how the released file names start)
_V2_DATASETS = {
    'activitynet': (200, ('actnet', 'activitynet', 'anet')),
    'fcvid': (239, ('fcvid', )),
    'minikinetics': (200, ('minik', 'mini_k', 'mini-k', 'minikinetics', 'mini_kinetics')),
}
_TSM_DATASETS = {
    'sthv1': (174, ('sthv1', 'something_v1', 'somethingv1')),
    'sthv2': (174, ('sthv2', 'something_v2', 'somethingv2')),
    'jester': (27, ('jester', )),
}


def detect_setting(state: Dict[str, torch.Tensor]) -> str:
    """The official setting of an unwrapped state dict: 'mbv2', 'res50' or 'tsm'.

    Raises:
        ValueError: For a file of another method (Uni-AdaFocus, GFNet, ...), naming what was found.
    """
    if 'policy_stn.gru.weight_ih_l0' in state:
        if any(k.startswith('global_CNN.features.') for k in state):
            return 'mbv2'
        if any(k.startswith('global_CNN.layer') for k in state):
            return 'res50'
        raise ValueError('an AdaFocusV2 (GRU policy) checkpoint whose glance encoder is neither '
                         'MobileNet-V2 (global_CNN.features.*) nor ResNet-50 (global_CNN.layer*)')
    if 'policy_stn.0.weight' in state and any(k.startswith('global_CNN.base_model.') for k in state):
        return 'tsm'
    if any(k.startswith(('spatial_policy.', 'temporal_policy.')) for k in state):
        raise ValueError('this is a Uni-AdaFocus checkpoint (spatial_policy / temporal_policy keys), '
                         'not AdaFocusV2: use tools/model_converters/'
                         'uniadafocus_official_to_mmdynamic.py')
    prefixes = sorted({k.split('.', 1)[0] for k in state})
    raise ValueError('not an official AdaFocusV2 checkpoint: expected policy_stn.gru.* (MN2 + R50) '
                     'or policy_stn.0.* with global_CNN.base_model.* (TSM); its top-level key '
                     f'prefixes are {prefixes[:12]}')


def num_classes_of(state: Dict[str, torch.Tensor], setting: str) -> int:
    """The number of classes of the checkpoint (rows of FC_G)."""
    key = 'global_CNN.new_fc.weight' if setting == 'tsm' else 'global_CNN_fc.1.weight'
    if key not in state:
        raise ValueError(f'the {setting} checkpoint has no {key}: cannot tell its classes')
    return int(state[key].shape[0])


def _name_tokens(name: str) -> List[str]:
    base = osp.basename(name).lower()
    for ext in ('.pth.tar', '.pth', '.tar', '.pt', '.ckpt'):
        if base.endswith(ext):
            base = base[:-len(ext)]
            break
    return [t for t in re.split(r'[_\-. ]+', base) if t]


def patch_size_from_name(name: Optional[str]) -> Optional[int]:
    """P of a released file name (``actnet_p128_mbv2`` -> 128), None if the name does not say."""
    if not name:
        return None
    sizes = {int(t[1:]) for t in _name_tokens(name) if re.fullmatch(r'p\d+', t)}
    return sizes.pop() if len(sizes) == 1 else None


def dataset_from_name(name: Optional[str], candidates: Dict[str, Tuple[int, tuple]]) -> List[str]:
    """The datasets of ``candidates`` whose released-file prefixes appear in ``name``."""
    if not name:
        return []
    base = osp.basename(name).lower()
    tokens = _name_tokens(name)
    found = []
    for dataset, (_, prefixes) in candidates.items():
        if any(t in prefixes for t in tokens) or any(base.startswith(p + '_') for p in prefixes):
            found.append(dataset)
    return found


def _config_pattern(setting: str, patch: str, dataset: str) -> str:
    if setting == 'tsm':
        return osp.join(CONFIG_DIR, f'adafocusv2-tsm_mn2-r50-p{patch}-8+12_*_{dataset}-rgb.py')
    glance = 'mn2' if setting == 'mbv2' else 'r50'
    return osp.join(CONFIG_DIR, f'adafocusv2_{glance}-r50-p{patch}_*_{dataset}-rgb.py')


def pick_config(obj: Any, state: Dict[str, torch.Tensor], src: Optional[str] = None) -> str:
    """The config of the released model that the checkpoint is.

    Args:
        obj (Any): The loaded official file (unused: the state dict tells the setting).
        state (dict): Its unwrapped state dict.
        src (str, optional): The file name (released names tell the dataset and P).

    Returns:
        str: A config path under ``configs/uniadafocus``.

    Raises:
        ValueError: When the checkpoint and its name do not determine one config; the message says
            which ``--config`` to pass.
    """
    setting = detect_setting(state)
    classes = num_classes_of(state, setting)
    datasets = _TSM_DATASETS if setting == 'tsm' else _V2_DATASETS
    by_classes = [d for d, (c, _) in datasets.items() if c == classes]
    what = f'the AdaFocusV2 {setting} checkpoint ({classes} classes)'
    if not by_classes:
        known = ', '.join(f'{d} {c}' for d, (c, _) in datasets.items())
        raise ValueError(f'{what}: no released {setting} model has {classes} classes ({known}); '
                         'pass --config and --cfg-options model.num_classes=' + str(classes))
    named = [d for d in dataset_from_name(src, datasets) if d in by_classes]
    if len(by_classes) == 1:
        dataset = by_classes[0]
    elif len(named) == 1:
        dataset = named[0]
    else:
        raise ValueError(f'{what} may be {" or ".join(by_classes)}, which have the same classes, and '
                         f'its file name {osp.basename(src or "") or "(none)"!r} does not say which '
                         f'(the released names start with it, e.g. '
                         f'{datasets[by_classes[0]][1][0]}_p128...); pass --config '
                         f'{osp.relpath(_config_pattern(setting, "<P>", "<dataset>"), REPO)}')
    patch = patch_size_from_name(src)
    if patch is None:
        options = sorted(glob.glob(_config_pattern(setting, '*', dataset)))
        if len(options) != 1:
            raise ValueError(
                f'{what}: the patch size P changes no tensor and the file name '
                f'{osp.basename(src or "") or "(none)"!r} does not give it (e.g. _p128_); pass '
                '--config with one of ' + ', '.join(osp.relpath(p, REPO) for p in options))
        return options[0]
    matches = sorted(glob.glob(_config_pattern(setting, str(patch), dataset)))
    if len(matches) != 1:
        raise ValueError(f'{what}: no config for {dataset} at P = {patch} '
                         f'({osp.relpath(_config_pattern(setting, str(patch), dataset), REPO)}); '
                         'pass --config')
    return matches[0]


def _config_model(config: str, cfg_options: Optional[dict]) -> dict:
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg.model


def check_config(config: str, setting: str, src: Optional[str], cfg_options: Optional[dict] = None,
                 allow_mismatch: bool = False) -> List[str]:
    """What the strict key check cannot see: the build options that change no tensor.

    - P: a patch size in the file name must equal the config's ``patch_size``.
    - MN2 + R50: the released models process the frames in the ``--sample`` order
      (``frame_order='bisection'``); the res50 glance reads 96 x 96 frames (``glance_size=96``).

    Args:
        config (str): The config path.
        setting (str): 'mbv2', 'res50' or 'tsm'.
        src (str, optional): The official file name.
        cfg_options (dict, optional): Overrides of the config.
        allow_mismatch (bool): Warn instead of refusing.

    Returns:
        list[str]: The problems found (empty: none).

    Raises:
        ValueError: On a problem unless ``allow_mismatch``.
    """
    model = _config_model(config, cfg_options)
    problems = []
    patch = patch_size_from_name(src)
    if patch is not None and model.get('patch_size') != patch:
        problems.append(f'the file name says P = {patch} but the config has patch_size = '
                        f'{model.get("patch_size")} (P changes no tensor: it would load and give '
                        'other predictions)')
    if setting in ('mbv2', 'res50') and model.get('frame_order', 'temporal') != 'bisection':
        problems.append("the released MN2 + R50 models process the frames in the official --sample "
                        "order: set model.frame_order='bisection' (got "
                        f"{model.get('frame_order', 'temporal')!r})")
    named = [a for a in ('mbv2', 'res50') if a in _name_tokens(src or '')]
    if setting in ('mbv2', 'res50') and named and named != [setting]:
        problems.append(f'the file name says {named[0]} but its keys hold the {setting} glance')
    if setting == 'res50' and model.get('glance_size') != 96:
        problems.append('the res50 glance reads 96 x 96 frames: set model.glance_size=96 (got '
                        f'{model.get("glance_size")!r})')
    if problems and not allow_mismatch:
        raise ValueError(f'{osp.basename(config)} does not match the official {setting} model: '
                         + '; '.join(problems) + ' (--allow-mismatch converts anyway)')
    for problem in problems:
        print(f'warning: {problem}')
    return problems


def official_meta(obj: Any, state: Dict[str, torch.Tensor], setting: str,
                  src: Optional[str] = None) -> Dict[str, Any]:
    """What the official file stores beyond the weights, for ``meta['adafocusv2_official']``:
    the setting, the classes, P of the file name and, for TSM files, ``epoch``, ``best_prec1`` and
    ``arch`` (plain numbers and strings; the optimizer state is not kept)."""
    meta: Dict[str, Any] = dict(setting=setting, num_classes=num_classes_of(state, setting))
    patch = patch_size_from_name(src)
    if patch is not None:
        meta['patch_size'] = patch
    if isinstance(obj, dict):
        for key in ('epoch', 'best_prec1', 'arch'):
            value = obj.get(key)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float, str)):
                meta[key] = value
    return meta


def convert(src: str, dst: str, config: Optional[str] = None, cfg_options: Optional[dict] = None,
            allow_mismatch: bool = False) -> dict:
    """Convert an official AdaFocusV2 file.

    Args:
        src (str): The official checkpoint.
        dst (str): The mmdynamic checkpoint to write.
        config (str, optional): The config; None: :func:`pick_config`.
        cfg_options (dict, optional): Overrides of the config.
        allow_mismatch (bool): Warn instead of refusing in :func:`check_config`.

    Returns:
        dict: The ``meta`` written.
    """
    obj = load_official(src)
    state = unwrap_state_dict(obj)
    setting = detect_setting(state)
    if config is None:
        config = pick_config(obj, state, src)
        print(f'config (picked from the checkpoint): {osp.relpath(config, REPO)}')
    check_config(config, setting, src, cfg_options, allow_mismatch)
    extra = dict(adafocusv2_official=official_meta(obj, state, setting, src))
    return convert_checkpoint(src, dst, config, RULES[setting], METHOD, cfg_options=cfg_options,
                              extra_meta=extra)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Command line entry point (see the module docstring); a refusal raises ``ValueError`` (the
    script prints it as ``error: ...`` and exits with status 1)."""
    parser = converter_arg_parser('Convert an official AdaFocusV2 checkpoint (MN2 + R50, res50 '
                                  'glance or TSM) into an mmdynamic checkpoint.')
    parser.add_argument('--allow-mismatch', action='store_true',
                        help='warn instead of refusing a config whose patch size, frame order or '
                        'glance size differs from the official model')
    args = parser.parse_args(argv)
    return convert(args.src, args.dst, args.config, args.cfg_options, args.allow_mismatch)


__all__ = ['RULES', 'detect_setting', 'pick_config', 'check_config', 'convert', 'main']

if __name__ == '__main__':
    run_cli(main)
