# Copyright (c) mmdynamic contributors. All rights reserved.
"""The model zoo: ``configs/<method>/metafile.yml``, ``model-index.yml`` and ``mim search``.

- every config (``_base_`` excluded) has exactly one metafile entry and every entry one config;
- every entry parses (OpenMMLab fields, the ``model-index`` package, and mim's own table);
- results are labelled (paper or measured here) and each number appears in the method README;
- the committed YAML is what ``tools/misc/generate_model_index.py`` writes;
- ``mim search mmdynamic`` lists every model.
"""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
from glob import glob
from typing import Dict, List

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('gfnet', 'mgnet', 'uniadafocus', 'sar')
CONVERTERS = {'gfnet', 'mgnet', 'uniadafocus', 'adafocusv2', 'sar'}


def _load_yaml(rel: str) -> dict:
    with open(osp.join(REPO, rel), encoding='utf-8') as f:
        return yaml.safe_load(f)


def _configs(method: str) -> List[str]:
    return sorted(osp.relpath(p, REPO).replace(os.sep, '/')
                  for p in glob(osp.join(REPO, 'configs', method, '*.py')))


@pytest.fixture(scope='module')
def metafiles() -> Dict[str, dict]:
    return {m: _load_yaml(f'configs/{m}/metafile.yml') for m in METHODS}


@pytest.fixture(scope='module')
def models(metafiles) -> List[dict]:
    return [model for meta in metafiles.values() for model in meta['Models']]


def test_model_index_imports_every_metafile():
    index = _load_yaml('model-index.yml')
    assert sorted(index['Import']) == sorted(f'configs/{m}/metafile.yml' for m in METHODS)
    for rel in index['Import']:
        assert osp.isfile(osp.join(REPO, rel)), rel


@pytest.mark.parametrize('method', METHODS)
def test_one_entry_per_config(method, metafiles):
    configs = _configs(method)
    assert configs, f'no configs under configs/{method}'
    entries = [model['Config'] for model in metafiles[method]['Models']]
    duplicated = sorted({c for c in entries if entries.count(c) > 1})
    assert not duplicated, f'configs with more than one metafile entry: {duplicated}'
    missing = sorted(set(configs) - set(entries))
    assert not missing, f'configs without a metafile entry: {missing}'
    stale = sorted(set(entries) - set(configs))
    assert not stale, f'metafile entries whose config does not exist: {stale}'


def test_entries_are_well_formed(metafiles, models):
    names = [model['Name'] for model in models]
    assert len(names) == len(set(names)), 'model names must be unique'
    for method, meta in metafiles.items():
        collections = {c['Name']: c for c in meta['Collections']}
        for coll in collections.values():
            assert coll['Paper']['Title'] and coll['Paper']['URL'].startswith('https://')
            assert coll['Code']['URL'].startswith('https://github.com/')
            assert osp.isfile(osp.join(REPO, coll['README'])), coll['README']
        for model in meta['Models']:
            name, cfg = model['Name'], model['Config']
            assert name == osp.splitext(osp.basename(cfg))[0], name
            assert osp.isfile(osp.join(REPO, cfg)), cfg
            assert cfg.startswith(f'configs/{method}/') and '_base_' not in cfg, cfg
            assert model['In Collection'] in collections, name
            metadata = model['Metadata']
            assert metadata['Training Data'] and metadata['Architecture'], name
            for key, value in metadata.items():
                # mim joins list fields as strings and reads a list of dicts as timings
                if isinstance(value, list):
                    assert all(isinstance(v, str) for v in value), (name, key)
            for result in model.get('Results', []):
                assert set(result) == {'Task', 'Dataset', 'Metrics'}, name
                assert result['Metrics'], name
                for metric, value in result['Metrics'].items():
                    assert isinstance(value, (int, float)) and not isinstance(value, bool), \
                        (name, metric)
            converted = model.get('Converted From')
            if converted:
                assert converted['Code'].startswith('https://github.com/'), name
                assert converted['Weights'], name
                match = re.fullmatch(r'tools/model_converters/(\w+)_official_to_mmdynamic\.py',
                                     converted['Converter'])
                assert match and match[1] in CONVERTERS, converted['Converter']


def test_results_are_labelled_and_traceable(models):
    """Never a paper number presented as measured here: every entry with results says where they
    come from, and every number is one the method README states."""
    readmes = {m: open(osp.join(REPO, 'configs', m, 'README.md'), encoding='utf-8').read()
               for m in METHODS}
    with_results = 0
    for model in models:
        if 'Results' not in model:
            assert 'Results Source' not in model['Metadata'], model['Name']
            continue
        with_results += 1
        source = model['Metadata']['Results Source']
        demo = '_demo' in model['Name']
        if demo:
            assert 'measured here' in source and 'paper' not in source, model['Name']
        else:
            assert 'paper' in source and 'not measured here' in source, model['Name']
        readme = readmes[model['Config'].split('/')[1]]
        for result in model['Results']:
            for metric, value in result['Metrics'].items():
                assert re.search(rf'(?<![\d.]){re.escape(str(value))}', readme), \
                    f'{model["Name"]}: {metric} = {value} is not stated in its README'
    assert with_results >= 40


def test_released_checkpoints_are_named(models):
    by_name = {model['Name']: model for model in models}
    gfnet = [m for m in models if m['Name'].startswith('gfnet') and 'Converted From' in m]
    assert len(gfnet) == 14  # the official README's release table
    assert all(m['Converted From']['Weights'].startswith('https://cloud.tsinghua.edu.cn/')
               for m in gfnet)
    tsm = by_name['uniadafocus-tsm_mn2-r50-p128-8+12_4xb16-50e_sthv1-rgb']
    assert tsm['Converted From']['Weights'] == 'sthv1_p128_8and12.pth.tar'
    assert tsm['Results'][0]['Metrics'] == {'Top 1 Accuracy': 50.5}
    v2 = [m for m in models if m['Name'].startswith('adafocusv2') and 'Converted From' in m]
    assert len(v2) == 20  # 10 MN2/R50 + 10 TSM files
    sar = [m for m in models if m['In Collection'] == 'SAR-ResNet' and 'Converted From' in m]
    assert sar and all('none released' in m['Converted From']['Weights'] for m in sar)


def test_modelindex_package_parses():
    modelindex = pytest.importorskip('modelindex.load_model_index')
    index = modelindex.load(osp.join(REPO, 'model-index.yml'))
    names = {model.name for model in index.models}
    expected = {osp.splitext(osp.basename(c))[0] for m in METHODS for c in _configs(m)}
    assert names == expected
    assert {c.name for c in index.collections} == {
        'GFNet', 'MGNet', 'FF-Net', 'Uni-AdaFocus', 'AdaFocusV2', 'SAR-ResNet'}


def test_generated_files_are_up_to_date():
    path = osp.join(REPO, 'tools', 'misc', 'generate_model_index.py')
    spec = importlib.util.spec_from_file_location('generate_model_index', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(['--check']) == 0, \
        'the metafiles differ from tools/misc/generate_model_index.py: run it and commit the result'


def test_mim_search_lists_every_model():
    """``mim search mmdynamic`` (mim reads ``mmdynamic/.mim/model-index.yml``, which setup.py's
    ``add_mim_extension`` links or copies there). Run with ``python -m mim`` from the repository
    root: with an editable install the distribution is found through the source tree."""
    assert importlib.util.find_spec('mim') is not None, \
        'openmim is not installed: bash tools/setup_env.sh (requirements/tests.txt)'
    assert osp.isfile(osp.join(REPO, 'mmdynamic', '.mim', 'model-index.yml')), \
        'mmdynamic/.mim/model-index.yml is missing: reinstall (pip install -e . or ' \
        'tools/setup_env.sh)'
    env = dict(os.environ, PAGER='cat', COLUMNS='200')
    proc = subprocess.run([sys.executable, '-m', 'mim', 'search', 'mmdynamic', '--display-width',
                           '300'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = re.findall(r'config id: (\S+)', proc.stdout)
    expected = sorted(osp.splitext(osp.basename(c))[0] for m in METHODS for c in _configs(m))
    assert sorted(listed) == expected, (
        f'missing: {sorted(set(expected) - set(listed))[:5]}, '
        f'extra: {sorted(set(listed) - set(expected))[:5]}')
    # mim's table carries the labelled paper result of a released model
    block = proc.stdout.split('config id: mgnet-r18-4x96_4xb64-onecycle-400e_in100', 1)[1]
    block = block.split('config id:', 1)[0]
    assert re.search(r'imagenet-100/top_1_accuracy\s+81.46', block), block
    assert 'not measured here' in block
