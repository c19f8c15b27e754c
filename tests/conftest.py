# Copyright (c) mmdynamic contributors. All rights reserved.
"""Shared fixtures: the demo data (written once per session) and helpers to run the tools."""
import contextlib
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_CONFIGS = osp.join(REPO, 'tests', 'data', 'configs')


def run_tool(args: List[str], cwd: Optional[str] = None, timeout: int = 600,
             env: Optional[dict] = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python <args>`` (or ``bash`` for .sh) with this interpreter; fail with its output."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHON=sys.executable, OMP_NUM_THREADS='1')
    full_env['PATH'] = osp.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
    full_env.update(env or {})
    cmd = ['bash'] + args if args[0].endswith('.sh') else [sys.executable] + args
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'command failed ({proc.returncode}): {" ".join(cmd)}\n'
                             f'--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n'
                             f'{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> str:
    """Small demo datasets of every task (deterministic, seed 0)."""
    from mmdynamic.datasets import make_demo_data
    root = str(tmp_path_factory.mktemp('demo'))
    make_demo_data(root, num_train=40, num_val=20)
    return root


def _default_scope_table():
    from mmengine.registry import DefaultScope
    return DefaultScope._instance_dict.copy()


_INITIAL_SCOPES = _default_scope_table()  # before any test (and any module fixture) ran


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """After each test, the default registry scope is what it was before the first test: a test (or a
    module fixture) that builds a runner or calls ``init_default_scope`` does not change the scope of
    later tests. MMEngine keeps it in ``DefaultScope``'s instance table, restored here as
    ``DefaultScope.overwrite_default_scope`` does."""
    yield
    from mmengine.registry import DefaultScope
    DefaultScope._instance_dict = _INITIAL_SCOPES.copy()


#: set to 1 to run the tests marked ``inductor`` (torch.compile with Inductor's C++ code generation:
#: 5-25 minutes each on a 2-core machine, too long for the suite's CI budget)
INDUCTOR_TESTS_ENV = 'MMDYN_INDUCTOR_TESTS'


@pytest.hookimpl(tryfirst=True)  # before the ``-m`` selection reads the markers
def pytest_collection_modifyitems(config, items) -> None:
    """Skip the tests marked ``cuda`` (and the ``cuda`` variants of device-parametrised tests, see
    :data:`DEVICES`) where torch sees no CUDA GPU, so that the CPU suite stays green; skip the
    tests marked ``inductor`` unless ``MMDYN_INDUCTOR_TESTS=1``.

    Mark ``serial`` every test parametrised with ``threads=2`` (the learning claims at two
    intra-op threads): they need both cores, so ``make test`` runs them after the parallel workers
    (``-m "not serial"``); two threads of one worker beside the other worker spin-wait for a core
    (a 33 s case took 361 s)."""
    import torch
    for item in items:
        callspec = getattr(item, 'callspec', None)
        if callspec is not None and callspec.params.get('threads') == 2:
            item.add_marker(pytest.mark.serial)
    skips = []
    if not torch.cuda.is_available():
        skips.append(('cuda', 'needs a CUDA GPU (torch.cuda.is_available() is False)'))
    if os.environ.get(INDUCTOR_TESTS_ENV) != '1':
        skips.append(('inductor', f'compiles with Inductor for minutes: opt in with '
                                  f'{INDUCTOR_TESTS_ENV}=1'))
    for marker, reason in skips:
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config) -> None:
    """Each pytest-xdist worker computes on one intra-op thread: N workers on N cores, each with
    torch's default of N threads, would oversubscribe the cores."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        import torch
        torch.set_num_threads(1)


# the device parametrisation of tests that run the same body on the CPU and on a GPU: the cuda
# variant carries the ``cuda`` marker (skipped without a GPU)
DEVICES = [pytest.param('cpu', id='cpu'), pytest.param('cuda', id='cuda', marks=pytest.mark.cuda)]


@contextlib.contextmanager
def torch_threads(num: int):
    """Run the block with ``num`` intra-op threads (the learning claims are checked at 1 and 2),
    restored afterwards."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def single_thread():
    """One intra-op thread for the test (small tensors; OpenMP threads stall on a busy 2-core
    machine), restored afterwards."""
    with torch_threads(1):
        yield
