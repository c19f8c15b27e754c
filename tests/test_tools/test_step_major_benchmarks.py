# Copyright (c) mmdynamic contributors. All rights reserved.
"""The throughput modes of the GFNet, MGNet and Uni-AdaFocus benchmarks (issue #20), quick preset:
structure and bookkeeping only (timings are for the README, never checked here)."""
import os.path as osp

import pytest
import torch

from ..conftest import REPO, run_tool
from .test_mgnet_tools import load_tool

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
            # the same exits (thresholds halfway between the stream's scores), so the same
            # realised MACs and fractions
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


def _load(name: str):
    return load_tool(osp.join('tools', 'analysis_tools', f'{name}.py'))


def _stream_results(family: str, argv):
    """Run a tool's throughput mode in-process; (stream size, per batch size the result of
    ``time_stream`` with its ``step_times``)."""
    tool = _load({'gfnet': 'benchmark_gfnet', 'mgnet': 'benchmark_mgnet',
                  'uniadafocus': 'benchmark_adafocus'}[family])
    if family == 'gfnet':
        args = tool.parse_args(argv)
        return args.stream, [tool.main(argv)]
    if family == 'mgnet':
        return tool.parse_args(argv).stream, tool.main(argv)
    args = tool.parse_args(argv)
    report, results = tool.run_stream_mode(args)
    assert '| part | calls |' in report
    return args.videos, results


@pytest.mark.parametrize('family', ['gfnet', 'mgnet', 'uniadafocus'])
def test_step_times_of_each_throughput_mode(family, tmp_path):
    """--step-times: a row per step reached, per executor, whose samples are the stream's samples
    that did not exit before it; init_state and the static parts see the whole stream."""
    from mmdynamic.utils.stream_benchmark import (EXECUTOR_PART, INIT_PART, STATIC_REST_PART,
                                                  TOTAL_PART)
    driver = _load('benchmark')
    out = tmp_path / 'report.md'
    argv = driver.STREAM_PRESETS['quick'][family] + ['--device', 'cpu', '--step-times',
                                                      '--out', str(out)]
    num, results = _stream_results(family, argv)
    if family != 'uniadafocus':  # its report is written by main, not by run_stream_mode
        report = out.read_text()
        assert report.startswith(('CPU: ', 'MGNet')) and 'CPU: ' in report
        assert '| model | executor | part | calls | samples per call |' in report
    for result in results:
        static, *dynamic = result['step_times']
        assert static['mode'] == 'static'
        parts = [r['part'] for r in static['rows']]
        assert parts[-2:] == [STATIC_REST_PART, TOTAL_PART] and len(parts) > 2
        assert all(r['samples'] > 0 for r in static['rows'][:-2])
        num_points = len(result['rows']) // 2
        assert [t['mode'] for t in dynamic] == ['per-batch', 'step-major'] * num_points
        batch = result.get('batch') or int(argv[argv.index('--batch-size') + 1])
        for table, row in zip(dynamic, result['rows']):
            counts = row['exit_counts']
            assert sum(counts) == num
            names = [r['part'] for r in table['rows']]
            assert names[0] == INIT_PART and names[-2:] == [EXECUTOR_PART, TOTAL_PART]
            assert table['rows'][0]['samples'] == num
            steps = table['rows'][1:-2]
            reached = [num - sum(counts[:k]) for k in range(len(counts))]
            assert [r['samples'] for r in steps] == [n for n in reached if n], names
            assert len(set(r['part'] for r in steps)) == len(steps)
            for r in steps:
                assert r['calls'] >= -(-r['samples'] // batch)  # never more than a batch per call
                if table['mode'] == 'step-major':
                    assert r['calls'] == -(-r['samples'] // batch)
            assert sum(r['seconds'] for r in table['rows'][:-1]) == pytest.approx(
                table['rows'][-1]['seconds'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error where torch sees no GPU')
@pytest.mark.parametrize('tool', ['benchmark_gfnet', 'benchmark_mgnet', 'benchmark_adafocus',
                                  'benchmark'])
def test_cuda_without_a_gpu_is_a_clear_error(tool):
    proc = run_tool([osp.join('tools', 'analysis_tools', f'{tool}.py'), '--device', 'cuda'],
                    check=False, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "device 'cuda' asked for, but torch sees no CUDA GPU here" in proc.stderr
    assert 'Traceback' not in proc.stderr
