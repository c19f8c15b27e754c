# Copyright (c) mmdynamic contributors. All rights reserved.
"""A crop around the object of a demo classification image: the data of the demos' shared stand-in for
ImageNet pre-training (configs/demo/resnet18w16_card-crops_1xb32-20e_demo-cls.py)."""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from mmdynamic.datasets.demo_data import DemoBoxes
from mmdynamic.registry import TRANSFORMS, register_dual


@register_dual(TRANSFORMS)
class DemoObjectCrop(BaseTransform):
    """Crop a ``size`` x ``size`` window that contains the object box of a demo image, at a
    uniformly random position among those windows (the box is anywhere in the crop).

    The boxes are the ``<split>_boxes.json`` files that ``make_demo_data`` writes next to the split
    folders (keys: paths relative to the split folder; values: (x1, y1, x2, y2)).

    Required keys: ``img``, ``img_path``. Modified: ``img``, ``img_shape``.

    Args:
        size (int): Side of the crop; at least the box side.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._box = DemoBoxes()

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        height, width = img.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in self._box(results['img_path']))
        if x2 - x1 > self.size or y2 - y1 > self.size or self.size > min(height, width):
            raise ValueError(f'crop size {self.size} cannot hold the box {(x1, y1, x2, y2)} '
                             f'inside a {width} x {height} image')
        top = np.random.randint(max(0, y2 - self.size), min(y1, height - self.size) + 1)
        left = np.random.randint(max(0, x2 - self.size), min(x1, width - self.size) + 1)
        results['img'] = img[top:top + self.size, left:left + self.size]
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size})'
