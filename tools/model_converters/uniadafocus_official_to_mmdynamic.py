# Copyright (c) mmdynamic contributors. All rights reserved.
"""Convert a checkpoint of the official Uni-AdaFocus code (LeapLabTHU/Uni-AdaFocus) into an mmdynamic
checkpoint.

All three settings of the official code (``../shared/specs/official_checkpoints.md``; the key tables
are the :data:`RULES` of this file, first match wins):

- ``mn2r50``: MobileNet-V2 + ResNet-50 on ActivityNet / FCVID / Mini-Kinetics (``UniAdaFocus``):
  tonylins MobileNet-V2 -> ``backbone``, torchvision ResNet-50 -> ``local_backbone``, the feature-reuse
  classifier ``classifier.*`` -> ``fusion_head.*``; the unused 1000-way heads
  ``global_CNN.classifier`` and ``local_CNN.fc`` are dropped (the only dropped keys);
- ``tsm``: Uni-AdaFocus-TSM on Something-Something V1 / V2 and Jester (``UniAdaFocusTSM``): the same
  backbones with TSM shifts (``.net.`` keys); ``new_fc`` (the prediction heads, on detached features)
  -> ``fc_global.1`` / ``fc_local.1``, ``new_new_fc`` (exit 0 and the auxiliary / temporal losses) ->
  ``fc_global_frame.1`` / ``fc_local_frame.1``;
- ``x3d``: Uni-AdaFocus-X3D on Kinetics-400 (``UniAdaFocusX3D``): SlowFast-named X3D-S / X3D-L ->
  ``backbone`` / ``local_backbone`` (``head.conv_5`` is their last layer, ``conv5``), the X3D heads
  ``head.{lin_5, projection}`` -> ``fc_{global,local}.{0,3}`` (``lin_5``, a 1x1x1 conv, reshaped to a
  Linear), the per-frame copies ``{global,local}_CNN_head.{0,3}`` -> ``fc_{global,local}_frame.{0,3}``.

The setting is read from the keys (``.base_model.`` keys: TSM, ``pathway0`` keys: X3D, else
MobileNet-V2 + ResNet-50), the number of classes from the head shapes and T_G from the spatial
policy's last kernel (TSM / X3D) or the number of glance classifiers (MN2+R50). The patch size P, T_L
(TSM / X3D) and the number of candidates T_0 change no tensor: they come from ``--config``, or from
the released file name (``sthv1_p128_8and12.pth.tar``: Sth-Sth V1, P = 128, T_G = 8, T_L = 12;
``kinetics400_p128_16and32.pth.tar``; for MN2+R50 a name with the data set and ``p<P>``, e.g.
``actnet_p128.pth.tar``); otherwise the converter refuses and says which config to pass. A
``--config`` whose P / T_G / T_L differ from what a released file name says is refused as well (the
weights would load but not give the authors' predictions; ``--allow-mismatch`` warns instead).

What the official file stores beyond the weights (``epoch``, ``best_prec1``, ``arch``) is kept in
``meta['uniadafocus_official']``. The ``optimizer`` and the AMP ``scaler`` state are not read.
The file is read with ``torch.load(weights_only=True)``: tensors and plain containers only.

Example:
    python tools/model_converters/uniadafocus_official_to_mmdynamic.py \
        ckpt/sthv1_p128_8and12.pth.tar uniadafocus-tsm_sthv1_p128_8+12.pth
    python tools/test.py configs/uniadafocus/uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb.py \
        uniadafocus-tsm_sthv1_p128_8+12.pth
"""
import glob
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmdynamic.utils.official_converter import (Rule, convert_checkpoint,  # noqa: E402
                                                converter_arg_parser, load_official, run_cli,
                                                unwrap_state_dict)
from mmdynamic.utils.official_encoder_rules import mobilenet_v2_rules, resnet_rules  # noqa: E402

METHOD = 'Uni-AdaFocus'
CONFIG_DIR = osp.join('configs', 'uniadafocus')

# ------------------------------------------------------------------------------------------------
# shared pieces of the rule tables
# ------------------------------------------------------------------------------------------------
SPATIAL_PARTS = {'0': 'convs.0.conv', '1': 'convs.0.bn', '3': 'convs.1.conv', '4': 'convs.1.bn',
                 '6': 'convs.2.conv', '7': 'convs.2.bn', '9': 'out'}
TEMPORAL_PARTS = {'0': 'convs.0.conv', '1': 'convs.0.bn', '3': 'convs.1.conv', '4': 'convs.1.bn',
                  '6': 'out'}
ENCODERS = {'global': 'backbone', 'local': 'local_backbone'}


def encoder_rules(prefix: str, tsm: bool) -> List[Rule]:
    """f_G (tonylins MobileNet-V2) and f_L (torchvision ResNet-50) under ``<global|local>_CNN.`` +
    ``prefix`` (``''`` or ``'base_model.'`` for TSM), without their ImageNet heads' rules."""
    return (mobilenet_v2_rules(re.escape(f'global_CNN.{prefix}features.'), 'backbone.', tsm)
            + resnet_rules(re.escape(f'local_CNN.{prefix}'), 'local_backbone.', tsm, head_note=None))


POLICY_RULES = [
    Rule(r'spatial_policy\.encoder\.([0134679])\.(.+)',
         lambda m: f'spatial_policy.{SPATIAL_PARTS[m[1]]}.{m[2]}'),
    Rule(r'temporal_policy\.Tconv\.([01346])\.(.+)',
         lambda m: f'temporal_policy.{TEMPORAL_PARTS[m[1]]}.{m[2]}'),
]

# ------------------------------------------------------------------------------------------------
# the three rule tables
# ------------------------------------------------------------------------------------------------
MN2R50_RULES: List[Rule] = [
    Rule(r'global_CNN\.classifier\..+', None,
         'unused 1000-way ImageNet classifier of MobileNet-V2 (the official FC_G is global_CNN_fc)'),
    Rule(r'local_CNN\.fc\..+', None,
         'unused 1000-way ImageNet classifier of ResNet-50 (the official FC_L is local_CNN_fc)'),
    *encoder_rules('', tsm=False),
    Rule(r'global_CNN_fc\.1\.(.+)', r'fc_global.1.\1'),
    Rule(r'local_CNN_fc\.1\.(.+)', r'fc_local.1.\1'),
    Rule(r'aux_fc\.(.+)', r'fc_aux.\1'),
    *POLICY_RULES,
    Rule(r'classifier\.(global|local)_mlp\.layers\.([01])\.(.+)', r'fusion_head.\1_mlp.\2.\3'),
    Rule(r'classifier\.global_classifiers\.(\d+)\.1\.(.+)', r'fusion_head.glance_heads.\1.\2'),
    Rule(r'classifier\.local_classifiers\.(\d+)\.1\.(.+)', r'fusion_head.focus_heads.\1.\2'),
]

TSM_RULES: List[Rule] = [
    Rule(r'global_CNN\.new_fc\.(.+)', r'fc_global.1.\1'),
    Rule(r'local_CNN\.new_fc\.(.+)', r'fc_local.1.\1'),
    Rule(r'global_CNN\.new_new_fc\.(.+)', r'fc_global_frame.1.\1'),
    Rule(r'local_CNN\.new_new_fc\.(.+)', r'fc_local_frame.1.\1'),
    Rule(r'aux_fc\.(.+)', r'fc_aux.\1'),
    *encoder_rules('base_model.', tsm=True),
    *POLICY_RULES,
]


def squeeze_lin5(key: str, tensor: torch.Tensor) -> Dict[str, torch.Tensor]:
    """X3D's ``head.lin_5`` is a 1x1x1 Conv3d (C_out, C_in, 1, 1, 1); ours is a Linear."""
    if tensor.dim() != 5 or tuple(tensor.shape[2:]) != (1, 1, 1):
        raise ValueError(f'{key}: expected a 1x1x1 conv weight (C_out, C_in, 1, 1, 1) for lin_5, '
                         f'got {tuple(tensor.shape)}')
    return {key: tensor.reshape(tensor.shape[:2]).clone()}


_X3D_BLOCK = r'(?P<enc>global|local)_CNN\.s(?P<s>[2-5])\.pathway0_res(?P<j>\d+)\.'


def _x3d_block(part: str):
    def target(match: 're.Match') -> str:
        return (f'{ENCODERS[match["enc"]]}.layer{int(match["s"]) - 1}.{match["j"]}.{part}.'
                f'{match["rest"]}')
    return target


X3D_RULES: List[Rule] = [
    Rule(r'(global|local)_CNN_head\.([03])\.(.+)', r'fc_\1_frame.\2.\3'),
    Rule(r'(global|local)_CNN\.head\.lin_5\.weight', r'fc_\1.0.weight', transform=squeeze_lin5),
    Rule(r'(global|local)_CNN\.head\.projection\.(.+)', r'fc_\1.3.\2'),
    Rule(r'(global|local)_CNN\.head\.conv_5\.(.+)', lambda m: f'{ENCODERS[m[1]]}.conv5.conv.{m[2]}'),
    Rule(r'(global|local)_CNN\.head\.conv_5_bn\.(.+)',
         lambda m: f'{ENCODERS[m[1]]}.conv5.bn.{m[2]}'),
    Rule(r'(global|local)_CNN\.s1\.pathway0_stem\.conv_xy\.(.+)',
         lambda m: f'{ENCODERS[m[1]]}.conv1_s.conv.{m[2]}'),
    Rule(r'(global|local)_CNN\.s1\.pathway0_stem\.conv\.(.+)',
         lambda m: f'{ENCODERS[m[1]]}.conv1_t.conv.{m[2]}'),
    Rule(r'(global|local)_CNN\.s1\.pathway0_stem\.bn\.(.+)',
         lambda m: f'{ENCODERS[m[1]]}.conv1_t.bn.{m[2]}'),
    Rule(_X3D_BLOCK + r'branch1\.(?P<rest>.+)', _x3d_block('downsample.conv')),
    Rule(_X3D_BLOCK + r'branch1_bn\.(?P<rest>.+)', _x3d_block('downsample.bn')),
    Rule(_X3D_BLOCK + r'branch2\.a\.(?P<rest>.+)', _x3d_block('conv1.conv')),
    Rule(_X3D_BLOCK + r'branch2\.a_bn\.(?P<rest>.+)', _x3d_block('conv1.bn')),
    Rule(_X3D_BLOCK + r'branch2\.b\.(?P<rest>.+)', _x3d_block('conv2.conv')),
    Rule(_X3D_BLOCK + r'branch2\.b_bn\.(?P<rest>.+)', _x3d_block('conv2.bn')),
    Rule(_X3D_BLOCK + r'branch2\.c\.(?P<rest>.+)', _x3d_block('conv3.conv')),
    Rule(_X3D_BLOCK + r'branch2\.c_bn\.(?P<rest>.+)', _x3d_block('conv3.bn')),
    Rule(_X3D_BLOCK + r'branch2\.se\.(?P<rest>.+)', _x3d_block('se_module')),
    Rule(r'aux_head\.0\.(.+)', r'fc_aux.\1'),
    *POLICY_RULES,
]

RULES: Dict[str, List[Rule]] = dict(mn2r50=MN2R50_RULES, tsm=TSM_RULES, x3d=X3D_RULES)

# ------------------------------------------------------------------------------------------------
# picking the config
# ------------------------------------------------------------------------------------------------
# released file names: data set (as in the name) -> (config data set, number of classes)
DATASETS = {'sthv1': ('sthv1', 174), 'sthv2': ('sthv2', 174), 'jester': ('jester', 27),
            'kinetics400': ('kinetics400', 400), 'actnet': ('activitynet', 200),
            'activitynet': ('activitynet', 200), 'fcvid': ('fcvid', 239),
            'minik': ('minikinetics', 200), 'minikinetics': ('minikinetics', 200)}
SETTING_NAMES = dict(mn2r50='MobileNet-V2 + ResNet-50', tsm='TSM', x3d='X3D')
_VIDEO_NAME = re.compile(r'(?P<ds>sthv1|sthv2|jester|kinetics400)_p(?P<p>\d+)_'
                         r'(?P<tg>\d+)and(?P<tl>\d+)')
_MN2R50_NAME = re.compile(r'(?P<ds>activitynet|actnet|fcvid|minikinetics|minik)[-_].*?p(?P<p>\d+)')


def detect_setting(state: Dict[str, torch.Tensor]) -> str:
    """``'tsm'``, ``'x3d'`` or ``'mn2r50'`` from the keys of an unwrapped official state dict.

    Raises:
        ValueError: Not a Uni-AdaFocus checkpoint (an AdaFocusV2 one is named as such).
    """
    keys = list(state)
    if any(k.startswith('policy_stn.') for k in keys):
        raise ValueError('policy_stn.* keys: an AdaFocusV2 checkpoint, not Uni-AdaFocus; use '
                         'tools/model_converters/adafocusv2_official_to_mmdynamic.py')
    if 'temporal_policy.Tconv.0.weight' not in state or \
            'spatial_policy.encoder.9.weight' not in state:
        raise ValueError('no temporal_policy.Tconv / spatial_policy.encoder keys: not a '
                         'Uni-AdaFocus checkpoint')
    if any('.base_model.' in k for k in keys):
        return 'tsm'
    if any('pathway0' in k for k in keys):
        return 'x3d'
    if any(k.startswith('global_CNN.features.') for k in keys) and \
            'classifier.global_mlp.layers.0.weight' in state:
        return 'mn2r50'
    raise ValueError('a Uni-AdaFocus-like checkpoint with neither TSM (.base_model.), X3D '
                     '(pathway0) nor MobileNet-V2 + ResNet-50 (global_CNN.features, '
                     'classifier.global_mlp) keys: unknown setting')


def checkpoint_facts(state: Dict[str, torch.Tensor]) -> dict:
    """What the tensors fix: setting, number of classes, T_G (and T_L for MN2+R50)."""
    setting = detect_setting(state)
    aux = state.get('aux_fc.weight', state.get('aux_head.0.weight'))
    if aux is None:
        raise ValueError('no aux_fc / aux_head.0 weight (FC_Aux): not a Uni-AdaFocus checkpoint')
    facts = dict(setting=setting, num_classes=int(aux.shape[0]))
    if setting == 'mn2r50':
        facts['num_glance'] = len({k for k in state
                                   if re.match(r'classifier\.global_classifiers\.\d+\.1\.weight', k)})
        facts['num_focus'] = len({k for k in state
                                  if re.match(r'classifier\.local_classifiers\.\d+\.1\.weight', k)})
    else:
        facts['num_glance'] = int(state['spatial_policy.encoder.9.weight'].shape[2])
    return facts


def _config_for(setting: str, dataset: str, p: int, tg: Optional[int], tl: Optional[int]) -> str:
    if setting == 'tsm':
        pattern = f'uniadafocus-tsm_mn2-r50-p{p}-{tg}+{tl}_*_{dataset}-rgb.py'
    elif setting == 'x3d':
        pattern = f'uniadafocus-x3d_x3ds-x3dl-p{p}-{tg}+{tl}_*_{dataset}-rgb.py'
    else:
        pattern = f'uniadafocus_mn2-r50-p{p}_*_{dataset}-rgb.py'
    found = sorted(glob.glob(osp.join(REPO, CONFIG_DIR, pattern)))
    if not found:
        raise ValueError(f'no config {CONFIG_DIR}/{pattern} for this checkpoint; pass --config '
                         'with a config of its setting and --cfg-options model.patch_size=P '
                         'model.num_focus=T_L model.num_candidates=T_0 (and the data pipeline '
                         'to match)')
    return osp.join(CONFIG_DIR, osp.basename(found[0]))


def pick_config(obj: Any, state: Dict[str, torch.Tensor], src: Optional[str] = None) -> str:
    """The Uni-AdaFocus config matching an official checkpoint.

    The tensors fix the setting, the classes and T_G; P, T_L and T_0 change no tensor and come from
    the released file name.

    Args:
        obj: The loaded official file (unused: the official files store no options).
        state (dict): Its unwrapped state dict.
        src (str, optional): The file's path (its name is parsed).

    Returns:
        str: The config path (relative to the repository root).

    Raises:
        ValueError: The name does not say P / T_L, or disagrees with the tensors: the message says
            what to pass.
    """
    facts = checkpoint_facts(state)
    setting = facts['setting']
    name = osp.basename(src or '').lower()
    regex = _MN2R50_NAME if setting == 'mn2r50' else _VIDEO_NAME
    match = regex.search(name)
    example = {'tsm': 'sthv1_p128_8and12.pth.tar', 'x3d': 'kinetics400_p128_16and32.pth.tar',
               'mn2r50': 'actnet_p128.pth.tar'}[setting]
    if match is None:
        raise ValueError(
            f'a Uni-AdaFocus {SETTING_NAMES[setting]} checkpoint with {facts["num_classes"]} classes '
            f'and T_G = {facts["num_glance"]}, but the patch size P, T_L and T_0 change no tensor and '
            f'the file name {name!r} does not give them (released names look like {example!r}): '
            f'pass --config with the matching config of {CONFIG_DIR}/ (its model.patch_size, '
            'model.num_focus and model.num_candidates), or --cfg-options to set them')
    dataset, classes = DATASETS[match['ds']]
    if classes != facts['num_classes']:
        raise ValueError(f'the file name says {match["ds"]} ({classes} classes) but its heads have '
                         f'{facts["num_classes"]} classes: pass --config')
    if setting == 'mn2r50':
        tg = tl = None
    else:
        tg, tl = int(match['tg']), int(match['tl'])
        if tg != facts['num_glance']:
            raise ValueError(f'the file name says T_G = {tg} but the spatial policy spans '
                             f'{facts["num_glance"]} glance frames: pass --config')
        if dataset in ('sthv1', 'sthv2', 'jester') and setting != 'tsm' or \
                dataset == 'kinetics400' and setting != 'x3d':
            raise ValueError(f'the file name says {match["ds"]} but the keys are those of the '
                             f'{SETTING_NAMES[setting]} setting: pass --config')
    return _config_for(setting, dataset, int(match['p']), tg, tl)


def name_settings(src: str, setting: str) -> dict:
    """What a released file name says: ``patch_size`` and (TSM / X3D) ``num_glance`` and
    ``num_focus``; empty when the name is not a released one."""
    regex = _MN2R50_NAME if setting == 'mn2r50' else _VIDEO_NAME
    match = regex.search(osp.basename(src).lower())
    if match is None:
        return {}
    out = dict(patch_size=int(match['p']))
    if setting != 'mn2r50':
        out.update(num_glance=int(match['tg']), num_focus=int(match['tl']))
    return out


def check_config_against_name(config: str, cfg_options: Optional[dict], src: str, setting: str,
                              allow_mismatch: bool = False) -> None:
    """Refuse a ``--config`` whose P / T_G / T_L (which change no tensor, so the strict check cannot
    see them) differ from what the released file name says.

    Raises:
        ValueError: Listing the differences (a warning instead with ``allow_mismatch``).
    """
    expected = name_settings(src, setting)
    if not expected:
        return
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    diffs = [f'model.{k}: {cfg.model.get(k)} in the config, {v} in the file name'
             for k, v in expected.items() if cfg.model.get(k) != v]
    if diffs:
        text = (f'the config does not match the released file {osp.basename(src)}: '
                + '; '.join(diffs) + ' (these change no tensor, so the weights would load but not '
                'give the authors\' predictions); pass the matching config, or --allow-mismatch')
        if not allow_mismatch:
            raise ValueError(text)
        print(f'warning: {text}')


def official_extras(obj: Any, facts: dict) -> dict:
    """``epoch``, ``best_prec1`` and ``arch`` of the official file, and what the tensors fix."""
    extras = dict(facts)
    if isinstance(obj, dict):
        for key in ('epoch', 'best_prec1', 'arch'):
            value = obj.get(key)
            if torch.is_tensor(value) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float, str)):
                extras[key] = value
    return extras


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert (CLI). Returns the meta written."""
    parser = converter_arg_parser(__doc__.split('\n\n')[0])
    parser.add_argument('--allow-mismatch', action='store_true',
                        help='warn instead of refusing when the --config has another patch size / '
                        'T_G / T_L than the released file name says')
    args = parser.parse_args(argv)
    obj = load_official(args.src)
    state = unwrap_state_dict(obj)
    facts = checkpoint_facts(state)
    config = args.config or pick_config(obj, state, args.src)
    if not args.config:
        print(f'config picked from the checkpoint: {config}')
    if not osp.isfile(config) and osp.isfile(osp.join(REPO, config)):
        config = osp.join(REPO, config)  # run from another folder
    if args.config and osp.isfile(config):
        check_config_against_name(config, args.cfg_options, args.src, facts['setting'],
                                  args.allow_mismatch)
    extra = dict(uniadafocus_official=official_extras(obj, facts))
    return convert_checkpoint(args.src, args.dst, config, RULES[facts['setting']], METHOD,
                              cfg_options=args.cfg_options, extra_meta=extra)


if __name__ == '__main__':
    run_cli(main)
