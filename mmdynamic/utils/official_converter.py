# Copyright (c) mmdynamic contributors. All rights reserved.
"""The shared core of the converters of the authors' released checkpoints
(``tools/model_converters/<method>_official_to_mmdynamic.py``).

The pipeline (:func:`convert_checkpoint`):

1. :func:`load_official` reads the file with ``torch.load(weights_only=True)``: tensors and plain
   containers only. A file that needs arbitrary unpickling is refused with the reason (unpickling an
   untrusted file can run code) and how to re-save its tensors in a trusted environment.
2. :func:`unwrap_state_dict` finds the tensor dict (``state_dict`` / ``model_state`` / ``model``) and
   strips the ``module.`` / ``model.`` prefixes that every key carries.
3. :func:`apply_rules` maps the official keys by an ordered table of :class:`Rule` (first match wins;
   a rule may drop a key, with a note, or split / reshape it with a ``transform``).
4. :func:`check_strict` compares the result with the model built from the config
   (:func:`build_model_from_config`) and refuses, listing what differs, anything that would not load
   strictly: a file of another method, depth, width, number of classes, groups, patch size or steps is
   never loaded half.
5. :func:`save_checkpoint` writes the MMEngine checkpoint (``state_dict`` + ``meta`` from
   :func:`official_meta`: the source file name and sha256, the config, the method,
   :data:`CONVERTER_VERSION`, the dropped keys and what the method adds) atomically: a temporary file
   in the destination folder renamed over it, so a refusal or a crash never leaves a half-written or
   replaced destination.
"""
import argparse
import hashlib
import io
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn

from .checkpoint_check import describe_differences, listing, state_dict_differences

CONVERTER_VERSION = '1.0'
_SHOWN = 8  # names listed per kind of difference in an error message

Transform = Callable[[str, torch.Tensor], Dict[str, torch.Tensor]]


class Rule(NamedTuple):
    """One row of an ordered rule table; the FIRST rule whose pattern matches a key wins.

    Args:
        pattern (str): Regular expression, ``re.fullmatch``-ed against the unwrapped official key.
        target (str | callable, optional): ``re``-style replacement template (``\\1``, ``\\g<name>``)
            giving our key, or a callable ``match -> our key`` (for arithmetic on indices). None drops
            the key.
        note (str): For dropped keys: why (printed in the conversion report, kept in the meta).
        transform (callable, optional): Called with ``(our key, tensor)``, returns ``{our key: tensor}``
            for splits (a fused q/k/v projection) and reshapes (a 1x1x1 conv stored for a Linear).
    """
    pattern: str
    target: Optional[Union[str, Callable[['re.Match'], str]]]
    note: str = ''
    transform: Optional[Transform] = None


class RuleResult(NamedTuple):
    """What :func:`apply_rules` made of an official state dict.

    Args:
        state_dict (dict): Our keys -> tensors.
        dropped (dict): Official key -> the note of the rule that dropped it.
        unmatched (list): Official keys that no rule matched (in file order).
        sources (dict): Our key -> the official key it comes from.
    """
    state_dict: Dict[str, torch.Tensor]
    dropped: Dict[str, str]
    unmatched: List[str]
    sources: Dict[str, str]


def load_official(path: str) -> Any:
    """Read an official checkpoint with ``torch.load(path, map_location='cpu', weights_only=True)``.

    Only tensors and plain containers (dict, list, tuple, str, numbers) are unpickled.

    Args:
        path (str): The official file.

    Returns:
        The unpickled object (usually a dict).

    Raises:
        ValueError: The file is missing, truncated or not a torch file, or it needs the unpickling of
            arbitrary Python objects (which could execute code): the message says why and how to
            re-save only its tensors in a trusted environment.
    """
    if not osp.isfile(path):
        raise ValueError(f'official checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        detail = re.search(r'Unsupported (?:global|class):? (?:GLOBAL )?([\w.]+)', text)
        if detail:
            what = f' (it needs {detail.group(1)})'
            raise ValueError(
                f'{path} cannot be read with torch.load(weights_only=True): it holds pickled Python '
                f'objects other than tensors and plain containers{what}. The converter does not '
                'unpickle them, since unpickling an untrusted file can run arbitrary code. If you '
                'trust the file, re-save only its tensors and plain values in a trusted environment, '
                'e.g. python -c "import torch; c = torch.load(\'in.pth\', weights_only=False); '
                'torch.save({k: v for k, v in c.items() if k in (\'state_dict\',)}, \'clean.pth\')" '
                '(keep the keys the converter reads), and convert that file.') from err
        first = (text.split('WeightsUnpickler error:')[-1].strip().splitlines() or [''])[0]
        raise ValueError(f'{path} is truncated or not a torch checkpoint ({first})') from err
    except (RuntimeError, EOFError, OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f'{path} is truncated or not a torch checkpoint ({type(err).__name__}: {err})') from err


def unwrap_state_dict(obj: Any, containers: Sequence[str] = ('state_dict', 'model_state', 'model'),
                      prefixes: Sequence[str] = ('module.', 'model.')
                      ) -> Dict[str, torch.Tensor]:
    """The tensor dict inside an official checkpoint.

    Args:
        obj: What :func:`load_official` returned.
        containers (Sequence[str]): Keys that may hold the state dict; the first one present whose
            value is a dict is used, else ``obj`` itself (SAR's ``model`` holds the architecture name,
            a string, and is skipped).
        prefixes (Sequence[str]): Each one is stripped, in order, when EVERY key carries it
            (``module.`` of DataParallel, ``model.`` of PyTorch Lightning; both: ``module.model.``).

    Returns:
        dict: Key -> tensor, in file order.

    Raises:
        ValueError: ``obj`` is no dict, or the state dict is empty or holds non-tensor values.
    """
    if not isinstance(obj, dict):
        raise ValueError(f'the checkpoint holds a {type(obj).__name__}, not a dict of weights')
    state = obj
    for name in containers:
        if isinstance(obj.get(name), dict):
            state = obj[name]
            break
    if not state:
        raise ValueError('the checkpoint holds no weights (empty state dict)')
    others = [str(k) for k, v in state.items() if not torch.is_tensor(v)]
    if others:
        raise ValueError(f'the state dict holds {len(others)} entries that are not tensors '
                         f'({listing(others, _SHOWN)}): not a state dict, or a container the converter '
                         f'does not know (known: {", ".join(containers)})')
    state = OrderedDict(state)
    for prefix in prefixes:
        if all(k.startswith(prefix) for k in state):
            state = OrderedDict((k[len(prefix):], v) for k, v in state.items())
    return state


# ----------------------------------------------------------------------------------------------
# mapping and checking
# ----------------------------------------------------------------------------------------------
def apply_rules(state: Dict[str, torch.Tensor], rules: Sequence[Rule]) -> RuleResult:
    """Map an official state dict by an ordered rule table (first match wins).

    Args:
        state (dict): The unwrapped official state dict.
        rules (Sequence[Rule]): The table.

    Returns:
        RuleResult: Our state dict, the dropped keys with their notes, the unmatched keys and, for
        each of our keys, the official key it comes from.

    Raises:
        ValueError: Two official keys land on the same key of ours.
    """
    compiled = [(re.compile(rule.pattern), rule) for rule in rules]
    out: Dict[str, torch.Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    unmatched: List[str] = []
    sources: Dict[str, str] = OrderedDict()
    for key, value in state.items():
        for regex, rule in compiled:
            match = regex.fullmatch(key)
            if match is None:
                continue
            if rule.target is None:
                dropped[key] = rule.note
                break
            new = rule.target(match) if callable(rule.target) else match.expand(rule.target)
            produced = rule.transform(new, value) if rule.transform else {new: value}
            for ours, tensor in produced.items():
                if ours in out:
                    raise ValueError(f'the official keys {sources[ours]!r} and {key!r} both map to '
                                     f'{ours!r}: the rule table is ambiguous for this file')
                out[ours] = tensor
                sources[ours] = key
            break
        else:
            unmatched.append(key)
    return RuleResult(out, dropped, unmatched, sources)


def check_strict(state_dict: Dict[str, torch.Tensor], model: nn.Module, what: str = '') -> None:
    """Refuse a converted state dict that would not load strictly into ``model``.

    Args:
        state_dict (dict): The converted weights.
        model (nn.Module): The model built from the config.
        what (str): How to name the weights in the message (e.g. the source file).

    Raises:
        ValueError: Listing, with counts and the first few names, the missing, unexpected and
            shape-mismatched keys (a file of another method, depth, width, number of classes, groups,
            patch size or number of steps).
    """
    diff = state_dict_differences(state_dict, model)
    if not any(diff.values()):
        return
    raise ValueError(f'{what or "the converted checkpoint"} does not fit the model '
                     f'{type(model).__name__} of the config: '
                     + describe_differences(diff, ', file vs model', _SHOWN)
                     + '. Is it a checkpoint of another method, depth, width, number of classes, '
                     'groups, patch size or number of steps? Nothing was loaded or written.')


def build_model_from_config(config: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the model of an mmdynamic config as the tools do, on the CPU, in eval mode.

    ``Config.fromfile`` (with the config's ``custom_imports``), ``cfg_options`` merged, the config's
    ``default_scope`` initialised, ``MODELS.build`` (a top-level ``data_preprocessor`` included).

    Args:
        config (str): Config file.
        cfg_options (dict, optional): Overrides (``--cfg-options``).

    Returns:
        nn.Module: The model (weights not initialised: the converted ones are loaded next).
    """
    from .run_config import build_model, load_tool_config
    if not osp.isfile(config):
        raise ValueError(f'config file not found: {config}')
    cfg = load_tool_config(config, cfg_options)
    return build_model(cfg).cpu().eval()


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def file_sha256(path: str) -> str:
    """The hex sha256 of a file (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def official_meta(src: str, config: Optional[str], method: str,
                  dropped: Optional[Dict[str, str]] = None,
                  extra_meta: Optional[dict] = None) -> dict:
    """The ``meta`` of a converted checkpoint.

    Args:
        src (str): The official file.
        config (str, optional): The config the weights were checked against (as given).
        method (str): The method (e.g. ``'SAR'``).
        dropped (dict, optional): Official key -> why it was dropped.
        extra_meta (dict, optional): What the method keeps beyond the weights (plain values only, so
            that the checkpoint reads with ``weights_only=True``).

    Returns:
        dict: ``source``, ``source_sha256``, ``config``, ``method``, ``converter_version``,
        ``dropped`` and ``extra_meta``'s items.
    """
    meta = dict(source=osp.basename(src), source_sha256=file_sha256(src), config=config,
                method=method, converter_version=CONVERTER_VERSION, dropped=dict(dropped or {}))
    meta.update(extra_meta or {})
    return meta


def save_checkpoint(state_dict: Dict[str, torch.Tensor], meta: dict, dst: str) -> None:
    """Write ``{'state_dict', 'meta'}`` to ``dst`` atomically (a temporary file beside it, fsync,
    ``os.replace``): a reader sees the old file or the whole new one, never a part.

    Args:
        state_dict (dict): The weights.
        meta (dict): The meta (plain values).
        dst (str): The output file; its folder is created if missing.
    """
    from .compat import atomic_write
    buffer = io.BytesIO()
    torch.save(dict(state_dict=OrderedDict(state_dict), meta=meta), buffer)
    atomic_write(buffer.getvalue(), dst, 'wb')


def report(method: str, src: str, dst: str, num_kept: int, dropped: Dict[str, str]) -> str:
    """The short conversion report: tensors kept, keys dropped grouped by note."""
    lines = [f'{method}: {num_kept} tensors of {osp.basename(src)} converted -> {dst}']
    by_note: Dict[str, List[str]] = OrderedDict()
    for key, note in dropped.items():
        by_note.setdefault(note, []).append(key)
    for note, keys in by_note.items():
        lines.append(f'dropped {len(keys)} keys ({listing(keys, 4)}): {note or "no note"}')
    return '\n'.join(lines)


def convert_checkpoint(src: str, dst: str, config: str, rules: Sequence[Rule], method: str, *,
                       cfg_options: Optional[dict] = None, extra_meta: Optional[dict] = None,
                       prepare: Optional[Callable[[Any, Dict[str, torch.Tensor]],
                                                  Dict[str, torch.Tensor]]] = None) -> dict:
    """Convert an official checkpoint into an MMEngine one that loads strictly into ``config``.

    load_official -> unwrap_state_dict -> ``prepare(obj, state)`` -> apply_rules -> refuse unmatched
    keys -> build the model -> check_strict -> ``load_state_dict(strict=True)`` -> save atomically.
    On any refusal nothing is written (an existing ``dst`` is left as it was).

    Args:
        src (str): The official file.
        dst (str): The output file.
        config (str): The mmdynamic config of the model.
        rules (Sequence[Rule]): The method's rule table.
        method (str): The method's name (kept in the meta).
        cfg_options (dict, optional): Config overrides.
        extra_meta (dict, optional): What the method keeps beyond the weights.
        prepare (callable, optional): ``(official object, unwrapped state) -> state``, e.g. to merge
            several state dicts of the file or to drop keys by a rule that depends on the file.

    Returns:
        dict: The meta written.
    """
    if osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst):
        raise ValueError(f'the output {dst} is the official file itself: choose another name')
    obj = load_official(src)
    state = unwrap_state_dict(obj)
    if prepare is not None:
        state = prepare(obj, state)
    result = apply_rules(state, rules)
    if result.unmatched:
        raise ValueError(f'{len(result.unmatched)} keys of {osp.basename(src)} match no rule of the '
                         f'{method} converter ({listing(result.unmatched, _SHOWN)}): is it a checkpoint of '
                         f'another method or architecture? Nothing was written.')
    model = build_model_from_config(config, cfg_options)
    check_strict(result.state_dict, model, what=f'{osp.basename(src)} (converted as {method})')
    model.load_state_dict(result.state_dict, strict=True)
    meta = official_meta(src, config, method, result.dropped, extra_meta)
    if cfg_options:
        meta['cfg_options'] = dict(cfg_options)
    save_checkpoint(model.state_dict(), meta, dst)
    print(report(method, src, dst, len(result.state_dict), result.dropped))
    return meta


def converter_arg_parser(description: str) -> argparse.ArgumentParser:
    """The common CLI of the converters: ``src dst [--config CONFIG] [--cfg-options ...]``.

    Args:
        description (str): The converter's description (shown by ``--help``).
    """
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='the official checkpoint')
    parser.add_argument('dst', help='the mmdynamic checkpoint to write (.pth)')
    parser.add_argument('--config', help='the mmdynamic config of the model (default: the one the '
                        'converter picks from what the checkpoint holds)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. model.head.num_classes=100')
    return parser


def run_cli(main: Callable[[Optional[List[str]]], Any], argv: Optional[List[str]] = None) -> None:
    """Run a converter's ``main``; a ``ValueError`` (bad input) ends the process with
    ``error: <message>`` on stderr and exit status 1, not a traceback."""
    try:
        main(argv)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        raise SystemExit(1)
