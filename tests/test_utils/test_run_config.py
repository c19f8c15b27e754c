# Copyright (c) mmdynamic contributors. All rights reserved.
"""Configs read by the analysis tools."""
import sys

import pytest

from mmdynamic.utils.run_config import load_tool_config


def test_tool_config_imports_the_custom_imports(tmp_path, monkeypatch):
    """A tool builds the model of a config the way the runner does: the config's custom_imports
    (e.g. a user's own layers or hooks) are imported; a module that cannot be imported fails."""
    name = f'mmdynamic_tool_import_probe_{tmp_path.name.replace("-", "_")}'
    (tmp_path / f'{name}.py').write_text('IMPORTED = True\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / 'cfg.py'
    config.write_text(f"custom_imports = dict(imports=['{name}'], allow_failed_imports=False)\n")
    assert name not in sys.modules
    try:
        load_tool_config(str(config))
        assert sys.modules[name].IMPORTED
    finally:
        sys.modules.pop(name, None)
    config.write_text("custom_imports = dict(imports=['no_such_module_here'])\n")
    with pytest.raises(ImportError, match='no_such_module_here'):
        load_tool_config(str(config))
