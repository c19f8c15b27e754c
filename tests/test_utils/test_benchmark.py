# Copyright (c) mmdynamic contributors. All rights reserved.
import argparse
import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from mmdynamic.utils.benchmark import (TUNED_MALLOC_ENV, add_inference_args, allocator_note,
                                       check_inference_args, encoder_note,
                                       freeze_from_args, freeze_module, freeze_submodules,
                                       prepare_for_inference, time_interleaved,
                                       tuned_malloc_active)

SCRIPT = """
import os, sys
from mmdynamic.utils.benchmark import reexec_with_tuned_malloc
print('start', flush=True)
reexec_with_tuned_malloc()
print('run', os.environ.get('MALLOC_MMAP_MAX_'), os.environ.get('MALLOC_TRIM_THRESHOLD_'),
      ' '.join(sys.argv[1:]))
"""


def _run(tmp_path, *args):
    script = tmp_path / 'bench.py'
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC_ENV}
    proc = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split('\n')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc allocator settings')
def test_reexec_sets_the_allocator_once_and_keeps_the_arguments(tmp_path):
    lines = _run(tmp_path, '--runs', '3')
    # started twice (before and after the restart), ran once with the settings and the arguments
    assert lines.count('start') == 2
    assert f"run 0 {TUNED_MALLOC_ENV['MALLOC_TRIM_THRESHOLD_']} --runs 3" in lines


def test_system_malloc_flag_keeps_the_default(tmp_path):
    lines = _run(tmp_path, '--system-malloc')
    assert lines.count('start') == 1 and 'run None None --system-malloc' in lines


def test_allocator_note_names_the_setting(monkeypatch):
    for key in TUNED_MALLOC_ENV:
        monkeypatch.delenv(key, raising=False)
    assert not tuned_malloc_active() and 'default' in allocator_note()
    for key, value in TUNED_MALLOC_ENV.items():
        monkeypatch.setenv(key, value)
    assert tuned_malloc_active() and 'MALLOC_MMAP_MAX_=0' in allocator_note()


def test_prepare_for_inference_folds_bn_keeps_outputs_and_leaves_3d_convs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))
    extra = nn.Conv3d(2, 2, 3)  # a 5-d weight (the Uni-AdaFocus policy has such layers)
    model.add_module('extra', extra)
    model.train()
    for _ in range(3):  # running statistics that differ from the initial ones
        model[:5](torch.randn(4, 3, 16, 16))
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        reference = model[:5](x)
        prepared = prepare_for_inference(model, copy_model=True)
        out = prepared[:5](x)
    assert model[1].__class__ is nn.BatchNorm2d  # the argument is untouched with copy_model
    assert not any(isinstance(m, nn.BatchNorm2d) and m.training for m in prepared.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())  # folded
    assert prepared[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert prepared.extra.weight.is_contiguous()
    assert torch.allclose(out, reference, atol=1e-5)


class _TwoMaps(nn.Module):
    """A small backbone with 1x1 and strided convs that returns two maps (like mmpretrain's)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 8, 1))

    def forward(self, x):
        stem = self.stem(x)
        return stem, torch.relu(stem + self.block(stem))


def test_freeze_submodules_keeps_outputs_at_other_batch_sizes():
    torch.manual_seed(0)
    model = nn.Sequential(_TwoMaps(), nn.Identity())
    prepare_for_inference(model)
    eager = _TwoMaps()
    eager.load_state_dict(model[0].state_dict())
    eager.eval()
    freeze_submodules(model, {'0': torch.randn(4, 3, 16, 16)})
    assert isinstance(model[0], torch.jit.ScriptModule)
    with torch.no_grad():
        for batch in (1, 3, 8):
            x = torch.randn(batch, 3, 16, 16)
            for ref, out in zip(eager(x), model[0](x)):
                assert out.shape == ref.shape
                assert torch.allclose(out, ref, atol=1e-4)
    # nested names are replaced where they live
    outer = nn.Module()
    outer.body = nn.Sequential(_TwoMaps().eval())
    freeze_submodules(outer, {'body.0': torch.randn(2, 3, 8, 8)})
    assert isinstance(outer.body[0], torch.jit.ScriptModule)


class _BatchSpecific(nn.Module):
    """Python control flow on the batch size: a trace keeps only the traced branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        out = self.conv(x)
        return out * 2 if x.shape[0] == 4 else out


def test_freeze_module_refuses_what_it_cannot_reproduce():
    module = _BatchSpecific().eval()
    with pytest.raises(RuntimeError, match='does not reproduce the eager one'):
        freeze_module(module, torch.randn(4, 3, 8, 8), name='batch_specific')
    with pytest.raises(RuntimeError, match='eval mode'):
        freeze_module(_TwoMaps().train(), torch.randn(2, 3, 8, 8))


@pytest.fixture
def restore_onednn_fusion():
    enabled = torch.jit.onednn_fusion_enabled()
    yield
    torch.jit.enable_onednn_fusion(enabled)


def test_freeze_with_onednn_graph_keeps_outputs(restore_onednn_fusion):
    torch.manual_seed(0)
    torch.jit.enable_onednn_fusion(False)
    model = nn.Sequential(_TwoMaps())
    prepare_for_inference(model)
    eager = copy.deepcopy(model[0])
    args = argparse.Namespace(no_freeze=False, onednn_graph=True)
    freeze_from_args(args, model, {'0': torch.randn(4, 3, 16, 16)})
    assert torch.jit.onednn_fusion_enabled()  # stays on while the fused graphs run
    assert encoder_note(args) == 'TorchScript-frozen (oneDNN Graph)'
    with torch.no_grad():
        for batch in (1, 4, 4, 4, 6):  # new shapes are profiled and fused on their first calls
            x = torch.randn(batch, 3, 16, 16)
            for ref, out in zip(eager(x), model[0](x)):
                assert torch.allclose(out, ref, atol=1e-4)
    # --no-freeze leaves the module as it is
    kept = nn.Sequential(_TwoMaps().eval())
    args = argparse.Namespace(no_freeze=True, onednn_graph=True)
    freeze_from_args(args, kept, {'0': torch.randn(2, 3, 8, 8)})
    assert not isinstance(kept[0], torch.jit.ScriptModule) and encoder_note(args) == 'eager'


def test_time_interleaved_runs_part_j_of_every_model_before_part_j_plus_1():
    calls = []
    parts = [[lambda m=m, j=j: calls.append((m, j)) for j in range(3)] for m in range(2)]
    seconds = time_interleaved(parts, runs=2, warmup=1)
    assert len(seconds) == 2 and all(s >= 0 for s in seconds)
    one_round = [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    assert calls == one_round * 3  # warm-up + 2 timed rounds
    with pytest.raises(ValueError, match='same number of parts'):
        time_interleaved([parts[0], parts[1][:2]], runs=1, warmup=0)


def test_onednn_graph_needs_warm_up_rounds():
    parser = argparse.ArgumentParser()
    parser.add_argument('--warmup', type=int, default=1)
    add_inference_args(parser, freeze=True)
    check_inference_args(parser, parser.parse_args(['--warmup', '0']))  # fine without the fuser
    check_inference_args(parser, parser.parse_args(['--onednn-graph', '--warmup', '2']))
    with pytest.raises(SystemExit):
        check_inference_args(parser, parser.parse_args(['--onednn-graph', '--warmup', '1']))


# ---------------------------------------------------------------------------- devices and timing
from mmdynamic.utils import benchmark as bench  # noqa: E402


def test_device_option_is_opt_in_and_checked():
    parser = argparse.ArgumentParser()
    parser.add_argument('--warmup', type=int, default=1)
    add_inference_args(parser, layout=False)
    with pytest.raises(SystemExit):  # a tool that does not move its models rejects --device
        parser.parse_args(['--device', 'cuda'])
    parser = argparse.ArgumentParser()
    parser.add_argument('--warmup', type=int, default=1)
    add_inference_args(parser, layout=False, freeze=True, device=True)
    args = parser.parse_args([])
    assert args.device == 'cpu' and bench.device_from_args(args) == torch.device('cpu')
    check_inference_args(parser, args)
    assert bench.device_from_args(argparse.Namespace()) == torch.device('cpu')  # no option: CPU
    with pytest.raises(SystemExit):  # not a device
        check_inference_args(parser, parser.parse_args(['--device', 'gpu0']))


def test_resolve_device_names_the_problem(monkeypatch):
    assert bench.resolve_device(None) == torch.device('cpu')
    assert bench.resolve_device('cpu') == torch.device('cpu')
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        bench.resolve_device('gpu0')
    with pytest.raises(ValueError, match="time 'cpu' or 'cuda'"):
        bench.resolve_device('meta')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='no CUDA GPU'):
        bench.resolve_device('cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    assert bench.resolve_device('cuda:0') == torch.device('cuda', 0)
    with pytest.raises(RuntimeError, match='only 1 CUDA GPU'):
        bench.resolve_device('cuda:1')


def test_cuda_device_keeps_encoders_eager_and_refuses_onednn_graph(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    args = argparse.Namespace(no_freeze=False, onednn_graph=False, device='cuda')
    model = nn.Sequential(_TwoMaps().eval())
    freeze_from_args(args, model, {'0': torch.randn(2, 3, 8, 8)})
    assert not isinstance(model[0], torch.jit.ScriptModule)
    assert encoder_note(args).startswith('eager (on cuda')
    parser = argparse.ArgumentParser()
    parser.add_argument('--warmup', type=int, default=3)
    add_inference_args(parser, freeze=True, device=True)
    with pytest.raises(SystemExit):
        check_inference_args(parser, parser.parse_args(['--device', 'cuda', '--onednn-graph']))
    check_inference_args(parser, parser.parse_args(['--device', 'cuda']))


def test_device_note_names_the_cpu():
    assert bench.device_note('cpu').startswith('CPU: ') and 'logical cores' in bench.device_note()


class _FakeCuda:
    """Stands in for torch.cuda in :func:`time_interleaved`: events record the log position at
    which they were recorded; ``elapsed_time`` fails unless the device was synchronised after the
    stop event was recorded (reading an event before that is the classic timing bug)."""

    def __init__(self) -> None:
        self.log = []
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.at = None

            def record(self, stream=None):
                fake.log.append('record')
                self.at = len(fake.log)

            def elapsed_time(self, end):
                synced = [i for i, e in enumerate(fake.log, 1) if e == 'sync']
                assert synced and synced[-1] > end.at, 'event read before synchronize'
                return 1000.0 * (end.at - self.at)  # ms: one "second" per log entry between

        self.Event = Event

    def install(self, monkeypatch):
        import contextlib
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
        monkeypatch.setattr(torch.cuda, 'Event', self.Event)
        monkeypatch.setattr(torch.cuda, 'current_stream', lambda device=None: None)
        monkeypatch.setattr(torch.cuda, 'device', lambda device: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, 'synchronize', lambda device=None: self.log.append('sync'))


def test_time_interleaved_on_cuda_brackets_calls_with_events_and_syncs_before_reading(monkeypatch):
    fake = _FakeCuda()
    fake.install(monkeypatch)
    parts = [[lambda m=m, j=j: fake.log.append(f'call{m}{j}') for j in range(2)] for m in range(2)]
    seconds = time_interleaved(parts, runs=3, warmup=1, device='cuda')
    warm = ['call00', 'call10', 'call01', 'call11', 'sync']  # warm-up, then wait for it
    one_round = ['record', 'call00', 'record', 'record', 'call10', 'record', 'record', 'call01',
                 'record', 'record', 'call11', 'record', 'sync']
    assert fake.log == warm + one_round * 3
    # each call: 2 log entries from its start event to its stop event (the call and the stop)
    assert seconds == [4.0, 4.0]
    # the CPU path of the same body gives the same call order, without events
    calls = []
    parts = [[lambda m=m, j=j: calls.append((m, j)) for j in range(2)] for m in range(2)]
    assert len(time_interleaved(parts, runs=1, warmup=0, device='cpu')) == 2
    assert calls == [(0, 0), (1, 0), (0, 1), (1, 1)]
    with pytest.raises(ValueError, match='runs >= 1'):
        time_interleaved(parts, runs=0, warmup=0)


def test_time_round_robin_measures_wall_time_on_cpu():
    import time as _time
    slow, fast = (lambda: _time.sleep(0.02)), (lambda: None)
    slow_s, fast_s = bench.time_round_robin([slow, fast], runs=3, warmup=0, device='cpu')
    assert slow_s >= 0.015 and fast_s < slow_s
