# Copyright (c) mmdynamic contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py: the four benchmarks in one process, one summary table."""
import os.path as osp

from ..conftest import REPO, run_tool


def test_benchmark_report_runs_every_family(tmp_path):
    out = tmp_path / 'report.md'
    proc = run_tool([osp.join('tools', 'analysis_tools', 'benchmark.py'), '--preset', 'quick',
                     '--device', 'cpu', '--out', str(out)], cwd=REPO, timeout=900)
    report = out.read_text()
    assert report.strip() in proc.stdout
    assert '\n- CPU: ' in report  # the device that ran, named in the header
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


def test_gpu_preset_gives_the_papers_batch_sizes_in_options_the_tools_take():
    """--preset gpu (run by tools/misc/gpu_check.sh with --device cuda): every tool parses its
    arguments (with the driver's --threads and --device), at the papers' GPU batch sizes."""
    from .test_mgnet_tools import load_tool

    def load(name):
        return load_tool(osp.join('tools', 'analysis_tools', f'{name}.py'))

    driver = load('benchmark')
    tools = dict(sar=load('benchmark_sar'), gfnet=load('benchmark_gfnet'),
                 mgnet=load('benchmark_mgnet'), uniadafocus=load('benchmark_adafocus'))
    parsed = {}
    for presets in (driver.PRESETS, driver.STREAM_PRESETS):
        for family, entry in presets['gpu'].items():
            tool = tools[family]
            for argv in driver.argv_lists(entry):
                args = tool.parse_args(driver._tool_argv(argv, 1, 'cpu'))
                assert args.device == 'cpu' and args.threads in (1, [1])
                parsed.setdefault(family, []).append(args)
    assert sorted(a.batch_size for a in parsed['gfnet'][:2]) == [64, 128]
    assert {a.input_size for a in parsed['gfnet']} == {224}
    assert parsed['mgnet'][0].batch_sizes == [64, 128] and parsed['mgnet'][0].input_size == 224
    assert parsed['uniadafocus'][0].batch_sizes == [16] and parsed['uniadafocus'][0].videos == 16
    assert parsed['sar'][0].batch_sizes == [1, 64] and parsed['sar'][0].input_size == 224
