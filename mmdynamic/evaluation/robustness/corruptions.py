# Copyright (c) mmdynamic contributors. All rights reserved.
"""The 15 ImageNet-C corruptions x 5 severities applied on the fly (Hendrycks & Dietterich, 2019).

The corruptions themselves come from the maintained ``imagecorruptions`` package (the ImageNet-C code
made size-agnostic); this module wraps it for mmpretrain pipelines (BGR images from
``LoadImageFromFile``) and patches its known incompatibility with scikit-image >= 0.19 (``gaussian`` lost
``multichannel``; ``glass_blur`` uses it).

Metric as in MGNet (Table 2): top-1 accuracy per corruption averaged over the 5 severities, then the
mean over the 15 corruptions (plain accuracy, not the AlexNet-normalised mCE).
"""
import functools
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmdynamic.registry import TRANSFORMS, register_dual

try:
    from mmcv.transforms import BaseTransform
except ImportError:  # pragma: no cover
    BaseTransform = object

CORRUPTIONS = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur',
               'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast',
               'elastic_transform', 'pixelate', 'jpeg_compression')
SEVERITIES = (1, 2, 3, 4, 5)
# Table 2 header abbreviations
SHORT_NAMES = dict(gaussian_noise='Gauss', shot_noise='Shot', impulse_noise='Impul',
                   defocus_blur='Defoc', glass_blur='Glass', motion_blur='Motion', zoom_blur='Zoom',
                   snow='Snow', frost='Frost', fog='Fog', brightness='Bright', contrast='Contr',
                   elastic_transform='Elastic', pixelate='Pixel', jpeg_compression='JPEG')


@functools.lru_cache(maxsize=1)
def _imagecorruptions():
    """Import ``imagecorruptions`` once, with the scikit-image compatibility patch."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # its pkg_resources import warns on new setuptools
        try:
            import imagecorruptions
            from imagecorruptions import corruptions as module
        except ImportError as exc:  # pragma: no cover
            raise ImportError('the corruption benchmark needs `pip install imagecorruptions` '
                              '(listed in requirements/cls.txt)') from exc
    gaussian = module.gaussian
    if not getattr(gaussian, '_mmdynamic_patched', False):

        @functools.wraps(gaussian)
        def patched(image, *args, multichannel=None, **kwargs):
            if multichannel is not None and 'channel_axis' not in kwargs:
                kwargs['channel_axis'] = -1 if multichannel else None
            return gaussian(image, *args, **kwargs)

        patched._mmdynamic_patched = True
        module.gaussian = patched
    return imagecorruptions


def corrupt_image(image: np.ndarray, corruption: str, severity: int, rgb: bool = True) -> np.ndarray:
    """Apply one ImageNet-C corruption.

    Args:
        image (ndarray): (H, W, 3) uint8 image.
        corruption (str): One of :data:`CORRUPTIONS`.
        severity (int): 1..5.
        rgb (bool): The channel order of ``image`` (False: BGR, as mmcv loads images).

    Returns:
        ndarray: (H, W, 3) uint8, same channel order and size.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f'unknown corruption {corruption!r}; choose from {CORRUPTIONS}')
    if severity not in SEVERITIES:
        raise ValueError(f'severity must be in 1..5, got {severity}')
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) image, got shape {image.shape}')
    lib = _imagecorruptions()
    img = image if rgb else image[..., ::-1]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out = lib.corrupt(np.ascontiguousarray(img.astype(np.uint8)), corruption_name=corruption,
                          severity=severity)
    out = np.asarray(out, dtype=np.uint8)
    if out.shape[:2] != image.shape[:2]:  # a few corruptions may round the size
        import cv2
        out = cv2.resize(out, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    out = out if rgb else out[..., ::-1]
    return np.ascontiguousarray(out)


@register_dual(TRANSFORMS)
class ImageCorruption(BaseTransform):
    """Pipeline transform: corrupt ``results['img']`` (mmcv's BGR uint8) on the fly.

    Put it after the resize/crop of the test pipeline (the ImageNet-C images are the 224 px centre
    crops) and before ``PackInputs``. The noise of each image is seeded by ``seed`` and the sample
    index, so repeated evaluations give the same corrupted images.

    Args:
        corruption (str): One of :data:`CORRUPTIONS`.
        severity (int): 1..5.
        seed (int, optional): Base seed of the random corruptions (None: not seeded).
    """

    def __init__(self, corruption: str, severity: int, seed: Optional[int] = 0) -> None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f'unknown corruption {corruption!r}; choose from {CORRUPTIONS}')
        if severity not in SEVERITIES:
            raise ValueError(f'severity must be in 1..5, got {severity}')
        self.corruption = corruption
        self.severity = severity
        self.seed = seed

    def transform(self, results: Dict) -> Dict:
        if self.seed is not None:  # imagecorruptions draws from numpy's global generator
            index = results.get('sample_idx', 0) or 0
            np.random.seed((self.seed * 1_000_003 + int(index) * 101 + self.severity) % (2**32))
        results['img'] = corrupt_image(results['img'], self.corruption, self.severity, rgb=False)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


def corruption_pipeline(test_pipeline: Sequence[dict], corruption: str, severity: int,
                        seed: Optional[int] = 0, after: Sequence[dict] = ()) -> List[dict]:
    """A copy of ``test_pipeline`` with :class:`ImageCorruption` inserted before ``PackInputs``.

    Args:
        test_pipeline (Sequence[dict]): The config's test pipeline.
        corruption (str): Corruption name. severity (int): 1..5. seed (int, optional): Its seed.
        after (Sequence[dict]): Transforms applied after the corruption (e.g. the paper's second
            ``ResizeEdge(256)`` + ``CenterCrop(224)``, which the stored ImageNet-C JPEGs go through).

    Returns:
        list[dict]: The pipeline.
    """
    pipeline = [dict(t) for t in test_pipeline]
    names = [str(t.get('type', '')).split('.')[-1] for t in pipeline]
    at = names.index('PackInputs') if 'PackInputs' in names else len(pipeline)
    insert = [dict(type='ImageCorruption', corruption=corruption, severity=severity, seed=seed)]
    insert += [dict(t) for t in after]
    return pipeline[:at] + insert + pipeline[at:]


def summarize_corruptions(accuracy: Dict[str, Dict[int, List[float]]]) -> Dict[str, List[float]]:
    """Per corruption the mean over its severities, and ``'mean'`` over corruptions, per exit.

    Args:
        accuracy (dict): ``{corruption: {severity: [top-1 of each exit]}}``.

    Returns:
        dict: ``{corruption: [per-exit mean over severities], ..., 'mean': [per-exit mean]}``.
    """
    from .common import mean_of
    table = {name: mean_of(list(by_sev.values())) for name, by_sev in accuracy.items()}
    if not table:
        raise ValueError('no corruption results')
    table['mean'] = mean_of(list(table.values()))
    return table
