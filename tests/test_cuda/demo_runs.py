# Copyright (c) mmdynamic contributors. All rights reserved.
"""The demo configs of every family run through ``tools/train.py`` and ``tools/test.py`` on a device.

For each demo config (``configs/*/*demo*.py``), in four phases:

A. ``train.py`` in fp32, killed right after ``iter_3.pth`` (2 epochs of 2 iterations, or 4
   iterations for iteration-based configs, a checkpoint after each) | on CUDA, ``train.py --amp``
   for 2 iterations (MMEngine's ``AmpOptimWrapper``, dynamic loss scale);
B. ``train.py --resume`` of the killed run, to ``iter_4.pth`` | ``test.py`` of the last
   checkpoint (``--amp``: fp16 inference on CUDA), which for step-wise models also writes the anytime
   report (``budget.json`` with the exit costs);
C. step-wise models: ``test.py --budget B --fit-on val`` of the resumed run's ``iter_4.pth``, B halfway
   between the cheapest and the dearest exit (from B's report);
D. step-wise models: ``test.py`` with ``model.exit_policy`` set to C's fitted policy: real early
   exit (``early_exit.json``, the realised GMACs).

The runs of all configs of a phase go in parallel (a bounded number of processes), each in a new
interpreter (``launch.py``); a failing run is recorded for its config, not raised, so that each
config's test reports its own failure. With a ``deadline`` (``MMDYNAMIC_CUDA_DEADLINE``, seconds
since the epoch, set by tools/misc/gpu_check.sh) runs still going then are killed and reported as
such, so that the tests end in time with a result per config.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mmdynamic.testing.configs import drop_pretrained, inner_dataset

from ..conftest import REPO

LAUNCH = osp.join(osp.dirname(osp.abspath(__file__)), 'launch.py')
DEMO_CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*',
                                                                          '*demo*.py')))
TASKS = {'mmpretrain': 'cls', 'mmaction': 'video', 'mmdet': 'det', 'mmseg': 'seg'}
BATCH = 4  # training samples per iteration (the demo sets have 40 training samples)
EVAL_SAMPLES = 10  # validation / test samples


@dataclass
class Job:
    """One tool run: ``args`` (tool first), its log, the exit code it must end with."""
    args: List[str]
    log: str
    device: str
    kill_after: Optional[str] = None
    returncode: int = 0
    env: Dict[str, str] = field(default_factory=dict)

    def start(self) -> subprocess.Popen:
        cmd = [sys.executable, LAUNCH, '--device', self.device]
        if self.kill_after:
            cmd += ['--kill-after', self.kill_after]
        env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', **self.env)
        with open(self.log, 'w') as out:
            return subprocess.Popen(cmd + [str(a) for a in self.args], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)


def run_jobs(jobs: List[Job], limit: int, deadline: Optional[float] = None) -> List[Optional[str]]:
    """Run ``jobs`` with at most ``limit`` at a time, killing what still runs at ``deadline``
    (seconds since the epoch; default 15 minutes from now). Returns per job None (it ended with
    its exit code) or the reason it failed, with the end of its log."""
    results: List[Optional[str]] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    running: Dict[int, subprocess.Popen] = {}
    deadline = deadline or time.time() + 900
    while pending or running:
        while pending and len(running) < limit:
            index = pending.pop(0)
            if time.time() >= deadline:
                results[index] = 'not started: the deadline had passed'
                continue
            running[index] = jobs[index].start()
        for index, proc in list(running.items()):
            if proc.poll() is None and time.time() < deadline:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            del running[index]
            job = jobs[index]
            if proc.returncode != job.returncode:
                with open(job.log) as f:
                    tail = f.read()[-5000:]
                late = ' (killed at the deadline)' if time.time() >= deadline else ''
                results[index] = (f'{" ".join(map(str, job.args[:2]))}: exit code '
                                  f'{proc.returncode}{late}, expected {job.returncode}\n{tail}')
        time.sleep(0.2)
    return results


def _point_at_demo_data(cfg, task: str, demo_root: str) -> None:
    """The dataloaders (and COCO evaluators) read the tests' demo data of ``task``."""
    root = osp.join(demo_root, task)
    for split in ('train', 'val', 'test'):
        dataset = inner_dataset(cfg[f'{split}_dataloader'])
        name = 'train' if split == 'train' else 'val'
        if task == 'cls':
            dataset.update(data_root=root, data_prefix=name, ann_file='')
        elif task == 'video':
            dataset.update(ann_file=f'{root}/{name}_list.txt', data_prefix=dict(video=root))
        else:  # det and seg: relative paths under data_root
            dataset.update(data_root=root + '/')
    if task == 'det':
        for key in ('val_evaluator', 'test_evaluator'):
            evaluator = cfg[key]
            for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
                if 'ann_file' in metric:
                    metric['ann_file'] = osp.join(root, 'annotations', 'instances_val.json')


def is_iter_based(cfg) -> bool:
    loop = cfg.get('train_cfg') or {}
    return 'IterBased' in str(loop.get('type', '')) or loop.get('by_epoch') is False


def prepare_config(config: str, out_dir: str, demo_root: str) -> str:
    """A copy of the demo ``config`` for these runs: no pre-trained weights, the tests' demo data,
    :data:`BATCH` training samples per iteration, 2 iterations per epoch (epoch-based) or 4
    iterations (iteration-based), a checkpoint after every iteration (all kept), validation and
    test on :data:`EVAL_SAMPLES` samples, a log line per iteration. Returns its path."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    task = TASKS[cfg.get('default_scope', 'mmpretrain')]
    drop_pretrained(cfg.model)
    cfg.load_from = None
    _point_at_demo_data(cfg, task, demo_root)
    cfg.train_dataloader.batch_size = BATCH
    inner_dataset(cfg.train_dataloader)['indices'] = 2 * BATCH
    for split in ('val', 'test'):
        inner_dataset(cfg[f'{split}_dataloader'])['indices'] = EVAL_SAMPLES
    if is_iter_based(cfg):
        cfg.train_cfg.update(max_iters=4, val_interval=4)
    else:
        cfg.train_cfg.update(max_epochs=2, val_interval=2)
    cfg.default_hooks.checkpoint.update(interval=1, by_epoch=False, max_keep_ckpts=-1,
                                        save_best=None)
    cfg.default_hooks.logger.interval = 1
    path = osp.join(out_dir, osp.basename(config))
    cfg.dump(path)
    return path


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


@dataclass
class DemoRun:
    """Everything one demo config's runs produced (logs, failures, reports)."""
    config: str
    device: str
    root: str
    prepared: str = ''
    failures: List[str] = field(default_factory=list)
    logs: Dict[str, str] = field(default_factory=dict)
    budget: Optional[dict] = None  # phase B's anytime report (step-wise models)
    budget_fit: Optional[dict] = None  # phase C's report
    early_exit: Optional[dict] = None  # phase D's early_exit.json
    amp_checkpoint: Optional[dict] = None

    def dir(self, name: str) -> str:
        return osp.join(self.root, name)

    def read_log(self, name: str) -> str:
        with open(self.dir(f'{name}.log')) as f:
            return f.read()


def _phase(runs: List[DemoRun], make, limit: int, deadline: Optional[float]) -> None:
    """Run the jobs ``make(run)`` (a dict name -> Job) of every run still without failures."""
    jobs, owners = [], []
    for run in runs:
        if run.failures:
            continue
        for name, job in make(run).items():
            jobs.append(job)
            owners.append((run, name))
    for (run, name), error in zip(owners, run_jobs(jobs, limit, deadline)):
        run.logs[name] = run.read_log(name) if osp.isfile(run.dir(f'{name}.log')) else ''
        if error:
            run.failures.append(f'{name}: {error}')


def _job(run: DemoRun, name: str, args: List[str], **kwargs) -> Job:
    return Job(args=args, log=run.dir(f'{name}.log'), device=run.device, **kwargs)


def run_demo_configs(configs: List[str], device: str, root: str, demo_root: str,
                     limit: int, deadline: Optional[float] = None) -> Dict[str, DemoRun]:
    """Phases A-D (see the module docstring) for every config on ``device`` ('cpu' or 'cuda';
    the AMP runs only on CUDA), ending by ``deadline`` (seconds since the epoch). Returns the runs
    by config."""
    runs = []
    for config in configs:
        run = DemoRun(config, device, osp.join(root, osp.splitext(osp.basename(config))[0]))
        os.makedirs(run.root, exist_ok=True)
        run.prepared = prepare_config(config, run.root, demo_root)
        runs.append(run)
    amp = device == 'cuda'

    def phase_a(run):
        train = ['tools/train.py', run.prepared]
        jobs = dict(killed=_job(run, 'killed', train + ['--work-dir', run.dir('fp32')],
                                kill_after='iter_3.pth', returncode=-9))
        if amp:
            jobs['amp'] = _job(run, 'amp', train + ['--amp', '--work-dir', run.dir('amp'),
                                                    '--cfg-options', 'train_cfg.max_iters=2'
                                                    if is_iter_based_file(run.prepared) else
                                                    'train_cfg.max_epochs=1'])
        return jobs

    def phase_b(run):
        jobs = dict(resume=_job(run, 'resume', ['tools/train.py', run.prepared, '--resume',
                                                '--work-dir', run.dir('fp32')]))
        source = run.dir('amp') if amp else run.dir('fp32')
        test = ['tools/test.py', run.prepared, _latest(source), '--work-dir', run.dir('test')]
        jobs['test'] = _job(run, 'test', test + (['--amp'] if amp else []))
        return jobs

    _phase(runs, phase_a, limit, deadline)
    _phase(runs, phase_b, limit, deadline)
    for run in runs:
        report = osp.join(run.dir('test'), 'budget.json')
        if not run.failures and osp.isfile(report):
            with open(report) as f:
                run.budget = json.load(f)
        if amp and not run.failures:
            import torch
            path = _latest(run.dir('amp'))
            if osp.isfile(path):
                run.amp_checkpoint = torch.load(path, map_location='cpu', weights_only=False)
            else:
                run.failures.append(f'the --amp run left no checkpoint in {run.dir("amp")}')

    stepwise = [r for r in runs if r.budget is not None]

    def phase_c(run):
        costs = run.budget['exit_flops']
        budget = f'{(costs[0] + costs[-1]) / 2:.6g}'
        run.logs['budget_value'] = budget
        return dict(fit=_job(run, 'fit', [
            'tools/test.py', run.prepared, osp.join(run.dir('fp32'), 'iter_4.pth'), '--work-dir',
            run.dir('fit'), '--budget', budget, '--fit-on', 'val']))

    def phase_d(run):
        policy = sorted(glob.glob(osp.join(run.dir('fit'), 'exit_policy_*.json')))
        if not policy:
            run.failures.append(f'no exit_policy_*.json in {run.dir("fit")}')
            return {}
        return dict(exit=_job(run, 'exit', [
            'tools/test.py', early_exit_config(run.prepared, policy[0]),
            osp.join(run.dir('fp32'), 'iter_4.pth'), '--work-dir', run.dir('exit')]))

    _phase(stepwise, phase_c, limit, deadline)
    _phase(stepwise, phase_d, limit, deadline)
    for run in stepwise:
        for attr, path in (('budget_fit', osp.join(run.dir('fit'), 'budget.json')),
                           ('early_exit', osp.join(run.dir('exit'), 'early_exit.json'))):
            if osp.isfile(path):
                with open(path) as f:
                    setattr(run, attr, json.load(f))
    return {run.config: run for run in runs}


EXIT_METRICS = ('AnytimeAccuracy', 'BudgetedAccuracy', 'AnytimeMAP', 'BudgetedMAP')


def early_exit_config(path: str, policy: str) -> str:
    """A copy of config ``path`` whose model exits early with the thresholds in ``policy``; the
    metrics that need every exit's logits are left out of its test evaluator."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.model.exit_policy = policy
    evaluator = cfg.test_evaluator
    metrics = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    cfg.test_evaluator = [m for m in metrics
                          if str(m.get('type', '')).split('.')[-1] not in EXIT_METRICS]
    out = osp.splitext(path)[0] + '_early-exit.py'
    cfg.dump(out)
    return out


def is_iter_based_file(path: str) -> bool:
    from mmengine.config import Config
    return is_iter_based(Config.fromfile(path))


def _latest(work_dir: str) -> str:
    """The newest checkpoint of a finished run (``last_checkpoint`` names it)."""
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return last_checkpoint(work_dir)
    return osp.join(work_dir, 'missing.pth')
