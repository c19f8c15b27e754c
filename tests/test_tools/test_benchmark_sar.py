# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/benchmark_sar.py runs and prints its latency table."""
import os.path as osp

from ..conftest import REPO, run_tool

SCRIPT = osp.join('tools', 'analysis_tools', 'benchmark_sar.py')


def test_benchmark_sar_prints_table(tmp_path):
    out = tmp_path / 'latency.md'
    proc = run_tool([SCRIPT, '--runs', '2', '--warmup', '1', '--threads', '1', '--densities', '0.5',
                     '--breakdown', '--out', str(out)], cwd=REPO, timeout=300)
    lines = proc.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith('| model | density | threads')]
    assert len(header) == 1, proc.stdout
    rows = []
    for line in lines[header[0] + 2:]:
        if not line.startswith('|'):
            break
        rows.append(line)
    names = [row.split('|')[1].strip() for row in rows]
    assert names == ['ResNet-50', 'SAR-R50 G2s2a2b1 dense-masked', 'SAR-R50 G2s2a2b1 sparse']
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[2] == '1'  # threads
        assert float(cells[3]) > 0  # latency
        assert cells[4].endswith('x')
        assert float(cells[5]) > 0  # MACs (G)
    resnet, dense, sparse = ([c.strip() for c in row.strip('|').split('|')] for row in rows)
    assert abs(float(resnet[5]) - 4.09) < 0.03  # ResNet-50 MACs
    assert resnet[1] == '-' and abs(float(dense[1]) - 0.5) < 0.05
    assert dense[5] == sparse[5] and float(dense[5]) < float(resnet[5])
    assert 'sparse vs dense output' in proc.stdout and 'MACs equal: True' in proc.stdout
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
        by_model['SAR-R50 G2s2a2b1 sparse'])
    for values in by_model.values():
        assert abs(sum(v for k, v in values.items() if k != 'total') - values['total']) < 0.05
