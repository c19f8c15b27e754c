# Copyright (c) mmdynamic contributors. All rights reserved.
"""Clear errors for images and videos that cannot be decoded.

The upstream loaders fail on a corrupt, truncated or empty file with messages that do not say what is
wrong or which file it is (``AssertionError: failed to load image``, OpenCV's ``!buf.empty()``,
decord's ``Error reading 7 bytes...``). :func:`install_clear_decode_errors` wraps the ``transform`` of
mmcv's ``LoadImageFromFile`` (used by mmpretrain, mmdet and mmseg) and of mmaction2's ``DecordInit`` and
``DecordDecode`` so that such a file raises :class:`UndecodableInputError` naming the file, its size and
the likely cause. A missing file still raises ``FileNotFoundError``; ``ignore_empty=True`` keeps its
upstream meaning (the sample is skipped).
"""
import functools
import os
import os.path as osp
from typing import Callable, Optional

from mmdynamic.utils.frameworks import is_framework_available


class UndecodableInputError(ValueError):
    """An input file exists but cannot be decoded."""


def _size(path: Optional[str]) -> str:
    try:
        return f'{os.path.getsize(path)} bytes'
    except (OSError, TypeError):
        return 'size unknown'


def undecodable(kind: str, path: Optional[str], error: BaseException,
                detail: str = '') -> UndecodableInputError:
    """The error for an undecodable ``kind`` ('image' / 'video') file ``path``."""
    size = _size(path)
    cause = ('the file is empty' if size == '0 bytes' else
             f'the file is corrupt, truncated or not a{"n" if kind[0] in "aeiou" else ""} {kind}')
    return UndecodableInputError(
        f'cannot decode {kind} {path} ({size}): {cause}{detail} '
        f'[{type(error).__name__}: {str(error).strip()[:200]}]')


def _wrap(cls: type, kind: str, path_of: Callable[[dict], Optional[str]],
          detail_of: Callable[[dict], str] = lambda results: '') -> None:
    original = cls.transform
    if getattr(original, '_mmdynamic_clear_errors', False):
        return

    @functools.wraps(original)
    def transform(self, results: dict):
        try:
            return original(self, results)
        except (FileNotFoundError, UndecodableInputError):
            raise
        except Exception as error:  # decoders raise AssertionError, cv2.error, RuntimeError, ...
            path = path_of(results)
            if path is not None and not osp.exists(path):
                raise
            raise undecodable(kind, path, error, detail_of(results)) from error

    transform._mmdynamic_clear_errors = True
    cls.transform = transform


def install_clear_decode_errors() -> None:
    """Wrap the image and video loaders of the installed frameworks. Idempotent."""
    from mmcv.transforms import LoadImageFromFile
    _wrap(LoadImageFromFile, 'image', lambda r: r.get('img_path'))
    if is_framework_available('mmaction'):
        from mmdynamic.utils.compat import ensure_mmaction_importable
        ensure_mmaction_importable()
        from mmaction.datasets.transforms.loading import DecordDecode, DecordInit
        _wrap(DecordInit, 'video', lambda r: r.get('filename'))
        _wrap(DecordDecode, 'video', lambda r: r.get('filename'),
              lambda r: (f' (frames {list(r.get("frame_inds", []))[:8]} of '
                         f'{r.get("total_frames")} could not be read)'))
