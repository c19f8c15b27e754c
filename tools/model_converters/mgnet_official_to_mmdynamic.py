# Copyright (c) mmdynamic contributors. All rights reserved.
"""Convert a checkpoint of the official MGNet code (siahuat0727/MGNet) into an mmdynamic checkpoint.

The official code trains with PyTorch Lightning: the weights are under ``ckpt['state_dict']``, each key
prefixed with ``model.`` (the LightningModule's attribute), next to Lightning's other top-level entries
(``epoch``, ``global_step``, ``pytorch-lightning_version``, ``hyper_parameters``, ``optimizer_states``,
``lr_schedulers``, ...). Layout and key correspondence: ``../shared/specs/official_checkpoints.md``,
MGNet section (``configs/mgnet/README.md``, "Converting the official checkpoints"):

- ``backbone.*`` (torchvision ResNet without ``fc``) -> ``backbone.*`` unchanged (mmpretrain's
  ResNet / ResNeXt have the same names and shapes);
- ``feat_fusion.mha.in_proj_{weight,bias}`` (rows ``[W_q; W_k; W_v]``) -> split along dim 0 into
  ``fusion.{q,k,v}_proj.*``; ``feat_fusion.mha.out_proj.*`` -> ``fusion.out_proj.*``;
  ``feat_fusion.norm.*`` -> ``fusion.norm.*``;
- ``loc_network.fc.*`` -> ``localization.fc.*``; ``global_fc.fc.*`` -> ``global_head.*``;
  ``glimpse_fc.fc.*`` -> ``glimpse_head.*`` (training only; absent for FF-Net, T = 1, or alpha = 0).

The config is picked from what the file holds (or given with ``--config``): the backbone from the
tensor shapes (ResNet-18 / 34 / 50, ResNeXt-50 32x4d, WRN-50-2), MGNet or FF-Net from the glimpse
classifier (and ``hyper_parameters['n_iter']`` when the file has it), the data set from the number of
classes (100: ImageNet-100, 200: Tiny ImageNet). The number of glimpses T changes no tensor: it comes
from ``hyper_parameters['n_iter']`` when present (``model.num_glimpses`` is then set, and
``model.glimpse_size`` from ``scale`` as the official ``int(H // scale)``), else the config's (4 glimpses
of 96 px on ImageNet-100, 3 of 32 px on Tiny ImageNet, as in the paper).

Reading: ``torch.load(weights_only=True)`` (tensors and plain containers only). A Lightning file also
holds the optimizer and scheduler states; with the torch 1.6 the official code pins, the state of
``OneCycleLR`` stores its annealing function as a bound method (``anneal_func``), which
``weights_only`` refuses (unpickling it would rebuild arbitrary objects). Such a file is refused with
the reason; re-save its ``state_dict`` (and ``hyper_parameters``, ``epoch``) in a trusted environment
and convert that file.

Example:
    python tools/model_converters/mgnet_official_to_mmdynamic.py \
        mgnet_r18_in100.ckpt mgnet_r18_in100.pth
    python tools/test.py configs/mgnet/mgnet-r18-4x96_4xb64-onecycle-400e_in100.py mgnet_r18_in100.pth
"""
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)

from mmdynamic.utils.official_converter import (Rule, convert_checkpoint,  # noqa: E402
                                                converter_arg_parser, load_official, run_cli,
                                                unwrap_state_dict)

METHOD = 'MGNet'
CONFIG_DIR = osp.join('configs', 'mgnet')


def split_in_proj(key: str, tensor: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``nn.MultiheadAttention``'s fused ``in_proj_{weight,bias}`` -> our q / k / v projections.

    Args:
        key (str): The renamed key, ``fusion.in_proj.{weight,bias}``.
        tensor (Tensor): (3d, d) or (3d, ): rows ``[W_q; W_k; W_v]``.

    Returns:
        dict: ``fusion.{q,k,v}_proj.{weight,bias}`` -> (d, d) or (d, ).
    """
    if tensor.shape[0] % 3:
        raise ValueError(f'{key}: the fused attention projection has {tensor.shape[0]} rows, not a '
                         'multiple of 3 (q, k, v)')
    kind = key.rsplit('.', 1)[1]
    q, k, v = tensor.chunk(3, dim=0)
    return {f'fusion.q_proj.{kind}': q.clone(), f'fusion.k_proj.{kind}': k.clone(),
            f'fusion.v_proj.{kind}': v.clone()}


# official key (without Lightning's ``model.``) -> ours; first match wins
RULES: List[Rule] = [
    Rule(r'backbone\.(.+)', r'backbone.\1'),
    Rule(r'feat_fusion\.mha\.in_proj_(weight|bias)', r'fusion.in_proj.\1', transform=split_in_proj),
    Rule(r'feat_fusion\.mha\.out_proj\.(weight|bias)', r'fusion.out_proj.\1'),
    Rule(r'feat_fusion\.norm\.(weight|bias)', r'fusion.norm.\1'),
    Rule(r'loc_network\.fc\.(weight|bias)', r'localization.fc.\1'),
    Rule(r'global_fc\.fc\.(weight|bias)', r'global_head.\1'),
    Rule(r'glimpse_fc\.fc\.(weight|bias)', r'glimpse_head.\1'),
]

# (backbone, data set) -> (MGNet config, FF-Net config)
CONFIGS: Dict[Tuple[str, str], Tuple[str, str]] = {
    ('r18', 'in100'): ('mgnet-r18-4x96_4xb64-onecycle-400e_in100.py',
                       'ffnet-r18_4xb64-onecycle-400e_in100.py'),
    ('r50', 'in100'): ('mgnet-r50-4x96_4xb64-onecycle-400e_in100.py',
                       'ffnet-r50_4xb64-onecycle-400e_in100.py'),
    ('rx50', 'in100'): ('mgnet-rx50-32x4d-4x96_4xb64-onecycle-400e_in100.py',
                        'ffnet-rx50-32x4d_4xb64-onecycle-400e_in100.py'),
    ('wrn50', 'in100'): ('mgnet-wrn50-2-4x96_4xb64-onecycle-400e_in100.py',
                         'ffnet-wrn50-2_4xb64-onecycle-400e_in100.py'),
    ('r18', 'tiny'): ('mgnet-r18-nomaxpool-3x32_4xb64-onecycle-400e_tiny-imagenet.py',
                      'ffnet-r18-nomaxpool_4xb64-onecycle-400e_tiny-imagenet.py'),
    ('r34', 'tiny'): ('mgnet-r34-nomaxpool-3x32_4xb64-onecycle-400e_tiny-imagenet.py',
                      'ffnet-r34-nomaxpool_4xb64-onecycle-400e_tiny-imagenet.py'),
}
DATASETS = {100: 'in100', 200: 'tiny'}
IMAGE_SIZES = {'in100': 224, 'tiny': 64}  # H of the official ``glimpse size = int(H // scale)``


def hyper_parameters(obj: Any) -> dict:
    """Lightning's ``hyper_parameters`` (the official argparse options), or ``{}``."""
    hparams = obj.get('hyper_parameters') if isinstance(obj, dict) else None
    return dict(hparams) if isinstance(hparams, dict) else {}


def backbone_kind(state: Dict[str, torch.Tensor]) -> str:
    """The official backbone from the tensor shapes: 'r18', 'r34', 'r50', 'rx50' or 'wrn50'.

    Raises:
        ValueError: No ResNet backbone, or one that no config has.
    """
    if 'backbone.layer1.0.conv1.weight' not in state or 'backbone.layer3.0.conv1.weight' not in state:
        raise ValueError('no torchvision ResNet under backbone.* (backbone.layer1.0.conv1.weight is '
                         'missing): not an MGNet checkpoint')
    blocks = [1 + max(int(k.split('.')[2]) for k in state if k.startswith(f'backbone.layer{i}.'))
              for i in range(1, 5)]
    bottleneck = 'backbone.layer1.0.conv3.weight' in state
    if not bottleneck:
        kinds = {(2, 2, 2, 2): 'r18', (3, 4, 6, 3): 'r34'}
    else:
        kinds = {(3, 4, 6, 3): 'r50'}
    kind = kinds.get(tuple(blocks))
    if kind is None:
        raise ValueError(f'a ResNet backbone with {"bottleneck" if bottleneck else "basic"} blocks '
                         f'{tuple(blocks)} per stage: no MGNet config for it (known: ResNet-18/34/50, '
                         'ResNeXt-50 32x4d, WRN-50-2); pass --config')
    if kind == 'r50':
        conv2 = state['backbone.layer1.0.conv2.weight'].shape  # (width, width / groups, 3, 3)
        if conv2[0] != conv2[1]:
            kind = 'rx50'
        elif conv2[0] == 128:
            kind = 'wrn50'
    return kind


def pick_config(obj: Any, state: Dict[str, torch.Tensor]) -> str:
    """The MGNet config matching an official checkpoint.

    Args:
        obj: The loaded official file (``hyper_parameters`` is read when present).
        state (dict): Its unwrapped state dict (keys without ``model.``).

    Returns:
        str: The config path (relative to the repository root).

    Raises:
        ValueError: What cannot be matched, and which option to pass instead.
    """
    if 'global_fc.fc.weight' not in state or 'feat_fusion.mha.in_proj_weight' not in state:
        raise ValueError('no global_fc.fc / feat_fusion.mha keys: not an MGNet checkpoint')
    kind = backbone_kind(state)
    num_classes = state['global_fc.fc.weight'].shape[0]
    dataset = DATASETS.get(num_classes)
    if dataset is None or (kind, dataset) not in CONFIGS:
        known = ', '.join(f'{k} with {100 if d == "in100" else 200} classes' for k, d in CONFIGS)
        raise ValueError(f'no MGNet config for a {kind} backbone with {num_classes} classes (known: '
                         f'{known}); pass --config CONFIG --cfg-options '
                         f'model.num_classes={num_classes}')
    hparams = hyper_parameters(obj)
    n_iter = hparams.get('n_iter')
    has_glimpse_fc = 'glimpse_fc.fc.weight' in state
    if has_glimpse_fc and n_iter == 1:
        raise ValueError('the file has a glimpse classifier (glimpse_fc) but hyper_parameters say '
                         'n_iter = 1: inconsistent checkpoint; pass --config')
    ffnet = not has_glimpse_fc and (n_iter is None or n_iter == 1)
    mgnet_cfg, ffnet_cfg = CONFIGS[(kind, dataset)]
    return osp.join(CONFIG_DIR, ffnet_cfg if ffnet else mgnet_cfg)


def config_options(obj: Any, state: Dict[str, torch.Tensor]) -> dict:
    """Config overrides from the official ``hyper_parameters`` (options that change no tensor, and
    alpha = 0, which removes the glimpse classifier).

    Returns:
        dict: ``model.num_glimpses`` from ``n_iter`` (T >= 2), ``model.glimpse_size`` from ``scale``
        (the official ``int(H // scale)``, H = 224 on ImageNet-100, 64 on Tiny ImageNet),
        ``model.aux_weight`` 0 when a multi-glimpse file has no glimpse classifier; empty without
        ``hyper_parameters``.
    """
    options = {}
    hparams = hyper_parameters(obj)
    n_iter = hparams.get('n_iter')
    if isinstance(n_iter, int) and n_iter > 1:
        options['model.num_glimpses'] = n_iter
        if 'glimpse_fc.fc.weight' not in state:
            options['model.aux_weight'] = 0.0
        scale = hparams.get('scale')
        head = state.get('global_fc.fc.weight')
        image_size = IMAGE_SIZES.get(DATASETS.get(head.shape[0])) if head is not None else None
        if isinstance(scale, (int, float)) and scale >= 1 and image_size:
            options['model.glimpse_size'] = int(image_size // scale)
    return options


def official_extras(obj: Any) -> dict:
    """What the Lightning file stores beyond the weights that is worth keeping (plain values)."""
    extras = {}
    if isinstance(obj, dict):
        for key in ('epoch', 'global_step', 'pytorch-lightning_version'):
            if isinstance(obj.get(key), (int, float, str)):
                extras[key] = obj[key]
    hparams = {k: v for k, v in hyper_parameters(obj).items()
               if isinstance(v, (int, float, str, bool, type(None)))}
    if hparams:
        extras['hyper_parameters'] = hparams
    return extras


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert (CLI). Returns the meta written."""
    parser = converter_arg_parser(__doc__.split('\n\n')[0])
    args = parser.parse_args(argv)
    obj = load_official(args.src)
    state = unwrap_state_dict(obj)
    options = config_options(obj, state)
    if args.config:
        config = args.config
    else:
        config = pick_config(obj, state)
        print(f'config picked from the checkpoint: {config}')
    if not osp.isfile(config) and osp.isfile(osp.join(REPO, config)):
        config = osp.join(REPO, config)  # run from another folder
    options.update(args.cfg_options or {})
    extra = dict(mgnet_official=official_extras(obj))
    return convert_checkpoint(args.src, args.dst, config, RULES, METHOD,
                              cfg_options=options or None, extra_meta=extra)


if __name__ == '__main__':
    run_cli(main)
