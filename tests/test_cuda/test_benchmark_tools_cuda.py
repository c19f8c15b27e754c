# Copyright (c) mmdynamic contributors. All rights reserved.
"""The step-wise benchmark tools on a GPU (issue #21): quick preset and throughput mode with step
times through ``tools/analysis_tools/benchmark.py --device cuda``, in-process (seconds). Checks that
the models really ran on the GPU (the report names it) and the bookkeeping; no timing is checked.
SAR's tool is covered by its own tests."""
import os.path as osp

import pytest
import torch

from ..test_tools.test_mgnet_tools import load_tool, table_rows

pytestmark = pytest.mark.cuda
FAMILIES = ['gfnet', 'mgnet', 'uniadafocus']


@pytest.mark.parametrize('throughput', [False, True], ids=['latency', 'throughput'])
def test_quick_preset_runs_on_the_gpu(tmp_path, throughput):
    out = tmp_path / 'report.md'
    extra = ['--throughput', '--step-times'] if throughput else []
    rows = load_tool(osp.join('tools', 'analysis_tools', 'benchmark.py')).main(['--preset', 'quick', '--device', 'cuda', '--families', *FAMILIES,
                           *extra, '--out', str(out)])
    report = out.read_text()
    assert '\n- GPU: ' in report and torch.cuda.get_device_name(0) in report
    assert rows and all(r['speedup'] > 0 and r['macs_ratio'] > 1 for r in rows)
    assert {r[-1] for r in table_rows(report, 'model')} == {torch.cuda.get_device_name(0)}
    details = report.split('## Details', 1)[1]
    assert 'CPU: ' not in details and details.count('GPU: ') >= 3  # every tool ran on the GPU
    if throughput:
        assert report.count('| part | calls |') == 3  # a step-time table per family
