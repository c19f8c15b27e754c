# Copyright (c) mmdynamic contributors. All rights reserved.
"""A second demo data generator, built differently from :mod:`mmdynamic.datasets.demo_data`.

The cards generator prints font digits on coloured cards among letter cards and strokes. This one has
no cards and no fonts: a digit is a *composite glyph* made of other primitives, drawn straight onto a
smooth, blotchy background:

- dot-matrix digits (a 5 x 7 grid of round or square dots, each dot's brightness jittered) or
  seven-segment digits (bevelled bars, optionally slanted), in a colour that contrasts with the local
  background (light ink on dark ground and vice versa);
- clutter of other kinds: smooth multi-scale colour noise, soft blobs, and *fragments* - incomplete
  dot-matrix or segment glyphs made of the same primitives as the objects - plus whole distractor
  glyphs in the same styles that are letters (``A C E F H L P U`` ...), not digits;
- object heights vary from image to image (``obj_size`` +- 25 %).

At 1/4 scale the dots and bars of a glyph blur into a smudge (the glyph is unreadable), while its
full-resolution patch is easy to read: the spatial redundancy that glance-and-focus models exploit.
In the videos the background drifts by a per-video direction of one pixel per frame and the glyph shows
in only a few consecutive frames (temporal redundancy).

Output formats are those of the cards generator (and its readers apply unchanged):

- ``cls/``: mmpretrain ``CustomDataset`` folders ``{train,val}/<class>/<name>.png`` plus
  ``{train,val}_boxes.json`` (the object's tight box ``[x1, y1, x2, y2]``, x2/y2 exclusive).
- ``video/``: ``mp4v`` videos with mmaction2 ``VideoDataset`` lists ``{train,val}_list.txt`` and
  ``{train,val}_meta.json`` (``label``, ``box``, ``drift_per_frame`` = [dx, dy], ``visible`` frames).
"""
import os
import os.path as osp
from dataclasses import dataclass, replace
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .demo_data import (Box, _place_boxes, class_names, write_classification_set,
                        write_stamped, write_video_set)

ALT_TASKS = ('cls', 'video')

# 5 x 7 dot-matrix bitmaps (row strings, '#' = dot), drawn for this module.
_DOT_DIGITS = {
    '0': ('.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'),
    '1': ('..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'),
    '2': ('.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'),
    '3': ('####.', '....#', '....#', '.###.', '....#', '....#', '####.'),
    '4': ('...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'),
    '5': ('#####', '#....', '####.', '....#', '....#', '#...#', '.###.'),
    '6': ('..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'),
    '7': ('#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'),
    '8': ('.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'),
    '9': ('.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'),
}
_DOT_LETTERS = {
    'A': ('..#..', '.#.#.', '#...#', '#...#', '#####', '#...#', '#...#'),
    'H': ('#...#', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'),
    'K': ('#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'),
    'M': ('#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'),
    'N': ('#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#', '#...#'),
    'T': ('#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'),
    'V': ('#...#', '#...#', '#...#', '#...#', '#...#', '.#.#.', '..#..'),
    'X': ('#...#', '#...#', '.#.#.', '..#..', '.#.#.', '#...#', '#...#'),
    'Y': ('#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'),
    'W': ('#...#', '#...#', '#...#', '#.#.#', '#.#.#', '##.##', '#...#'),
}
# Seven-segment codes: a top, b top-right, c bottom-right, d bottom, e bottom-left, f top-left, g middle.
_SEG_DIGITS = {'0': 'abcdef', '1': 'bc', '2': 'abdeg', '3': 'abcdg', '4': 'bcfg', '5': 'acdfg',
               '6': 'acdefg', '7': 'abc', '8': 'abcdefg', '9': 'abcdfg'}
_SEG_LETTERS = {'A': 'abcefg', 'C': 'adef', 'F': 'aefg', 'H': 'bcefg', 'L': 'def', 'P': 'abefg',
                'U': 'bcdef', 'J': 'bcde', 'r': 'eg', 't': 'defg', 'n': 'ceg'}
GLYPH_STYLES = ('dots', 'segments')
_SUPERSAMPLE = 4  # glyph masks are drawn at 4x and area-downsampled (anti-aliasing)


@dataclass
class AltCanvasConfig:
    """Geometry and clutter of an alt demo image.

    Args:
        img_size (int): Side of the square canvas in pixels.
        obj_size (int): Mean glyph height in pixels; each glyph's height is drawn from
            ``obj_size * [1 - size_jitter, 1 + size_jitter]``.
        size_jitter (float): Relative spread of glyph heights.
        num_distractors (int): Whole letter glyphs (same styles as the objects) per image.
        num_fragments (int): Incomplete glyphs (a few dots or segments) per image.
        num_blobs (int): Soft colour blobs per image.
        noise_std (float): Std of the fine pixel noise (grey levels).
    """
    img_size: int = 128
    obj_size: int = 16
    size_jitter: float = 0.25
    num_distractors: int = 2
    num_fragments: int = 6
    num_blobs: int = 8
    noise_std: float = 6.0

    def __post_init__(self) -> None:
        if self.obj_size < 10:
            raise ValueError(f'obj_size must be at least 10 pixels (7 dot rows), got {self.obj_size}')
        if not 0 <= self.size_jitter < 0.5:
            raise ValueError(f'size_jitter must be in [0, 0.5), got {self.size_jitter}')
        if self.img_size < 3 * self.obj_size:
            raise ValueError(f'img_size ({self.img_size}) must be at least 3 x obj_size '
                             f'({self.obj_size}) to leave room for clutter')
        for name in ('num_distractors', 'num_fragments', 'num_blobs'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')

    @property
    def max_glyph_height(self) -> int:
        return int(round(self.obj_size * (1 + self.size_jitter)))


# ---------------------------------------------------------------------------------------------------
# Background
# ---------------------------------------------------------------------------------------------------
def _smooth_field(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [-1, 1] of shape (size, size, 3): a cells x cells grid, bicubic."""
    grid = rng.uniform(-1, 1, size=(cells, cells, 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), -1, 1)


def render_alt_background(size: int, rng: np.random.Generator, num_blobs: int,
                          noise_std: float) -> np.ndarray:
    """A blotchy canvas: multi-scale smooth colour noise, soft blobs and fine pixel noise.

    Returns:
        np.ndarray: uint8 BGR image of shape (size, size, 3).
    """
    base = rng.uniform(60, 190, size=3).astype(np.float32)
    img = base + 45 * _smooth_field(size, int(rng.integers(3, 6)), rng) \
        + 20 * _smooth_field(size, int(rng.integers(8, 16)), rng)
    for _ in range(num_blobs):
        mask = np.zeros((size, size), np.float32)
        center = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v) for v in rng.integers(max(2, size // 40), max(3, size // 8), 2))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(1.0, 3.0)))[..., None]
        img = img * (1 - mask) + rng.uniform(0, 255, size=3).astype(np.float32) * mask
    img += rng.normal(0, noise_std, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------
# Glyphs (alpha masks)
# ---------------------------------------------------------------------------------------------------
def _dot_mask(rows: Sequence[str], height: int, rng: np.random.Generator,
              keep: Optional[np.ndarray] = None) -> np.ndarray:
    """Alpha mask (height, width) of a 5 x 7 dot-matrix glyph; ``keep`` masks dots out (fragments)."""
    s = _SUPERSAMPLE
    cell = height * s / 7.0
    width = int(round(5 * cell / s))
    mask = np.zeros((height * s, width * s), np.float32)
    square = rng.random() < 0.5
    radius = cell * rng.uniform(0.38, 0.5)
    idx = 0
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch != '#':
                continue
            idx += 1
            if keep is not None and not keep[idx - 1]:
                continue
            cx, cy = (c + 0.5) * cell, (r + 0.5) * cell
            level = float(rng.uniform(0.7, 1.0))
            if square:
                cv2.rectangle(mask, (int(cx - radius), int(cy - radius)),
                              (int(cx + radius), int(cy + radius)), level, -1)
            else:
                cv2.circle(mask, (int(cx), int(cy)), int(radius), level, -1)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)


def _segment_polygons(width: float, height: float, thick: float) -> Dict[str, np.ndarray]:
    """Bevelled bar polygons of the seven segments in a width x height box (supersampled units)."""
    h2 = thick / 2
    x0, x1 = h2, width - h2
    ys = (h2, height / 2, height - h2)

    def horizontal(y):
        return np.array([[x0 + h2, y - h2], [x1 - h2, y - h2], [x1, y], [x1 - h2, y + h2],
                         [x0 + h2, y + h2], [x0, y]])

    def vertical(x, ya, yb):
        return np.array([[x, ya], [x + h2, ya + h2], [x + h2, yb - h2], [x, yb], [x - h2, yb - h2],
                         [x - h2, ya + h2]])

    return dict(a=horizontal(ys[0]), g=horizontal(ys[1]), d=horizontal(ys[2]),
                f=vertical(x0, ys[0], ys[1]), b=vertical(x1, ys[0], ys[1]),
                e=vertical(x0, ys[1], ys[2]), c=vertical(x1, ys[1], ys[2]))


def _segment_mask(segments: str, height: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha mask (height, width) of a seven-segment glyph, optionally slanted."""
    s = _SUPERSAMPLE
    width = int(round(height * rng.uniform(0.55, 0.7)))
    slant = float(rng.uniform(0, 0.15)) if rng.random() < 0.5 else 0.0
    pad = int(np.ceil(slant * height))
    thick = height * s * rng.uniform(0.12, 0.17)
    polys = _segment_polygons(width * s, height * s, thick)
    mask = np.zeros((height * s, (width + pad) * s), np.float32)
    for name in segments:
        poly = polys[name].copy()
        poly[:, 0] += slant * (height * s - poly[:, 1])  # italic: the top leans right
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], float(rng.uniform(0.8, 1.0)))
    return cv2.resize(mask, (width + pad, height), interpolation=cv2.INTER_AREA)


def render_glyph(glyph: str, style: str, height: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha mask of ``glyph`` (a digit, or a letter of the style's distractor set).

    Args:
        glyph (str): One character with a bitmap in ``style``.
        style (str): ``'dots'`` (5 x 7 dot matrix) or ``'segments'`` (seven-segment).
        height (int): Glyph height in pixels.

    Returns:
        np.ndarray: float32 alpha in [0, 1] of shape (height, width).
    """
    if style == 'dots':
        table = {**_DOT_DIGITS, **_DOT_LETTERS}
        if glyph not in table:
            raise ValueError(f'no dot-matrix bitmap for {glyph!r}')
        return _dot_mask(table[glyph], height, rng)
    if style == 'segments':
        table = {**_SEG_DIGITS, **_SEG_LETTERS}
        if glyph not in table:
            raise ValueError(f'no seven-segment code for {glyph!r}')
        return _segment_mask(table[glyph], height, rng)
    raise ValueError(f'unknown glyph style {style!r}; choose from {GLYPH_STYLES}')


def render_fragment(height: int, rng: np.random.Generator) -> np.ndarray:
    """Alpha mask of an incomplete glyph: 2-3 segments, or a few dots of a random digit's bitmap."""
    if rng.random() < 0.5:
        segments = ''.join(rng.choice(list('abcdefg'), size=int(rng.integers(2, 4)), replace=False))
        return _segment_mask(segments, height, rng)
    rows = _DOT_DIGITS[str(int(rng.integers(10)))]
    num_dots = sum(row.count('#') for row in rows)
    keep = np.zeros(num_dots, bool)
    keep[rng.choice(num_dots, size=int(rng.integers(3, 6)), replace=False)] = True
    return _dot_mask(rows, height, rng, keep)


def _contrasting_ink(region: np.ndarray, rng: np.random.Generator,
                     min_contrast: float = 80.0) -> np.ndarray:
    """A tinted ink colour (BGR, float32) whose mean level differs from ``region``'s mean by at
    least ``min_contrast`` grey levels (dark ink on light ground, light ink on dark ground)."""
    ground = float(region.mean())
    if ground > 127:
        level = rng.uniform(0, max(1.0, ground - min_contrast))
    else:
        level = rng.uniform(min(254.0, ground + min_contrast), 255)
    tint = rng.uniform(-50, 50, size=3)
    ink = level + tint - tint.mean()  # a random hue at that level
    return np.clip(ink, 0, 255).astype(np.float32)


def _blend(img: np.ndarray, alpha: np.ndarray, ink: np.ndarray, x: int, y: int) -> None:
    """Blend ``ink`` through ``alpha`` (h, w) into ``img`` at (x, y), in place."""
    h, w = alpha.shape
    a = alpha[..., None]
    region = img[y:y + h, x:x + w].astype(np.float32)
    img[y:y + h, x:x + w] = np.clip(region * (1 - a) + ink * a, 0, 255).astype(np.uint8)


def _tight_box(alpha: np.ndarray, x: int, y: int) -> Box:
    ys, xs = np.nonzero(alpha > 0.1)
    return (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)


def _random_height(canvas: AltCanvasConfig, rng: np.random.Generator) -> int:
    return int(round(canvas.obj_size * rng.uniform(1 - canvas.size_jitter, 1 + canvas.size_jitter)))


Glyph = Tuple[np.ndarray, np.ndarray, int, int]  # alpha (h, w), ink (3, ), x, y


def layout_alt_glyphs(img: np.ndarray, labels: Sequence[int], canvas: AltCanvasConfig,
                      rng: np.random.Generator, num_distractors: Optional[int] = None,
                      num_fragments: Optional[int] = None) -> List[Glyph]:
    """Lay out the glyphs of a scene without blending them: digits, distractor letters, fragments.

    Each glyph gets a non-overlapping square slot, a random height, style and offset in its slot, and
    an ink colour contrasting with ``img`` there.

    Returns:
        list: (alpha (h, w), ink (3,), x, y) per glyph; the first ``len(labels)`` are the digits.
    """
    num_distractors = canvas.num_distractors if num_distractors is None else num_distractors
    num_fragments = canvas.num_fragments if num_fragments is None else num_fragments
    slot = canvas.max_glyph_height + 2  # square slots, sized for the widest glyph
    slots = _place_boxes(len(labels) + num_distractors + num_fragments, slot, img.shape[0], rng)
    glyphs = []
    for i, (x1, y1, _, _) in enumerate(slots):
        height = _random_height(canvas, rng)
        if i < len(labels) + num_distractors:
            style = GLYPH_STYLES[int(rng.integers(len(GLYPH_STYLES)))]
            letters = sorted(_DOT_LETTERS if style == 'dots' else _SEG_LETTERS)
            glyph = str(int(labels[i])) if i < len(labels) else letters[int(rng.integers(len(letters)))]
            alpha = render_glyph(glyph, style, height, rng)
        else:
            alpha = render_fragment(height, rng)
        h, w = alpha.shape
        ox, oy = (int(rng.integers(0, max(0, slot - d) + 1)) for d in (w, h))
        x, y = min(x1 + ox, img.shape[1] - w), min(y1 + oy, img.shape[0] - h)
        glyphs.append((alpha, _contrasting_ink(img[y:y + h, x:x + w], rng), x, y))
    return glyphs


def render_alt_glyphs(img: np.ndarray, labels: Sequence[int], canvas: AltCanvasConfig,
                      rng: np.random.Generator) -> List[Box]:
    """Draw one digit glyph per label, distractor letters and fragments onto ``img`` (in place).

    Returns:
        list: the digit glyphs' tight boxes, in label order.
    """
    glyphs = layout_alt_glyphs(img, labels, canvas, rng)
    for alpha, ink, x, y in glyphs:
        _blend(img, alpha, ink, x, y)
    return [_tight_box(alpha, x, y) for alpha, _, x, y in glyphs[:len(labels)]]


def render_alt_scene(labels: Sequence[int], canvas: AltCanvasConfig,
                     rng: np.random.Generator) -> Tuple[np.ndarray, List[Box]]:
    """A blotchy canvas with one digit glyph per label, letter glyphs and fragments.

    Returns:
        tuple: the uint8 BGR image (H, W, 3) and the digit glyphs' tight boxes, in label order.
    """
    img = render_alt_background(canvas.img_size, rng, canvas.num_blobs, canvas.noise_std)
    return img, render_alt_glyphs(img, labels, canvas, rng)


# ---------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------
def make_alt_classification(root: str, num_classes: int = 10, num_train: int = 400, num_val: int = 200,
                            canvas: Optional[AltCanvasConfig] = None, seed: int = 0) -> str:
    """Write the alt image-classification set under ``root/cls``. Returns that folder."""
    canvas = canvas or AltCanvasConfig()

    def render(label: int, rng: np.random.Generator) -> Tuple[np.ndarray, Box]:
        img, (box, ) = render_alt_scene([label], canvas, rng)
        return img, box

    # stream 10 (the cards generator uses 0..3): same seed, different images
    return write_classification_set(
        root, num_classes, num_train, num_val, seed, 10, render,
        dict(img_size=canvas.img_size, obj_size=canvas.obj_size, seed=seed, generator='alt'))


_DRIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def make_alt_video(root: str, num_classes: int = 10, num_train: int = 60, num_val: int = 30,
                   canvas: Optional[AltCanvasConfig] = None, num_frames: int = 16,
                   visible_frames: int = 3, fps: int = 8, seed: int = 0) -> str:
    """Write the alt video-recognition set under ``root/video``. Returns that folder.

    Each video pans over a blotchy scene with fragments and letter glyphs in a per-video direction
    ``(dx, dy)`` (one pixel per frame, ``meta['drift_per_frame']``): frame ``t`` shows the scene shifted
    so that content at ``(x, y)`` in frame ``t`` sits at ``(x + (t - s) dx, y + (t - s) dy)`` in frame
    ``s``. The digit glyph appears at a fixed place in ``visible_frames`` consecutive frames only.
    """
    canvas = canvas or AltCanvasConfig(img_size=112, obj_size=14)
    if not 1 <= visible_frames <= num_frames:
        raise ValueError(f'visible_frames must be in [1, num_frames={num_frames}], '
                         f'got {visible_frames}')
    size, margin = canvas.img_size, num_frames

    def make_clip(label: int, rng: np.random.Generator) -> Tuple[List[np.ndarray], dict]:
        scene = render_alt_background(size + 2 * margin, rng, canvas.num_blobs, canvas.noise_std)
        # clutter glyphs live in the scene and drift with it
        inner = scene[margin:margin + size, margin:margin + size]
        render_alt_glyphs(inner, [], canvas, rng)
        dx, dy = _DRIFTS[int(rng.integers(len(_DRIFTS)))]
        start = int(rng.integers(0, num_frames - visible_frames + 1))
        first = _pan(scene, start, num_frames, margin, size, dx, dy)
        ((alpha, ink, x, y), ) = layout_alt_glyphs(first, [label], canvas, rng, 0, 0)
        frames = []
        for t in range(num_frames):
            frame = _pan(scene, t, num_frames, margin, size, dx, dy)
            if start <= t < start + visible_frames:  # fixed in the frame, over the moving scene
                _blend(frame, alpha, ink, x, y)
            frames.append(frame)
        return frames, dict(box=list(_tight_box(alpha, x, y)), drift_per_frame=[dx, dy],
                            visible=list(range(start, start + visible_frames)))

    return write_video_set(root, num_classes, num_train, num_val, seed, 11, make_clip, size, fps,
                           dict(num_frames=num_frames, fps=fps, seed=seed, generator='alt'))


def _pan(scene: np.ndarray, t: int, num_frames: int, margin: int, size: int, dx: int,
         dy: int) -> np.ndarray:
    """Frame ``t`` of a pan over ``scene`` by (dx, dy) pixels per frame: a (size, size, 3) copy."""
    x0, y0 = margin + (t - num_frames // 2) * dx, margin + (t - num_frames // 2) * dy
    return scene[y0:y0 + size, x0:x0 + size].copy()


def make_alt_demo_data(root: str = 'data/demo_alt', tasks: Sequence[str] = ('cls', ),
                       num_classes: int = 10, num_train: Optional[int] = None,
                       num_val: Optional[int] = None, img_size: Optional[int] = None,
                       obj_size: Optional[int] = None, num_distractors: Optional[int] = None,
                       seed: int = 0, force: bool = False,
                       num_fragments: Optional[int] = None) -> Dict[str, str]:
    """Write the alt demo datasets that are missing (or all, with ``force``).

    Args:
        root (str): Output folder. Defaults to ``'data/demo_alt'``.
        tasks (Sequence[str]): Any of ``'cls'``, ``'video'``.
        num_classes (int): Number of digit classes, 2..10.
        num_train (int, optional): Training samples per task (400 cls / 60 video if None).
        num_val (int, optional): Validation samples per task (200 cls / 30 video if None).
        img_size (int, optional): Canvas side (128 cls / 112 video if None).
        obj_size (int, optional): Mean glyph height (1/8 of the canvas, at least 12, if None).
        num_distractors (int, optional): Letter glyphs per image (2 if None); fragments and blobs
            are always drawn.
        seed (int): Seed; the same arguments always give the same files.
        force (bool): Rewrite sets that already exist.
        num_fragments (int, optional): Glyph fragments per image (6 if None, sized for the default
            canvases; e.g. 2 on 64 px video frames, where 6 do not fit).

    Returns:
        dict: task name -> folder.
    """
    unknown = set(tasks) - set(ALT_TASKS)
    if unknown:
        raise ValueError(f'unknown alt demo task(s) {sorted(unknown)}; choose from {ALT_TASKS}')
    if num_distractors is not None and num_distractors < 0:
        raise ValueError(f'num_distractors must be >= 0, got {num_distractors}')
    if num_fragments is not None and num_fragments < 0:
        raise ValueError(f'num_fragments must be >= 0, got {num_fragments}')
    writers = dict(cls=(make_alt_classification, 128, 400, 200),
                   video=(make_alt_video, 112, 60, 30))
    folders = {}
    for task in tasks:
        writer, default_size, default_train, default_val = writers[task]
        folder = osp.join(root, task)
        size = img_size or default_size
        args = dict(generator='alt', num_classes=num_classes, num_train=num_train or default_train,
                    num_val=num_val or default_val, seed=seed, img_size=size,
                    obj_size=obj_size or max(12, size // 8),
                    num_distractors=2 if num_distractors is None else num_distractors)
        canvas = AltCanvasConfig(img_size=size, obj_size=args['obj_size'],
                                 num_distractors=args['num_distractors'])
        if num_fragments is not None:  # (the stamps of default sets stay as they were)
            args['num_fragments'] = num_fragments
            canvas = replace(canvas, num_fragments=num_fragments)
        write_stamped(folder, args, force,
                      partial(writer, root, num_classes=num_classes, num_train=args['num_train'],
                              num_val=args['num_val'], canvas=canvas, seed=seed))
        folders[task] = folder
    return folders
