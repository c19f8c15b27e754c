# Copyright (c) mmdynamic contributors. All rights reserved.
"""Build and load mmdynamic's C++ operators (``mmdynamic/ops/csrc``) on first use.

The operators are compiled just in time with :func:`torch.utils.cpp_extension.load` (ninja and the
system C++ compiler, against the installed torch), so they need nothing beyond the environment
that ``tools/setup_env.sh`` creates: no step at install time. The build goes to a directory under
the user's cache dir (``$MMDYNAMIC_EXTENSIONS_DIR``, else ``$XDG_CACHE_HOME/mmdynamic/extensions``
or ``~/.cache/mmdynamic/extensions``), one sub-directory per Python / torch version; it is reused
by later processes and rebuilt when a source changes. Concurrent processes are safe: torch's loader
holds a lock file in the build directory while one process compiles, and the others wait for it.

The first build of an operator takes about a minute on 2 cores. An operator that cannot be built
raises :class:`OpBuildError` naming what is missing; callers never fall back silently.
"""
import os
import os.path as osp
import shutil
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Dict, Iterator, List, Optional

import torch

CSRC = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc')

#: Optimisation and OpenMP flags of every operator (``at::parallel_for`` runs on OpenMP).
CXX_FLAGS = ['-O3', '-fopenmp']
LD_FLAGS = ['-fopenmp']

_LOADED: Dict[str, ModuleType] = {}


class OpBuildError(RuntimeError):
    """An operator cannot be built or loaded on this machine."""


def extensions_dir() -> str:
    """The build directory of this interpreter's Python / torch version.

    Returns:
        str: ``<cache>/py<major><minor>_torch<version>``.
    """
    root = os.environ.get('MMDYNAMIC_EXTENSIONS_DIR')
    if not root:
        cache = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
        root = osp.join(cache, 'mmdynamic', 'extensions')
    tag = f'py{sys.version_info[0]}{sys.version_info[1]}_torch{torch.__version__}'
    return osp.join(root, tag.replace('+', '_'))


def compiler() -> Optional[str]:
    """Path of the C++ compiler torch's loader uses (``$CXX``, else ``c++``); None if absent."""
    return shutil.which(os.environ.get('CXX', 'c++'))


def _ninja_dir() -> Optional[str]:
    """Directory of a ninja executable: on ``PATH``, else the ``ninja`` Python package's (pip's
    ninja, a build requirement of this project, installed in the venv that may not be on
    ``PATH``)."""
    found = shutil.which('ninja')
    if found:
        return osp.dirname(found)
    try:
        import ninja
    except ImportError:
        return None
    return getattr(ninja, 'BIN_DIR', None)


@contextmanager
def _ninja_on_path(directory: str) -> Iterator[None]:
    """Put ``directory`` first on ``PATH`` while torch's loader runs ninja."""
    previous = os.environ.get('PATH', '')
    if directory in previous.split(os.pathsep):
        yield
        return
    os.environ['PATH'] = directory + os.pathsep + previous
    try:
        yield
    finally:
        os.environ['PATH'] = previous


def load_op(name: str, sources: List[str], verbose: bool = False) -> ModuleType:
    """Build (first use, or after a source change) and import a C++ operator, once per process.

    Args:
        name (str): Extension name, e.g. ``'mmdynamic_sar_cells'``.
        sources (list[str]): Source files, relative to ``mmdynamic/ops/csrc``.
        verbose (bool): Print the compiler's commands. Defaults to False.

    Returns:
        ModuleType: The compiled module.

    Raises:
        OpBuildError: No C++ compiler or ninja, or the compilation failed.
    """
    if name in _LOADED:
        return _LOADED[name]
    cxx = os.environ.get('CXX', 'c++')
    if compiler() is None:
        raise OpBuildError(f'cannot build the C++ operator {name!r}: no C++ compiler {cxx!r} on '
                           'PATH (install g++, e.g. `apt-get install g++`, or set $CXX)')
    ninja_dir = _ninja_dir()
    if ninja_dir is None:
        raise OpBuildError(f'cannot build the C++ operator {name!r}: ninja not found (install it '
                           'with `pip install ninja`, listed in requirements/build.txt)')
    from torch.utils.cpp_extension import load
    build_dir = osp.join(extensions_dir(), name)
    os.makedirs(build_dir, exist_ok=True)
    try:
        with _ninja_on_path(ninja_dir):
            module = load(name, [osp.join(CSRC, source) for source in sources],
                          extra_cflags=CXX_FLAGS, extra_ldflags=LD_FLAGS,
                          build_directory=build_dir, verbose=verbose)
    except Exception as error:  # compiler errors come as RuntimeError / CalledProcessError
        raise OpBuildError(f'building the C++ operator {name!r} in {build_dir} with {cxx!r} '
                           f'failed: {error}') from error
    _LOADED[name] = module
    return module
