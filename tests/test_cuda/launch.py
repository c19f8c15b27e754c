# Copyright (c) mmdynamic contributors. All rights reserved.
"""Run a tool on a chosen device: ``python tests/test_cuda/launch.py [--device cpu|cuda]
[--kill-after NAME] TOOL [ARGS...]``.

``--device cpu`` hides the GPUs (``CUDA_VISIBLE_DEVICES=''``, set before torch starts CUDA), so that
MMEngine's runner, which picks a GPU whenever torch sees one, runs on the CPU; ``--device cuda``
checks that torch sees a GPU and leaves the environment alone. With ``--kill-after NAME`` the
process SIGKILLs itself right after a checkpoint of that name has been written (renamed into place),
like a run killed mid-training.

A new interpreter per run (not a fork of a process that imported torch): a process whose parent
asked the CUDA driver for its devices cannot use CUDA after ``fork``.
"""
import os
import os.path as osp
import runpy
import signal
import sys


def _kill_after(name: str) -> None:
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):  # the checkpoint is complete: die at once
        real_replace(src, dst, *args, **kwargs)
        if osp.basename(dst) == name:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def main(argv) -> None:
    device, kill_after = 'cuda', None
    while argv and argv[0] in ('--device', '--kill-after'):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == '--device':
            device = value
        else:
            kill_after = value
    if device not in ('cpu', 'cuda') or not argv:
        raise SystemExit(__doc__)
    if device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('launch.py --device cuda: torch sees no CUDA GPU')
    if kill_after:
        _kill_after(kill_after)
    sys.argv = argv
    runpy.run_path(argv[0], run_name='__main__')


if __name__ == '__main__':
    main(sys.argv[1:])
