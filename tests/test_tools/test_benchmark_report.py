# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py: the four benchmarks in one process, one summary table."""
import os.path as osp

from ..conftest import REPO, run_tool


def test_benchmark_report_runs_every_family(tmp_path):
    out = tmp_path / 'report.md'
    proc = run_tool([osp.join('tools', 'analysis_tools', 'benchmark.py'), '--preset', 'quick',
                     '--out', str(out)], cwd=REPO, timeout=900)
    report = out.read_text()
    assert report.strip() in proc.stdout
    lines = report.splitlines()
    header = lines.index('| model | baseline | speed-up | MACs ratio | quotient | batch | threads '
                         '| device |')
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    baselines = {r[1] for r in rows}
    assert {'ResNet-50', 'ResNet-18', 'FF-Net ResNet-18'} <= baselines, baselines
    assert any(b.startswith('MN2 + R50') for b in baselines), baselines
    for model, _, speedup, ratio, quotient, batch, threads, device in rows:
        assert speedup.endswith('x') and float(speedup[:-1]) > 0
        assert abs(float(quotient) - float(speedup[:-1]) / float(ratio)) < 0.02, model
        assert int(batch) >= 1 and threads == '1' and device
    # MACs ratios of dynamic models against their static baselines are above 1
    assert all(float(r[3]) > 1 for r in rows if 'dense-masked' not in r[0]), rows
    for family in ('sar', 'gfnet', 'mgnet', 'uniadafocus'):
        assert f'### {family}' in report
