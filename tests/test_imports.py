# Copyright (c) mmdynamic contributors. All rights reserved.
"""Every module of the package imports, and every package directory is a real package."""
import importlib
import os
import os.path as osp
import pkgutil

import mmdynamic


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(mmdynamic.__path__, 'mmdynamic.')]
    assert len(names) > 10
    for name in names:
        importlib.import_module(name)


def test_every_package_dir_has_init():
    """find_packages drops folders without __init__.py (the mmaction2 DRN bug): none here."""
    root = osp.dirname(mmdynamic.__file__)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        if any(f.endswith('.py') for f in files):
            assert '__init__.py' in files, folder
