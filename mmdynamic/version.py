# Copyright (c) mmdynamic contributors. All rights reserved.
"""Version of the mmdynamic package."""
from typing import Tuple

__version__ = '0.1.0'


def parse_version_info(version_str: str) -> Tuple:
    """Split a version string such as ``'0.1.0rc1'`` into a tuple.

    Args:
        version_str (str): The version string.

    Returns:
        tuple: e.g. ``(0, 1, 0, 'rc1')``.
    """
    info = []
    for part in version_str.split('.'):
        if part.isdigit():
            info.append(int(part))
        elif 'rc' in part:
            num, rc = part.split('rc')
            info.extend([int(num), f'rc{rc}'])
    return tuple(info)


version_info = parse_version_info(__version__)
