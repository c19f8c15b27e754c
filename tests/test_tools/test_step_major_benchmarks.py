# Copyright (c) mmdynamic contributors. All rights reserved.
"""The throughput modes of the GFNet, MGNet and Uni-AdaFocus benchmarks (issue #20), quick preset:
structure and bookkeeping only (timings are for the README, never checked here)."""
import os.path as osp

from ..conftest import REPO, run_tool

COLUMNS = ['model', 'executor', 'GMACs/sample', 'exit fractions', 'samples/s', 'speed-up',
           'MACs ratio', 'quotient', 'samples per step call']


def _tables(report: str):
    """Every stream table of the report: a list of rows (dicts by column)."""
    tables, lines = [], report.splitlines()
    for i, line in enumerate(lines):
        if [c.strip() for c in line.strip('|').split('|')] == COLUMNS:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                rows.append(dict(zip(COLUMNS, (c.strip() for c in row.strip('|').split('|')))))
            tables.append(rows)
    return tables


def test_throughput_modes_of_the_three_step_wise_benchmarks(tmp_path):
    out = tmp_path / 'report.md'
    proc = run_tool([osp.join('tools', 'analysis_tools', 'benchmark.py'), '--preset', 'quick',
                     '--throughput', '--out', str(out)], cwd=REPO, timeout=900)
    report = out.read_text()
    assert report.strip() in proc.stdout
    assert 'throughput mode' in report and '### sar' not in report
    tables = _tables(report)
    assert len(tables) == 3, report  # GFNet, MGNet, Uni-AdaFocus
    for rows, batch in zip(tables, (4, 2, 2)):
        static, dynamic = rows[0], rows[1:]
        assert static['executor'] == 'static' and static['quotient'] == '1.00'
        assert static['samples per step call'] == str(batch)
        assert len(dynamic) % 2 == 0 and dynamic
        for per_batch, step_major in zip(dynamic[::2], dynamic[1::2]):
            assert (per_batch['executor'], step_major['executor']) == ('per-batch', 'step-major')
            # the same exits, so the same realised MACs and fractions
            for key in ('GMACs/sample', 'exit fractions', 'MACs ratio'):
                assert per_batch[key] == step_major[key], key
            fractions = [float(f) for f in step_major['exit fractions'].split('/')]
            assert abs(sum(fractions) - 1) < 0.02
            means = [float(m) for m in step_major['samples per step call'].split('/')]
            assert len(means) == len(fractions) and all(0 < m <= batch for m in means)
            for row in (per_batch, step_major):
                assert float(row['samples/s']) > 0 and float(row['MACs ratio']) > 1
                speedup, ratio, quotient = (float(row[k]) for k in
                                            ('speed-up', 'MACs ratio', 'quotient'))
                assert abs(quotient - speedup / ratio) < 0.01
    # the summary table names the executor of every row
    assert report.count('per-batch stream |') == report.count('step-major stream |') > 0
