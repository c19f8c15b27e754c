# Copyright (c) mmdynamic contributors. All rights reserved.
"""Frame sampling for the two-clip input of Uni-AdaFocus-TSM / -X3D (spec §2.7, reference §10.7).

The glance clip (T_G TSN segments) and the focus-candidate clip (T_0 TSN segments) of a video are sampled
independently and concatenated into one frame list, so that the rest of an ordinary mmaction2 pipeline
(decode, one shared crop/flip for every frame, ``FormatShape('NCHW')``) yields inputs
(T_G + T_0, C, H, W) per video: the recognizer splits them. The MN2 + R50 setting needs no special
sampler: ``SampleFrames(clip_len=1, num_clips=T_0)`` already gives the T_0 candidates, and mmaction2's
crop and flip transforms apply one set of parameters to every frame of a video.

The official tests of Uni-AdaFocus-X3D (Kinetics-400) need three more transforms: :class:`PillowResize`
(the short side to 256 with PIL's bilinear filter, as torchvision's ``Resize`` on PIL images),
:class:`TSNCenterCrop` (torchvision's centre crop) and, for the 3-crop test, :class:`TSNThreeCrop` (three
crops along the width at TSN's offsets).
"""
from typing import List, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmdynamic.registry import TRANSFORMS, register_dual


@register_dual(TRANSFORMS)
class SampleGlanceAndFocusFrames(BaseTransform):
    """Sample a T_G-frame glance clip and a T_0-frame focus-candidate clip (TSN segments each).

    A video with fewer frames than a clip gives every frame at least once, in temporal order, with
    repeats (never wrapping back to the first frame).

    Required keys: ``total_frames``, ``start_index``. Added/modified keys: ``frame_inds``
    (T_G + T_0, glance first), ``clip_len`` (1), ``frame_interval``, ``num_clips`` (T_G + T_0),
    ``num_glance_frames`` (T_G).

    Args:
        num_glance (int): T_G glance frames (8 for Sth-Sth / Jester, 16 for Kinetics X3D).
        num_candidates (int): T_0 focus candidates (3 T_L in the paper).
        test_mode (bool): Centre frame of each segment (True) or a random one (False).
        out_of_bound_opt (str): See mmaction2's ``SampleFrames``. Defaults to 'loop'.
    """

    def __init__(self, num_glance: int, num_candidates: int, test_mode: bool = False,
                 out_of_bound_opt: str = 'loop') -> None:
        if num_glance < 1 or num_candidates < 1:
            raise ValueError(f'num_glance and num_candidates must be positive, got {num_glance} '
                             f'and {num_candidates}')
        from mmaction.datasets.transforms import SampleFrames
        self.num_glance = num_glance
        self.num_candidates = num_candidates
        self.test_mode = test_mode
        self._samplers = [
            SampleFrames(clip_len=1, frame_interval=1, num_clips=n, test_mode=test_mode,
                         out_of_bound_opt=out_of_bound_opt)
            for n in (num_glance, num_candidates)
        ]

    def transform(self, results: dict) -> dict:
        import numpy as np
        # A video shorter than a clip makes mmaction2's segment offsets run past its end, where they
        # wrap to the first frame; the running maximum keeps each clip in temporal order (the last
        # frame repeats instead). A no-op for videos at least as long as the clips.
        inds = [np.maximum.accumulate(sampler.transform(dict(results))['frame_inds'])
                for sampler in self._samplers]
        results['frame_inds'] = np.concatenate(inds).astype(np.int64)
        results['clip_len'] = 1
        results['frame_interval'] = 1
        results['num_clips'] = self.num_glance + self.num_candidates
        results['num_glance_frames'] = self.num_glance
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_glance={self.num_glance}, '
                f'num_candidates={self.num_candidates}, test_mode={self.test_mode})')


PIL_FILTERS = ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming')
SIZE_ROUNDINGS = ('floor', 'round')


@register_dual(TRANSFORMS)
class PillowResize(BaseTransform):
    """Resize every frame with PIL (mmcv's ``pillow`` backend), as torchvision's ``Resize`` does on
    PIL images (the official AdaFocus pipelines: ``GroupScale(256)``).

    mmaction2's ``Resize`` always resizes with OpenCV. Its 'bilinear' (``cv2.INTER_LINEAR``) reads the
    2 x 2 nearest pixels also when it shrinks, while PIL's bilinear filter widens its support with the
    scale factor (it antialiases), and mmcv rounds the scaled long side where torchvision truncates it
    (455 x 342 -> 341 x 256 instead of 340 x 256). Frames that already have the target short side are
    unchanged by both; an enlarged frame differs by about one grey level, a shrunk one by several.
    This transform gives PIL's pixels (the same library call as the official code) from mmaction2's
    decoded frames.

    Required keys: ``imgs`` (uint8 H x W x C frames), ``img_shape``. Added/modified keys: ``imgs``,
    ``img_shape``, ``keep_ratio``, ``scale_factor``.

    Args:
        scale (tuple[int]): ``(-1, S)`` or ``(S, -1)``: the short side to S, the long side scaled by the
            same factor (``keep_ratio`` must be True); or ``(w, h)`` with ``keep_ratio=False``: that
            size.
        keep_ratio (bool): See ``scale``. Defaults to True.
        interpolation (str): A PIL filter: 'nearest', 'bilinear', 'bicubic', 'box', 'lanczos' or
            'hamming'. Defaults to 'bilinear'.
        size_rounding (str): How the scaled long side is made an integer: 'floor' (torchvision's
            ``int(S * long / short)``, the official pipelines) or 'round' (mmcv's, as mmaction2's
            ``Resize``). Defaults to 'floor'.
    """

    def __init__(self, scale: Tuple[int, int], keep_ratio: bool = True,
                 interpolation: str = 'bilinear', size_rounding: str = 'floor') -> None:
        scale = tuple(scale) if isinstance(scale, (tuple, list)) else scale
        if not (isinstance(scale, tuple) and len(scale) == 2
                and all(isinstance(s, int) for s in scale)):
            raise ValueError(f'scale must be a pair of ints, got {scale!r}')
        if keep_ratio and (sorted(scale)[0] != -1 or sorted(scale)[1] < 1):
            raise ValueError(f'with keep_ratio=True scale must be (-1, S) or (S, -1), got {scale}')
        if not keep_ratio and min(scale) < 1:
            raise ValueError(f'with keep_ratio=False scale must be a positive (w, h), got {scale}')
        if interpolation not in PIL_FILTERS:
            raise ValueError(f'interpolation must be one of {PIL_FILTERS}, got {interpolation!r}')
        if size_rounding not in SIZE_ROUNDINGS:
            raise ValueError(f'size_rounding must be one of {SIZE_ROUNDINGS}, '
                             f'got {size_rounding!r}')
        self.scale = scale
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.size_rounding = size_rounding

    def output_size(self, width: int, height: int) -> Tuple[int, int]:
        """(w, h) of a resized ``width`` x ``height`` frame."""
        if not self.keep_ratio:
            return self.scale
        side = max(self.scale)
        short, long = min(width, height), max(width, height)
        if self.size_rounding == 'floor':
            new_long = int(side * long / short)
        else:
            new_long = int(long * (side / short) + 0.5)
        return (side, new_long) if width <= height else (new_long, side)

    def transform(self, results: dict) -> dict:
        import mmcv
        if results.get('lazy') or 'keypoint' in results:
            raise ValueError(f'{type(self).__name__} supports neither lazy mode nor keypoints')
        height, width = results['img_shape']
        new_w, new_h = self.output_size(width, height)
        imgs = results['imgs']
        if any(np.asarray(img).dtype != np.uint8 for img in imgs):
            raise ValueError(f'{type(self).__name__} resizes uint8 frames (PIL)')
        if (new_w, new_h) != (width, height):
            results['imgs'] = [
                mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation,
                              backend='pillow') for img in imgs
            ]
        factor = np.array([new_w / width, new_h / height], dtype=np.float32)
        results['scale_factor'] = results.get('scale_factor', np.ones(2, np.float32)) * factor
        results['img_shape'] = (new_h, new_w)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r}, size_rounding={self.size_rounding!r})')


class _FixedCrop(BaseTransform):
    """Base of the crops at fixed offsets: checks the crop size and the frames, crops, reprs.

    Args:
        crop_size (int | tuple[int]): Side, or (w, h), of the crop(s).
    """

    def __init__(self, crop_size: Union[int, Sequence[int]] = 224) -> None:
        size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f'crop_size must be a positive int or (w, h), got {crop_size!r}')
        self.crop_size = size

    def _check_fits(self, width: int, height: int) -> None:
        crop_w, crop_h = self.crop_size
        if crop_w > width or crop_h > height:
            raise ValueError(f'{type(self).__name__}: a {crop_w} x {crop_h} crop does not fit a '
                             f'{width} x {height} frame')

    def _frames(self, results: dict) -> Tuple[list, int, int]:
        """The frames of ``results`` and their (width, height); refuses lazy mode."""
        if results.get('lazy'):
            raise ValueError(f'{type(self).__name__} does not support lazy mode')
        imgs = results['imgs']
        height, width = imgs[0].shape[:2]
        return imgs, width, height

    def _crop(self, imgs: list, x: int, y: int) -> list:
        crop_w, crop_h = self.crop_size
        return [img[y:y + crop_h, x:x + crop_w] for img in imgs]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size})'


@register_dual(TRANSFORMS)
class TSNCenterCrop(_FixedCrop):
    """The centre crop of every frame as torchvision's ``CenterCrop`` (the official tests'
    ``GroupCenterCrop``): top-left corner ``round((W - w) / 2)``, ``round((H - h) / 2)`` with Python's
    rounding of halves to even.

    mmaction2's ``CenterCrop`` takes ``floor``: the two differ by one pixel when W - w (or H - h) is
    3 mod 4, e.g. 455 x 256 frames (16:9 at short side 256): x = 116 here, 115 there.

    Required keys: ``imgs``, ``img_shape``. Added/modified keys: ``imgs``, ``img_shape``,
    ``crop_bbox`` (x1, y1, x2, y2).

    Args:
        crop_size (int | tuple[int]): Side, or (w, h), of the crop. Defaults to 224.
    """

    def offset(self, width: int, height: int) -> Tuple[int, int]:
        """(x, y) top-left corner of the crop of a ``width`` x ``height`` frame."""
        self._check_fits(width, height)
        crop_w, crop_h = self.crop_size
        return int(round((width - crop_w) / 2.0)), int(round((height - crop_h) / 2.0))

    def transform(self, results: dict) -> dict:
        imgs, width, height = self._frames(results)
        crop_w, crop_h = self.crop_size
        x, y = self.offset(width, height)
        results['imgs'] = self._crop(imgs, x, y)
        results['crop_bbox'] = np.array([x, y, x + crop_w, y + crop_h])
        results['img_shape'] = (crop_h, crop_w)
        return results


@register_dual(TRANSFORMS)
class TSNThreeCrop(_FixedCrop):
    """Three crops of every frame at TSN's offsets, as the official Uni-AdaFocus-X3D 3-crop test
    (TSN's ``GroupFullResSample`` without flips, ``ops/transforms.py``).

    With s_x = floor((W - w) / 4) and s_y = floor((H - h) / 4), the crops' top-left corners are
    (0, 2 s_y), (4 s_x, 2 s_y) and (2 s_x, 2 s_y): left, right and centre, in this order, along the
    width whatever the frame's orientation. The right crop ends at W - ((W - w) mod 4), not always at
    the frame's edge, and the centre is rounded down to a multiple of 2; mmaction2's ``ThreeCrop``
    instead needs w = W or h = H and crops along the long side at (0, floor((W-w)/2), 2 floor(..)).

    The crops' frames follow each other (all frames of the left crop, then of the right, then of the
    centre), as with ``ThreeCrop``: ``FormatShape('NCHW')`` gives 3 x T frames, which the AdaFocus
    recognizers split into three views (:meth:`AdaFocusRecognizerBase.num_views`).

    Required keys: ``imgs``, ``img_shape``. Added/modified keys: ``imgs``, ``img_shape``,
    ``crop_bbox`` (3 T, 4) boxes (x1, y1, x2, y2) of the frames.

    Args:
        crop_size (int | tuple[int]): Side, or (w, h), of the crops. Defaults to 224.
    """

    def offsets(self, width: int, height: int) -> List[Tuple[int, int]]:
        """(x, y) top-left corners of the left, right and centre crops of a ``width`` x ``height``
        frame."""
        self._check_fits(width, height)
        crop_w, crop_h = self.crop_size
        step_x, step_y = (width - crop_w) // 4, (height - crop_h) // 4
        return [(0, 2 * step_y), (4 * step_x, 2 * step_y), (2 * step_x, 2 * step_y)]

    def transform(self, results: dict) -> dict:
        imgs, width, height = self._frames(results)
        crop_w, crop_h = self.crop_size
        cropped, boxes = [], []
        for x, y in self.offsets(width, height):
            cropped.extend(self._crop(imgs, x, y))
            boxes.extend([[x, y, x + crop_w, y + crop_h]] * len(imgs))
        results['imgs'] = cropped
        results['crop_bbox'] = np.array(boxes)
        results['img_shape'] = (crop_h, crop_w)
        return results
