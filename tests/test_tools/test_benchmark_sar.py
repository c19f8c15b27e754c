# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/benchmark_sar.py runs and prints its latency table."""
import os.path as osp

import pytest

from ..conftest import REPO, run_tool

SCRIPT = osp.join('tools', 'analysis_tools', 'benchmark_sar.py')


def test_benchmark_sar_prints_table(tmp_path):
    out = tmp_path / 'latency.md'
    proc = run_tool([SCRIPT, '--runs', '2', '--warmup', '1', '--threads', '1', '--densities', '0.5',
                     '--sparse-impls', 'halo', 'gemm', '--breakdown', '--out', str(out)], cwd=REPO,
                    timeout=300)
    lines = proc.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith('| model | density | threads')]
    assert len(header) == 1, proc.stdout
    rows = []
    for line in lines[header[0] + 2:]:
        if not line.startswith('|'):
            break
        rows.append(line)
    names = [row.split('|')[1].strip() for row in rows]
    assert names == ['ResNet-50', 'SAR-R50 G2s2a2b1 dense-masked', 'SAR-R50 G2s2a2b1 sparse (halo)',
                     'SAR-R50 G2s2a2b1 sparse (gemm)']
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[2] == '1'  # threads
        assert float(cells[3]) > 0  # latency
        assert cells[4].endswith('x')
        assert float(cells[5]) > 0  # MACs (G)
    resnet, dense, sparse, _ = ([c.strip() for c in row.strip('|').split('|')] for row in rows)
    assert abs(float(resnet[5]) - 4.09) < 0.03  # ResNet-50 MACs
    assert resnet[1] == '-' and abs(float(dense[1]) - 0.5) < 0.05
    assert dense[5] == sparse[5] and float(dense[5]) < float(resnet[5])
    assert 'convolutions: every nn.Conv2d through oneDNN' in proc.stdout
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
