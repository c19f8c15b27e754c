# Copyright (c) mmdynamic contributors. All rights reserved.
"""Checkpoints that a training stage takes from earlier runs, resolved when the run starts.

Multi-stage demos (a stand-in backbone, then stage I, II, III) chain checkpoints. Written as plain
paths, or as ``{{_base_.pretrained}}``, they are fixed when the config is *parsed*: an override of the
variable in a child config or with ``--cfg-options`` changes nothing, silently. Instead a config names
its inputs in one top-level dict and refers to them with ``${name}`` placeholders::

    runner_type = 'StageInputsRunner'
    custom_imports = dict(imports=['mmdynamic.models', 'mmdynamic.utils.stage_inputs'])
    stage_inputs = dict(
        pretrained='work_dirs/resnet18w16_card-crops_1xb32-20e_demo-cls/epoch_20.pth',
        stage1='work_dirs/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls')
    model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='${pretrained}')))
    load_from = '${stage1}/epoch_6.pth'

``StageInputsRunner`` (MMEngine's ``Runner``, selected by ``runner_type``) substitutes the placeholders
after ``--cfg-options`` were merged, so one override changes the input everywhere it is used::

    python tools/train.py CONFIG --cfg-options stage_inputs.stage1=work_dirs/my_stage1

Before training it checks that every checkpoint it is about to load exists (a clear
``FileNotFoundError`` naming the ``stage_inputs`` entry and the override otherwise) and logs each
input with its modification time, warning when a checkpoint is older than the training data it is
used with (a stale checkpoint left at a default path).
"""
import copy
import os.path as osp
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import MMLogger, print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

STAGE_INPUTS_KEY = 'stage_inputs'
_PLACEHOLDER = re.compile(r'\$\{(\w+)\}')


def _substitute(value: Any, inputs: Dict[str, str], where: str, used: Dict[str, List[str]]) -> Any:
    """Replace ``${name}`` in every string of a nested dict / list / tuple; record what used what."""
    if isinstance(value, str):

        def repl(match):
            name = match.group(1)
            if name not in inputs:
                raise KeyError(f'{where} refers to ${{{name}}}, but {STAGE_INPUTS_KEY} has no '
                               f'{name!r} (it has {sorted(inputs)})')
            used.setdefault(name, []).append(where)
            return str(inputs[name])

        return _PLACEHOLDER.sub(repl, value)
    if isinstance(value, dict):
        return type(value)({k: _substitute(v, inputs, f'{where}.{k}', used) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, inputs, f'{where}[{i}]', used) for i, v in enumerate(value))
    return value


def resolve_stage_inputs(cfg: Config) -> Dict[str, List[str]]:
    """Substitute the ``${name}`` placeholders of ``cfg`` with ``cfg.stage_inputs[name]``, in place.

    Every string of the config is resolved (``load_from``, ``init_cfg`` checkpoints, data roots ...),
    except the ``stage_inputs`` dict itself, whose values must be plain strings. Call it after
    ``--cfg-options`` were merged (``StageInputsRunner.from_cfg`` does). A config without
    ``stage_inputs`` is left as it is, but a placeholder in it is an error.

    Args:
        cfg (Config): The whole config.

    Returns:
        dict: input name -> the config keys that used it.

    Raises:
        KeyError: A placeholder names no entry of ``stage_inputs``.
        TypeError: An entry of ``stage_inputs`` is not a string.
    """
    inputs = dict(cfg.get(STAGE_INPUTS_KEY, None) or {})
    for name, value in inputs.items():
        if not isinstance(value, str) or _PLACEHOLDER.search(value):
            raise TypeError(f'{STAGE_INPUTS_KEY}.{name} must be a plain path string, got {value!r}')
    used: Dict[str, List[str]] = {}
    for key in list(cfg.keys()):
        if key != STAGE_INPUTS_KEY:
            cfg[key] = _substitute(cfg[key], inputs, key, used)
    return used


def _pretrained_checkpoints(node: Any, where: str) -> List[Tuple[str, str]]:
    """(config key, path) of every ``init_cfg`` of type ``Pretrained`` below ``node``."""
    found = []
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            found.append((f'{where}.checkpoint', node['checkpoint']))
        for k, v in node.items():
            found += _pretrained_checkpoints(v, f'{where}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += _pretrained_checkpoints(v, f'{where}[{i}]')
    return found


def _is_remote(path: str) -> bool:
    return '://' in path


def _data_stamp(cfg: Config) -> Optional[str]:
    """The ``.complete`` stamp of the training data (demo generators write one), if any."""
    dataset = (cfg.get('train_dataloader', None) or {}).get('dataset', {}) or {}
    root = dataset.get('data_root') if isinstance(dataset, dict) else None
    if not isinstance(root, str):
        return None
    stamp = osp.join(root, '.complete')
    return stamp if osp.isfile(stamp) else None


def check_stage_inputs(cfg: Config, used: Optional[Dict[str, List[str]]] = None,
                       logger: Optional[MMLogger] = None) -> List[Tuple[str, str, bool]]:
    """Check that the checkpoints a training run will load exist; log them; warn on stale ones.

    The checkpoints are ``load_from`` and the ``checkpoint`` of every ``Pretrained`` ``init_cfg`` in
    ``cfg.model`` (remote URLs are not checked).

    Args:
        cfg (Config): A resolved config (see :func:`resolve_stage_inputs`).
        used (dict, optional): What :func:`resolve_stage_inputs` returned, to name the
            ``stage_inputs`` entry to override in the error.
        logger (MMLogger, optional): Where to log. Defaults to the current logger.

    Returns:
        list: (config key, path, stale) of the local checkpoints checked; ``stale``: older than
        the ``.complete`` stamp of the training data's ``data_root`` (the demo generators write
        one), which is logged as a warning.

    Raises:
        FileNotFoundError: A checkpoint is missing.
    """
    used = used or {}
    checkpoints = _pretrained_checkpoints(cfg.get('model', None) or {}, 'model')
    if cfg.get('load_from', None):
        checkpoints.append(('load_from', cfg.load_from))
    stamp = _data_stamp(cfg)
    local = []
    for key, path in checkpoints:
        if _is_remote(path):
            continue
        names = [n for n, keys in used.items() if key in keys]
        if not osp.isfile(path):
            hint = (f' (from {STAGE_INPUTS_KEY}.{names[0]} = {cfg[STAGE_INPUTS_KEY][names[0]]!r}; '
                    f'set it with --cfg-options {STAGE_INPUTS_KEY}.{names[0]}=PATH)') if names else ''
            raise FileNotFoundError(f'{key}: checkpoint {path} does not exist{hint}; train the '
                                    'earlier stage first or point the input at its checkpoint')
        mtime = osp.getmtime(path)
        print_log(f'stage input {key}: {path} (written {time.ctime(mtime)})', logger=logger or 'current')
        stale = stamp is not None and mtime < osp.getmtime(stamp)
        if stale:
            print_log(f'{key}: checkpoint {path} is older than the training data ({stamp}): it may '
                      'come from a run on other data', logger=logger or 'current', level=30)
        local.append((key, path, stale))
    return local


@RUNNERS.register_module()
class StageInputsRunner(Runner):
    """MMEngine's ``Runner`` that resolves the config's ``stage_inputs`` placeholders when it is
    built (after ``--cfg-options``) and checks the checkpoints before training (see the module)."""

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'StageInputsRunner':
        cfg = copy.deepcopy(cfg)
        used = resolve_stage_inputs(cfg)
        runner = super().from_cfg(cfg)
        runner._stage_inputs_used = used
        return runner

    def train(self):
        check_stage_inputs(self.cfg, getattr(self, '_stage_inputs_used', None), self.logger)
        return super().train()
