# Copyright (c) mmdynamic contributors. All rights reserved.
"""Exact resume: a run killed mid-epoch and resumed ends with the same weights as an uninterrupted
run (bitwise on CPU with deterministic settings and ``num_workers=0``).

MMEngine 0.10 resumes weights, optimizer, schedulers and the message hub, but

1. does not save the random number generators, so the dynamic models' random parts (Gumbel masks of
   SAR, random patches and PPO actions of GFNet, glimpse noise, random augmentations) restart from the
   seed;
2. restarts an epoch-based run at the beginning of the interrupted epoch, training its first batches
   twice.

:class:`RNGStateHook` stores the generator states of every rank in the checkpoint (``rng_states``)
and hands them to the train loop on resume. :class:`ExactResumeEpochBasedTrainLoop` and
:class:`ExactResumeIterBasedTrainLoop` skip the batches already trained (in the interrupted epoch, or
from the start) and restore the generators right before the next batch is drawn, which is exactly
when the checkpoint was written. ``tools/train.py`` uses them for every config whose ``train_cfg`` does
not name its own loop type.

Where it cannot be bitwise: with ``num_workers > 0`` the data-loading workers reseed themselves
per epoch and skipped batches are not processed in the same worker order, so random augmentations
after the resume point differ from the uninterrupted run (weights then differ like two runs with
different augmentation noise, i.e. within run-to-run variation); GPU kernels without deterministic
mode may differ in the last bits.
"""
import logging
import random
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmdynamic.registry import HOOKS, LOOPS, register_dual

_PENDING = '_mmdynamic_pending_rng_states'


def get_rng_states() -> Dict:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict) -> None:
    """Restore what :func:`get_rng_states` returned.

    The CUDA states are restored per visible GPU; a checkpoint written where another number of GPUs
    was visible restores the first ones and says so (the others keep their generators).
    """
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    cuda = states.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if len(cuda) != count:
            print_log(f'the checkpoint holds the CUDA generator states of {len(cuda)} GPU(s), this '
                      f'process sees {count}: restoring the first {min(len(cuda), count)}',
                      logger='current', level=logging.WARNING)
        for index, state in enumerate(cuda[:count]):
            torch.cuda.set_rng_state(state, index)


@register_dual(HOOKS)
class RNGStateHook(Hook):
    """Save the random generator states of every rank in each checkpoint; restore them on resume
    (through the exact-resume loops, at the point where the checkpoint was written).

    MMEngine writes checkpoints on rank 0 only, so the states of all ranks are gathered before, at
    the end of each training iteration (or epoch) after which the checkpoint hook will save: every
    rank is there. Checkpoints written elsewhere (e.g. the best checkpoint after validation) carry
    the states only in single-process runs.

    Validation during training leaves the generators as it found them (its states are saved before
    and restored after), so the training's random stream does not depend on whether, or how often,
    it is validated (and a run resumed from an end-of-epoch checkpoint, which skips the validation
    that followed it, stays on the same stream).
    """
    priority = 'LOW'  # before the checkpoint hook (VERY_LOW) of the same iteration / epoch

    def __init__(self) -> None:
        self._outside_val: Optional[Dict] = None
        self._gathered: Optional[Dict] = None

    @staticmethod
    def _checkpoint_hook(runner):
        from mmengine.hooks import CheckpointHook
        return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        if get_world_size() == 1:
            return
        hook = self._checkpoint_hook(runner)
        if hook is None or bool(hook.by_epoch) != by_epoch:
            return
        if by_epoch:
            saving = self.every_n_epochs(runner, hook.interval) or self.is_last_train_epoch(runner)
        else:
            saving = (self.every_n_train_iters(runner, hook.interval)
                      or self.is_last_train_iter(runner))
        if saving:  # a collective: every rank runs this same test and reaches this call
            self._gathered = dict(iter=runner.iter + (0 if by_epoch else 1),
                                  states=all_gather_object(get_rng_states()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        if get_world_size() == 1:
            checkpoint['rng_states'] = [get_rng_states()]
        elif self._gathered is not None and self._gathered['iter'] == checkpoint['meta'].get('iter'):
            checkpoint['rng_states'] = self._gathered['states']

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        states = checkpoint.get('rng_states')
        if not states:
            return
        if len(states) != get_world_size():
            print_log(f'the checkpoint holds random states of {len(states)} processes, this run '
                      f'has {get_world_size()}: they are not restored', logger='current',
                      level='WARNING')
            return
        setattr(runner, _PENDING, states[get_rank()])

    def before_val(self, runner) -> None:
        self._outside_val = get_rng_states()

    def after_val(self, runner) -> None:
        if self._outside_val is not None:
            set_rng_states(self._outside_val)
            self._outside_val = None


def restore_pending_rng_states(runner) -> bool:
    """Restore the generator states handed over by :class:`RNGStateHook` (once)."""
    states = getattr(runner, _PENDING, None)
    if states is None:
        return False
    set_rng_states(states)
    setattr(runner, _PENDING, None)
    return True


class _RestoreAfter:
    """An iterator that restores the pending generator states before its item ``skip``.

    The loops draw (and drop) the ``skip`` batches already trained, then the next batch is drawn
    with the generators as they were when the checkpoint was written.
    """

    def __init__(self, iterator: Iterator, skip: int, runner) -> None:
        self.iterator, self.left, self.runner = iterator, skip, runner

    def __iter__(self) -> '_RestoreAfter':
        return self

    def __next__(self):
        if self.left == 0:
            restore_pending_rng_states(self.runner)
        self.left -= 1
        return next(self.iterator)


@register_dual(LOOPS)
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """MMEngine's epoch-based loop that resumes inside an epoch where the checkpoint was written.

    Args: as :class:`mmengine.runner.EpochBasedTrainLoop`.
    """

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        if done <= 0:
            restore_pending_rng_states(self.runner)
            return super().run_epoch()
        print_log(f'resuming inside epoch {self._epoch + 1}: skipping its first {done} batches',
                  logger='current')
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = _RestoreAfter(iter(self.dataloader), done, self.runner)
        for _ in range(done):
            next(batches)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@register_dual(LOOPS)
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """MMEngine's iteration-based loop with the generator states restored after the skipped batches.

    Args: as :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    def run(self):
        # MMEngine's run() draws self._iter batches to skip them, then draws the next one
        self.dataloader_iterator = _RestoreAfter(self.dataloader_iterator, self._iter, self.runner)
        return super().run()


_STANDARD_LOOPS = {'EpochBasedTrainLoop': 'mmdynamic.ExactResumeEpochBasedTrainLoop',
                   'IterBasedTrainLoop': 'mmdynamic.ExactResumeIterBasedTrainLoop'}


def exact_resume_loop(train_cfg: Optional[Dict]) -> Optional[Dict]:
    """``train_cfg`` with the matching exact-resume loop: for ``by_epoch`` configs and for MMEngine's
    two standard loop types (named with or without a scope); a config naming another (custom) loop is
    returned unchanged."""
    if not train_cfg:
        return train_cfg
    cfg = dict(train_cfg)
    if 'type' in cfg:
        name = cfg['type'] if isinstance(cfg['type'], str) else getattr(cfg['type'], '__name__', '')
        exact = _STANDARD_LOOPS.get(name.split('.')[-1])
        if exact is None:
            return train_cfg
        cfg['type'] = exact
        return cfg
    by_epoch = cfg.pop('by_epoch', True)
    cfg['type'] = _STANDARD_LOOPS['EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop']
    if not by_epoch:
        cfg.pop('max_epochs', None)
    return cfg


__all__: List[str] = [
    'RNGStateHook', 'ExactResumeEpochBasedTrainLoop', 'ExactResumeIterBasedTrainLoop',
    'exact_resume_loop', 'get_rng_states', 'set_rng_states', 'restore_pending_rng_states'
]
