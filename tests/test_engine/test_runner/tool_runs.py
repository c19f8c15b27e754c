# Copyright (c) mmdynamic contributors. All rights reserved.
"""Run ``tools/*.py`` in separate processes in the background; without paying the imports each
time (:class:`ToolRun`) or in a new interpreter (:class:`Background`, e.g. for the shell scripts).

A new interpreter spends most of a short demo run importing torch, MMEngine and the four OpenMMLab
frameworks. :class:`ToolRun` forks each run from a server process that imported them once
(``multiprocessing``'s forkserver with ``mmdynamic.models`` preloaded) and has run nothing else:
every run is a fresh process in the state right after those imports (its own memory, random
generators, registries, no state of earlier runs). It runs the tool as ``python tools/x.py ...``
would (``runpy``, ``__main__``), with one thread, its output in a log file; it can be SIGKILLed.
"""
import multiprocessing
import os
import os.path as osp
import runpy
import signal
import subprocess
import sys
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
_CONTEXT = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context('forkserver')
        ctx.set_forkserver_preload(['mmdynamic.models', __name__])
        # the server (and so every run) gets one OpenMP thread, as run_tool's subprocesses do
        saved = os.environ.get('OMP_NUM_THREADS')
        os.environ['OMP_NUM_THREADS'] = '1'
        try:
            from multiprocessing import forkserver
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ['OMP_NUM_THREADS']
            else:
                os.environ['OMP_NUM_THREADS'] = saved
        _CONTEXT = ctx
    return _CONTEXT


def _child(args: List[str], log: str, kill_after: Optional[str]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = open(2, 'w', buffering=1, closefd=False)
    os.chdir(REPO)
    import torch
    torch.set_num_threads(1)
    if kill_after is not None:
        real_replace = os.replace

        def replace(src, dst, *rest, **kwargs):  # the checkpoint is complete: die at once
            real_replace(src, dst, *rest, **kwargs)
            if osp.basename(dst) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        os.replace = replace
    sys.argv = [osp.join(REPO, args[0])] + [str(a) for a in args[1:]]
    try:
        runpy.run_path(sys.argv[0], run_name='__main__')
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()


class ToolRun:
    """``python args`` (``args[0]`` a tool under tools/) started in the background as a fresh
    process forked from the preloaded server; with ``kill_after``, it SIGKILLs itself right after
    writing the checkpoint of that name. :meth:`wait` checks the exit code, returns the output."""

    def __init__(self, args: List[str], log: str, kill_after: Optional[str] = None) -> None:
        self.log = str(log)
        self.process = _context().Process(target=_child,
                                          args=(list(map(str, args)), self.log, kill_after))
        self.process.start()

    def wait(self, returncode: Optional[int] = None, timeout: int = 600) -> str:
        self.process.join(timeout)
        code = self.process.exitcode
        expected = returncode if returncode is not None else 0
        with open(self.log) as f:
            out = f.read()
        assert code == expected, f'exit code {code}, expected {expected}:\n{out[-6000:]}'
        return out


def killed_run(args: List[str], log: str, name: str) -> ToolRun:
    """A :class:`ToolRun` that dies by SIGKILL right after checkpoint ``name`` is written."""
    run = ToolRun(args, log, kill_after=name)
    run.wait = lambda timeout=600: ToolRun.wait(run, -signal.SIGKILL, timeout)
    return run


class Background:
    """``python args`` (``bash`` for .sh) started in the background in a new interpreter, as
    ``run_tool`` runs it; its output in ``log``. :meth:`wait` checks the exit code, returns the
    output."""

    def __init__(self, args, log, env=None) -> None:
        self.log = log
        full_env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHON=sys.executable,
                        OMP_NUM_THREADS='1')
        full_env['PATH'] = osp.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
        full_env.update(env or {})
        cmd = (['bash'] if str(args[0]).endswith('.sh') else [sys.executable]) + list(args)
        with open(log, 'w') as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait(self, returncode: int = 0, timeout: int = 600) -> str:
        code = self.proc.wait(timeout)
        with open(self.log) as f:
            out = f.read()
        assert code == returncode, f'exit code {code}, expected {returncode}:\n{out[-6000:]}'
        return out
