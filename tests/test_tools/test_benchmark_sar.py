# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/benchmark_sar.py runs and prints its latency table."""
import os.path as osp

import pytest

from ..conftest import REPO, run_tool

SCRIPT = osp.join('tools', 'analysis_tools', 'benchmark_sar.py')


def _table(stdout: str, header_start: str):
    lines = stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert len(header) == 1, stdout
    rows = []
    for line in lines[header[0] + 2:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    return rows


def test_benchmark_sar_prints_table(tmp_path):
    out = tmp_path / 'latency.md'
    proc = run_tool([SCRIPT, '--runs', '2', '--warmup', '1', '--threads', '1', '--densities', '0.5',
                     '--sparse-impls', 'halo', 'gemm', '--breakdown', '--device', 'cpu',
                     '--batch-sizes', '1', '2', '--out', str(out)], cwd=REPO, timeout=300)
    lines = proc.stdout.splitlines()
    rows = _table(proc.stdout, '| model | density | threads | batch')
    names = ['ResNet-50', 'SAR-R50 G2s2a2b1 dense-masked', 'SAR-R50 G2s2a2b1 sparse (halo)',
             'SAR-R50 G2s2a2b1 sparse (gemm)']
    assert [r[0] for r in rows] == names * 2  # batch 1, then batch 2
    # columns: model, density, threads, batch, latency, speed-up, MACs (G), ratio, quotient
    assert [r[3] for r in rows] == ['1'] * 4 + ['2'] * 4
    for cells in rows:
        assert cells[2] == '1'  # threads
        assert float(cells[4]) > 0  # latency
        assert cells[5].endswith('x')
        assert float(cells[6]) > 0  # MACs (G) per image
    for batch_rows in (rows[:4], rows[4:]):
        resnet, dense, sparse, _ = batch_rows
        assert abs(float(resnet[6]) - 4.09) < 0.03  # ResNet-50 MACs
        assert resnet[1] == '-' and abs(float(dense[1]) - 0.5) < 0.05
        assert resnet[5] == '1.00x'
        assert dense[6] == sparse[6] and float(dense[6]) < float(resnet[6])
    assert 'convolutions: every nn.Conv2d through oneDNN' in proc.stdout
    assert '- CPU: ' in proc.stdout  # the device note
    for impl in ('halo', 'gemm'):  # both implementations checked against the dense path
        check = [line for line in lines if f'sparse ({impl}) vs dense output' in line]
        assert len(check) == 1 and check[0].endswith('MACs equal: True'), proc.stdout
        assert float(check[0].split('max rel. diff ')[1].split(';')[0]) < 1e-4
    assert out.read_text().strip() == proc.stdout.strip()
    # --breakdown: the parts of each model add up to its total
    start = [i for i, line in enumerate(lines) if line.startswith('Parts (')]
    assert len(start) == 1, proc.stdout
    by_model = {}
    for line in lines[start[0] + 4:]:
        if not line.startswith('|'):
            break
        model, part, ms = (c.strip() for c in line.strip('|').split('|'))
        by_model.setdefault(model, {})[part] = float(ms)
    assert set(by_model['ResNet-50']) >= {'layer1', 'layer4', 'total'}
    assert {'stage1 refine', 'stage3 mask generators', 'layer4'} <= set(
        by_model['SAR-R50 G2s2a2b1 sparse (halo)'])
    for values in by_model.values():
        assert abs(sum(v for k, v in values.items() if k != 'total') - values['total']) < 0.05


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_benchmark_sar_det_seg_quick(task, tmp_path):
    # structure and correctness checks only: the timings of a loaded test machine mean nothing
    out = tmp_path / f'{task}.md'
    proc = run_tool([SCRIPT, '--task', task, '--quick', '--out', str(out)], cwd=REPO, timeout=300)
    assert out.read_text().strip() == proc.stdout.strip()
    rows = _table(proc.stdout, '| model | part | density | threads')
    archs = {'det': ['Faster R-CNN'], 'seg': ['DeepLabV3', 'PSPNet']}[task]
    twin = {'det': 'ResNet-50', 'seg': 'ResNetV1c-50'}[task]
    expected = [(f'{arch} {name}', part) for arch in archs for part in ('backbone', 'whole model')
                for name in (twin, 'SAR-R50 sparse')]
    assert [(r[0], r[1]) for r in rows] == expected
    # columns: model, part, density, threads, latency, speed-up, MACs (G), MACs ratio, quotient
    by_key = {(r[0], r[1]): r for r in rows}
    for arch in archs:
        for part in ('backbone', 'whole model'):
            base, sar = (by_key[(f'{arch} {n}', part)] for n in (twin, 'SAR-R50 sparse'))
            assert base[2] == '-' and abs(float(sar[2]) - 0.5) < 0.05  # realised density
            assert base[5] == '1.00x' and base[7] == '1.00' and base[8] == '1.00'
            assert sar[3] == '1' and float(sar[4]) > 0 and sar[5].endswith('x')
            # MACs: SAR's below the twin's; ratio and quotient as defined
            assert float(sar[6]) < float(base[6])
            speedup, ratio, quotient = float(sar[5][:-1]), float(sar[7]), float(sar[8])
            assert abs(ratio - float(base[6]) / float(sar[6])) < 0.02
            assert abs(quotient - speedup / ratio) < 0.02
        # the neck and heads add to both models
        for name in (twin, 'SAR-R50 sparse'):
            assert (float(by_key[(f'{arch} {name}', 'whole model')][6]) >
                    float(by_key[(f'{arch} {name}', 'backbone')][6]))
    checks = [line for line in proc.stdout.splitlines() if 'sparse (halo) vs dense' in line]
    assert len(checks) == len(archs)
    for line in checks:
        assert line.endswith('MACs equal: True')
        assert float(line.split('max rel. diff ')[1].split(';')[0]) < 1e-4
    assert proc.stdout.count('oneDNN vs PyTorch convolutions') == len(archs)


@pytest.mark.parametrize('options, message', [
    (['--task', 'det', '--batch-sizes', '1', '2'], '--task det times batch 1 only'),
    (['--device', 'tpu'], "unknown device 'tpu'"),
    (['--compile-mode', 'max-autotune'], '--compile-mode needs --compile'),
    (['--task', 'seg', '--compile'], '--compile times the classification backbones'),
])
def test_benchmark_sar_refuses_bad_options(options, message):
    proc = run_tool([SCRIPT] + options, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_benchmark_sar_refuses_cuda_without_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA GPU is present')
    proc = run_tool([SCRIPT, '--device', 'cuda'], cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 2 and 'torch sees no CUDA GPU' in proc.stderr, proc.stderr


@pytest.mark.cuda
def test_benchmark_sar_on_cuda(tmp_path):
    # models and inputs on the GPU, timed with CUDA events; the checks run on the CPU first
    proc = run_tool([SCRIPT, '--device', 'cuda', '--runs', '2', '--warmup', '1', '--threads', '1',
                     '--densities', '0.5', '--batch-sizes', '1', '4'], cwd=REPO, timeout=300)
    rows = _table(proc.stdout, '| model | density | threads | batch')
    assert [r[3] for r in rows] == ['1'] * 3 + ['4'] * 3
    assert all(float(r[4]) > 0 for r in rows)
    assert '- GPU: ' in proc.stdout


@pytest.mark.slow  # Inductor compiles ResNet-50 and the dense parts of SAR-R50: ~30 s on a free core
def test_benchmark_sar_compile(tmp_path):
    proc = run_tool([SCRIPT, '--runs', '2', '--warmup', '2', '--threads', '1', '--densities', '0.5',
                     '--compile', '--compile-freezing'], cwd=REPO, timeout=900)
    rows = _table(proc.stdout, '| model | density | threads | batch')
    assert [r[0] for r in rows] == ['ResNet-50', 'SAR-R50 G2s2a2b1 dense-masked',
                                    'SAR-R50 G2s2a2b1 sparse', 'ResNet-50 compiled',
                                    'SAR-R50 G2s2a2b1 sparse compiled']
    assert rows[3][5] == '1.00x'  # compiled rows against the compiled ResNet-50
    assert rows[4][6] == rows[2][6]  # same MACs compiled and eager
    check = [line for line in proc.stdout.splitlines() if 'sparse compiled: first call' in line]
    assert len(check) == 1 and check[0].endswith('MACs equal: True'), proc.stdout
    assert float(check[0].split('max rel. diff ')[1].split(';')[0]) < 1e-4
