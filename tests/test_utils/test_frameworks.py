# Copyright (c) mmdynamic contributors. All rights reserved.
import subprocess
import sys

import pytest
from mmengine.registry import Registry

from mmdynamic.utils import frameworks
from mmdynamic.utils.frameworks import (is_framework_available, register_unavailable,
                                        require_framework)


def test_availability():
    for name in frameworks.FRAMEWORKS:
        assert is_framework_available(name)
    with pytest.raises(KeyError, match='unknown framework'):
        is_framework_available('mmocr')


def test_require_missing_framework(monkeypatch):
    monkeypatch.setattr(frameworks.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r'UniAdaFocus needs mmaction2 .*pip install'):
        require_framework('mmaction', 'UniAdaFocus')


def test_placeholder_names_the_package():
    from mmdynamic.registry import MODELS
    cls = register_unavailable(MODELS, 'DynUnavailableForTest', 'mmseg')
    try:
        with pytest.raises(ModuleNotFoundError, match='DynUnavailableForTest needs mmsegmentation'):
            MODELS.build(dict(type='DynUnavailableForTest'))
    finally:
        MODELS.module_dict.pop('DynUnavailableForTest')
        MODELS.parent.module_dict.pop('DynUnavailableForTest')
    assert cls.__name__ == 'DynUnavailableForTest'


def test_package_imports_without_frameworks():
    """mmdynamic.models imports when no framework can be imported at all."""
    code = ('import sys\n'
            'for name in ("mmpretrain", "mmdet", "mmseg", "mmaction"):\n'
            '    sys.modules[name] = None  # import of the framework fails\n'
            'import mmdynamic.models, mmdynamic.engine, mmdynamic.evaluation\n'
            'from mmdynamic.utils import is_framework_available\n'
            'assert not is_framework_available("mmaction")\n'
            'print("ok")\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and 'ok' in proc.stdout, proc.stderr
