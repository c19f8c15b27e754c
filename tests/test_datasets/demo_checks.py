# Copyright (c) mmdynamic contributors. All rights reserved.
"""Checks shared by the tests of both demo data generators: a set is stamped deterministically, and
it has the redundancy the dynamic models exploit (an object that needs full resolution to read; a
video whose object shows in few frames)."""
import glob
import hashlib
import json
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np
import torch

NUM_FRAMES = 16


def tree_digest(root: str) -> str:
    """SHA-256 over every file below ``root`` (relative paths and contents, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(root, '**', '*'), recursive=True)):
        if osp.isfile(path):
            digest.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def _ink(patch: np.ndarray) -> np.ndarray:
    """Colour-independent glyph features: deviation from the patch's median grey level, in [0, 1]."""
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return np.abs(gray - np.median(gray)) / 255.0


def _crop_features(root: str, split: str, scale: float, side: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Object-box crops resampled to ``side`` x ``side``, at full resolution (scale 1) or from the
    image downscaled by ``scale`` and resampled back, so only the resolution they carry differs.

    Returns:
        tuple: (N, side * side) features and (N, ) labels (the class folder of each image).
    """
    with open(osp.join(root, f'{split}_boxes.json')) as f:
        boxes = json.load(f)
    feats, labels = [], []
    for rel, (x1, y1, x2, y2) in sorted(boxes.items()):
        img = cv2.imread(osp.join(root, split, rel))
        if scale != 1:
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        crop = cv2.resize(img[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA)
        feats.append(_ink(crop).ravel())
        labels.append(int(rel.split('/')[0]))
    return torch.tensor(np.stack(feats)), torch.tensor(labels)


def _linear_probe(train, val, num_classes: int = 10, steps: int = 300) -> float:
    """Val accuracy of a linear classifier (Adam, standardised features) fitted on ``train``."""
    torch.manual_seed(0)
    (xt, yt), (xv, yv) = train, val
    mean, std = xt.mean(0), xt.std(0) + 1e-3
    layer = torch.nn.Linear(xt.shape[1], num_classes)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(layer((xt - mean) / std), yt).backward()
        opt.step()
    return (layer((xv - mean) / std).argmax(1) == yv).float().mean().item()


def probe_full_and_quarter(root: str, side: int) -> Tuple[float, float]:
    """Linear-probe accuracy of the object crops of a classification set at full and at 1/4 scale."""
    full = _linear_probe(_crop_features(root, 'train', 1, side), _crop_features(root, 'val', 1, side))
    quarter = _linear_probe(_crop_features(root, 'train', 0.25, side),
                            _crop_features(root, 'val', 0.25, side))
    return full, quarter


def _box_changes(frames: np.ndarray, info: Dict) -> Dict[int, float]:
    """Mean absolute change inside the object box between each frame and its nearest hidden frame,
    motion-compensated by the scene's ``drift_per_frame`` (frames whose shifted box leaves the
    image are left out)."""
    size = frames.shape[1]
    x1, y1, x2, y2 = info['box']
    dx, dy = info['drift_per_frame']
    hidden = [t for t in range(NUM_FRAMES) if t not in info['visible']]
    change = {}
    for t in range(NUM_FRAMES):
        ref = min((h for h in hidden if h != t), key=lambda h: abs(h - t))
        sx, sy = (t - ref) * dx, (t - ref) * dy  # the same scene content sits here in frame ref
        if not (0 <= x1 + sx and x2 + sx <= size and 0 <= y1 + sy and y2 + sy <= size):
            continue
        region = frames[t, y1:y2, x1:x2]
        change[t] = float(np.abs(region - frames[ref, y1 + sy:y2 + sy, x1 + sx:x2 + sx]).mean())
    return change


def check_visible_in_few_frames(video_root: str, num_videos: int = 8) -> Dict[str, Dict]:
    """Assert that in the first ``num_videos`` train videos the object shows in at most a quarter of
    the frames and that only there does the object box change (> 2x any hidden frame's change).

    Returns:
        dict: the train meta (video -> info), for further checks.
    """
    import decord
    with open(osp.join(video_root, 'train_meta.json')) as f:
        meta = json.load(f)
    for rel, info in list(meta.items())[:num_videos]:
        frames = decord.VideoReader(osp.join(video_root, rel)).get_batch(range(NUM_FRAMES))
        change = _box_changes(frames.asnumpy().astype(np.float32), info)
        assert len(info['visible']) <= NUM_FRAMES // 4
        seen = [change[t] for t in info['visible'] if t in change]
        unseen = [change[t] for t in range(NUM_FRAMES) if t not in info['visible'] and t in change]
        assert seen and unseen
        assert min(seen) > 2 * max(unseen), (rel, info, change)
    return meta
