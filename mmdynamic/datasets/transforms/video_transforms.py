# Copyright (c) mmdynamic contributors. All rights reserved.
"""Frame sampling for the two-clip input of Uni-AdaFocus-TSM / -X3D (spec §2.7, reference §10.7).

The glance clip (T_G TSN segments) and the focus-candidate clip (T_0 TSN segments) of a video are sampled
independently and concatenated into one frame list, so that the rest of an ordinary mmaction2 pipeline
(decode, one shared crop/flip for every frame, ``FormatShape('NCHW')``) yields inputs
(T_G + T_0, C, H, W) per video: the recognizer splits them. The MN2 + R50 setting needs no special
sampler: ``SampleFrames(clip_len=1, num_clips=T_0)`` already gives the T_0 candidates, and mmaction2's
crop and flip transforms apply one set of parameters to every frame of a video.
"""
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
