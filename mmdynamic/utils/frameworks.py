# Copyright (c) mmdynamic contributors. All rights reserved.
"""Which OpenMMLab frameworks are installed, and errors that name a missing one."""
import importlib.util
from typing import Dict, Type

from mmengine.registry import Registry

#: import name (also the registry scope) -> pip distribution name
FRAMEWORKS: Dict[str, str] = {
    'mmpretrain': 'mmpretrain',
    'mmdet': 'mmdet',
    'mmseg': 'mmsegmentation',
    'mmaction': 'mmaction2',
}
#: import name -> mmdynamic extra that installs it (``pip install mmdynamic[<extra>]``)
EXTRAS: Dict[str, str] = {'mmpretrain': 'cls', 'mmdet': 'det', 'mmseg': 'seg', 'mmaction': 'action'}


def is_framework_available(name: str) -> bool:
    """Whether the framework with import name ``name`` (e.g. ``'mmaction'``) is installed.

    Only looks for the package; importing it is left to the caller.
    """
    if name not in FRAMEWORKS:
        raise KeyError(f'unknown framework {name!r}; known: {sorted(FRAMEWORKS)}')
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # blocked (``sys.modules[name] = None``) or broken
        return False


def missing_framework_message(name: str, what: str) -> str:
    """The message of the error raised when ``what`` needs the framework ``name``."""
    return (f'{what} needs {FRAMEWORKS[name]} (import name {name!r}), which is not installed. '
            f"Install it with `pip install 'mmdynamic[{EXTRAS[name]}]'` or `pip install "
            f'{FRAMEWORKS[name]}`.')


def require_framework(name: str, what: str) -> None:
    """Raise :class:`ModuleNotFoundError` naming the package if framework ``name`` is missing."""
    if not is_framework_available(name):
        raise ModuleNotFoundError(missing_framework_message(name, what), name=name)


def register_unavailable(registry: Registry, type_name: str, framework: str) -> Type:
    """Register a placeholder for ``type_name`` that fails, naming ``framework``, when built.

    Used for models whose framework is not installed, so that a config asking for them gets a message
    that says what to install instead of "not in the registry".
    """

    def _fail(self, *args, **kwargs):
        raise ModuleNotFoundError(missing_framework_message(framework, type_name), name=framework)

    placeholder = type(type_name, (), {'__init__': _fail, '__doc__': f'Unavailable: needs {framework}.'})
    from mmdynamic.registry import register_dual
    return register_dual(registry)(placeholder)
