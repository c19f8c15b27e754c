# Copyright (c) mmdynamic contributors. All rights reserved.
"""Install script of mmdynamic (``pip install -e .``)."""
import os
import os.path as osp
import shutil
import sys
from typing import Dict, List

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: Dict = {}
    with open(osp.join(ROOT, 'mmdynamic', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> List[str]:
    """Requirement lines of ``requirements/<fname>``, comments dropped."""
    path = osp.join(ROOT, 'requirements', fname)
    with open(path, encoding='utf-8') as f:
        lines = [line.split('#', 1)[0].strip() for line in f]
    return [line for line in lines if line]


def add_mim_extension() -> None:
    """Expose ``tools``, ``configs`` and ``model-index.yml`` under ``mmdynamic/.mim``.

    As mmdet and mmyolo do: ``mim search mmdynamic`` reads ``<package>/.mim/model-index.yml``,
    whose ``Import`` paths (``configs/<method>/metafile.yml``) resolve inside ``.mim``. Symlinks for
    editable installs, copies for built distributions.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'install')):
        mode = 'copy'
    else:
        return
    mim_root = osp.join(ROOT, 'mmdynamic', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in ('tools', 'configs', 'model-index.yml'):
        src = osp.join(ROOT, name)
        dst = osp.join(mim_root, name)
        if not osp.exists(src):
            continue
        if osp.lexists(dst):
            if osp.islink(dst) or osp.isfile(dst):
                os.remove(dst)
            else:
                shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_root), dst, target_is_directory=osp.isdir(src))
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdynamic',
        version=get_version(),
        description='Spatially and temporally adaptive vision networks for OpenMMLab 2.x',
        long_description=readme(),
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*')),
        include_package_data=True,
        # the mim extension (add_mim_extension) in built distributions; ``mim search`` reads
        # mmdynamic/.mim/model-index.yml
        # ops/csrc: the C++ operators, compiled on first use (mmdynamic/ops/build.py)
        package_data={'mmdynamic': ['ops/csrc/*.cpp', '.mim/model-index.yml', '.mim/configs/**/*.py',
                                    '.mim/configs/**/*.yml', '.mim/configs/**/*.md',
                                    '.mim/tools/**/*.py', '.mim/tools/**/*.sh']},
        python_requires='>=3.8',
        zip_safe=False,
        install_requires=parse_requirements('runtime.txt') + parse_requirements('mminstall.txt'),
        extras_require={
            'cls': parse_requirements('cls.txt'),
            'det': parse_requirements('det.txt'),
            'seg': parse_requirements('seg.txt'),
            'action': parse_requirements('action.txt'),
            'tests': parse_requirements('tests.txt'),
            'all': (parse_requirements('cls.txt') + parse_requirements('det.txt') +
                    parse_requirements('seg.txt') + parse_requirements('action.txt')),
        },
        license='Apache License 2.0',
    )
