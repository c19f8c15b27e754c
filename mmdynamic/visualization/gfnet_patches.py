# Copyright (c) mmdynamic contributors. All rights reserved.
"""Draw GFNet's glance and focus patches, in order, on the input image (PNG)."""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook

from mmdynamic.models.utils.patch_sampler import patch_corners
from mmdynamic.registry import HOOKS, register_dual
from mmdynamic.utils.model_wrapper import unwrap_model

# BGR colours of the focus patches, in order (the glance frame is white)
COLOURS = [(0, 0, 255), (0, 200, 255), (0, 200, 0), (255, 128, 0), (255, 0, 255), (128, 0, 128)]


def draw_gfnet_patches(image: np.ndarray, locations: Sequence[Sequence[float]], patch_size: int,
                       anchor: str = 'topleft', scale: int = 2,
                       out_file: Optional[str] = None) -> np.ndarray:
    """Draw the glance (step 1: the whole image, white frame) and the focus patches (steps 2..T,
    coloured frames numbered by step) on an image.

    Args:
        image (ndarray): (H, W, 3) uint8 image (BGR, as OpenCV writes it).
        locations (Sequence): (T - 1, 2) (row, col) locations in [0, 1] of the focus patches.
        patch_size (int): P.
        anchor (str): The model's ``crop_anchor`` ('topleft' or 'centre').
        scale (int): Upscaling of the drawing (small images). Defaults to 2.
        out_file (str, optional): Write the drawing here (PNG).

    Returns:
        ndarray: (H * scale, W * scale, 3) the drawing.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be (H, W, 3), got {image.shape}')
    height, width = image.shape[:2]
    canvas = cv2.resize(np.ascontiguousarray(image, dtype=np.uint8),
                        (width * scale, height * scale), interpolation=cv2.INTER_NEAREST)
    cv2.rectangle(canvas, (0, 0), (width * scale - 1, height * scale - 1), (255, 255, 255), 2)
    cv2.putText(canvas, '1', (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    locs = torch.as_tensor(np.asarray(locations, dtype=np.float32)).reshape(-1, 2)
    if len(locs):
        corners = patch_corners(locs, (height, width), (patch_size, patch_size), anchor).floor()
        for step, (top, left) in enumerate(corners.long().tolist(), start=2):
            colour = COLOURS[(step - 2) % len(COLOURS)]
            p0 = (left * scale, top * scale)
            p1 = ((left + patch_size) * scale - 1, (top + patch_size) * scale - 1)
            cv2.rectangle(canvas, p0, p1, colour, 2)
            cv2.putText(canvas, str(step), (p0[0] + 3, p0[1] + 14), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45, colour, 1)
    if out_file is not None:
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        if not cv2.imwrite(out_file, canvas):
            raise OSError(f'could not write {out_file}')
    return canvas


@register_dual(HOOKS)
class GFNetPatchVisHook(Hook):
    """Write the glance and focus patches of the first ``num_images`` test (and, optionally,
    validation) images as PNGs: ``<out_dir>/gfnet_patches/<phase>_<index>.png``.

    The locations are those the model uses in evaluation (the policy's mean action after stage I).

    Args:
        num_images (int): How many images to draw. Defaults to 8.
        out_dir (str, optional): Defaults to the runner's work dir.
        during_val (bool): Also after every validation. Defaults to False.
        scale (int): Upscaling of the drawings. Defaults to 2.
    """
    priority = 'LOW'

    def __init__(self, num_images: int = 8, out_dir: Optional[str] = None,
                 during_val: bool = False, scale: int = 2) -> None:
        if num_images < 1:
            raise ValueError(f'num_images must be positive, got {num_images}')
        self.num_images = num_images
        self.out_dir = out_dir
        self.during_val = during_val
        self.scale = scale
        self._written = 0

    def _draw(self, runner, data_batch, phase: str) -> None:
        if self._written >= self.num_images:
            return
        model = unwrap_model(runner.model)
        if not callable(getattr(model, 'rollout', None)):
            raise TypeError(f'GFNetPatchVisHook needs a GFNet, got {type(model).__name__}')
        data = model.data_preprocessor(data_batch, False)
        with torch.no_grad():
            locations = model.rollout(data['inputs']).locations.cpu().numpy()
        out_dir = osp.join(self.out_dir or runner.work_dir, 'gfnet_patches')
        for i, raw in enumerate(data_batch['inputs']):
            if self._written >= self.num_images:
                break
            image = raw.permute(1, 2, 0).cpu().numpy().astype(np.uint8)  # loaded BGR
            draw_gfnet_patches(image, locations[i], model.patch_size, model.crop_anchor,
                               self.scale, osp.join(out_dir, f'{phase}_{self._written:03d}.png'))
            self._written += 1

    def before_test(self, runner) -> None:
        self._written = 0

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._draw(runner, data_batch, 'test')

    def before_val(self, runner) -> None:
        self._written = 0

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.during_val:
            self._draw(runner, data_batch, f'val_epoch{runner.epoch}')
