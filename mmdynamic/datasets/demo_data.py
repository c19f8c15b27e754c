# Copyright (c) mmdynamic contributors. All rights reserved.
"""Small, deterministic, real-format datasets for demos and tests.

Every image holds small class-defining objects (a digit printed on a coloured card) at random places on a
larger cluttered canvas, with distractor cards that carry letters instead of digits. At 1/4 scale a digit
is a few pixels high and hard to read; its full-resolution patch is easy. This is the spatial redundancy
that glance-and-focus models exploit. In the videos the object is visible in only a few frames (temporal
redundancy). Formats are the ones the frameworks read natively:

- ``cls/``: mmpretrain ``CustomDataset`` folder format (``{train,val}/<class>/<name>.png``), plus
  ``{train,val}_boxes.json`` with each image's object box (for oracle crops and visualisation).
- ``video/``: mp4 files (``mp4v``) that decord reads, with mmaction2 ``VideoDataset`` lists
  (``{train,val}_list.txt``: ``<file> <label>``) and ``{train,val}_meta.json`` (box, visible frames).
- ``det/``: COCO format (``{train,val}/*.jpg`` and ``annotations/instances_{train,val}.json``).
- ``seg/``: VOC format (``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` with class indices,
  ``ImageSets/Segmentation/{train,val}.txt``); label 0 is background, digit ``k`` is label ``k + 1``.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

Box = Tuple[int, int, int, int]  # x1, y1, x2, y2 (x2, y2 exclusive)

TASKS = ('cls', 'video', 'det', 'seg')
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX)
# Letters that do not resemble digits: the glyphs of the distractor cards.
_DISTRACTOR_GLYPHS = 'AEFHKMNPRTUVWXY'
SEG_CLASSES_PREFIX = ('background', )


def class_names(num_classes: int) -> Tuple[str, ...]:
    """Names of the demo classes: the digits ``'0'`` .. ``str(num_classes - 1)``."""
    if not 2 <= num_classes <= 10:
        raise ValueError(f'num_classes must be in [2, 10] (one digit per class), got {num_classes}')
    return tuple(str(i) for i in range(num_classes))


@dataclass
class CanvasConfig:
    """Geometry of a demo image.

    Args:
        img_size (int): Side of the square canvas in pixels.
        obj_size (int): Side of an object card in pixels. The default, about 1/9 of the canvas,
            makes a digit a few pixels high at 1/4 scale (hard to read) and easy to read in its
            full-resolution patch.
        num_distractors (int): Letter cards added as clutter.
        num_strokes (int): Random lines and ellipses drawn as clutter.
    """
    img_size: int = 128
    obj_size: int = 14
    num_distractors: int = 2
    num_strokes: int = 12

    def __post_init__(self) -> None:
        if self.obj_size < 8:
            raise ValueError(f'obj_size must be at least 8 pixels, got {self.obj_size}')
        if self.img_size < 2 * self.obj_size:
            raise ValueError(f'img_size ({self.img_size}) must be at least twice obj_size '
                             f'({self.obj_size}) to leave room for clutter')


# ---------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------
def _random_color(rng: np.random.Generator, low: int = 0, high: int = 256) -> Tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def render_background(size: int, rng: np.random.Generator, num_strokes: int) -> np.ndarray:
    """A cluttered canvas: a colour gradient, noise, random lines and ellipses.

    Returns:
        np.ndarray: uint8 BGR image of shape (size, size, 3).
    """
    c0 = np.array(_random_color(rng, 40, 200), dtype=np.float32)
    c1 = np.array(_random_color(rng, 40, 200), dtype=np.float32)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    ramp = (ramp[:, None] + ramp[None, :]) / 2 if rng.random() < 0.5 else ramp[:, None] * np.ones(
        (1, size), np.float32)
    img = c0 + (c1 - c0) * ramp[..., None]
    img += rng.normal(0, 12, size=img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(num_strokes):
        color = _random_color(rng)
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p1 = tuple(int(v) for v in rng.integers(0, size, 2))
            p2 = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(img, p1, p2, color, thickness, cv2.LINE_AA)
        else:
            center = tuple(int(v) for v in rng.integers(0, size, 2))
            axes = tuple(int(v) for v in rng.integers(3, max(4, size // 6), 2))
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, thickness,
                        cv2.LINE_AA)
    return img


def render_card(glyph: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` card with ``glyph`` printed in a contrasting colour.

    Returns:
        np.ndarray: uint8 BGR image of shape (size, size, 3).
    """
    bright = rng.random() < 0.5
    card_color = _random_color(rng, 170, 256) if bright else _random_color(rng, 0, 90)
    ink_color = _random_color(rng, 0, 70) if bright else _random_color(rng, 190, 256)
    card = np.empty((size, size, 3), np.uint8)
    card[:] = card_color
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    thickness = max(1, int(round(size / 12 * rng.uniform(0.8, 1.2))))
    (tw, th), _ = cv2.getTextSize(glyph, font, 1.0, thickness)
    scale = 0.75 * size / max(tw, th)
    (tw, th), base = cv2.getTextSize(glyph, font, scale, thickness)
    jitter = rng.integers(-max(1, size // 12), max(1, size // 12) + 1, size=2)
    org = (int((size - tw) / 2 + jitter[0]), int((size + th) / 2 + jitter[1]))
    cv2.putText(card, glyph, org, font, scale, ink_color, thickness, cv2.LINE_AA)
    return card


def _place_boxes(num: int, obj_size: int, img_size: int, rng: np.random.Generator,
                 sizes: Optional[Sequence[int]] = None, max_tries: int = 200) -> List[Box]:
    """Non-overlapping boxes (x1, y1, x2, y2) inside the canvas."""
    boxes: List[Box] = []
    for i in range(num):
        side = int(sizes[i]) if sizes is not None else obj_size
        for _ in range(max_tries):
            x1, y1 = (int(v) for v in rng.integers(0, img_size - side + 1, size=2))
            box = (x1, y1, x1 + side, y1 + side)
            if all(box[0] >= b[2] or box[2] <= b[0] or box[1] >= b[3] or box[3] <= b[1]
                   for b in boxes):
                boxes.append(box)
                break
        else:
            raise RuntimeError(f'could not place {num} objects of {side}px on a {img_size}px canvas')
    return boxes


def render_scene(labels: Sequence[int], canvas: CanvasConfig, rng: np.random.Generator,
                 sizes: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, List[Box]]:
    """A cluttered canvas with one digit card per label and ``canvas.num_distractors`` letter cards.

    Returns:
        tuple: the uint8 BGR image (H, W, 3) and the digit cards' boxes, in label order.
    """
    img = render_background(canvas.img_size, rng, canvas.num_strokes)
    num = len(labels) + canvas.num_distractors
    all_sizes = None if sizes is None else list(sizes) + [canvas.obj_size] * canvas.num_distractors
    boxes = _place_boxes(num, canvas.obj_size, canvas.img_size, rng, all_sizes)
    glyphs = [str(label) for label in labels] + [
        _DISTRACTOR_GLYPHS[int(rng.integers(len(_DISTRACTOR_GLYPHS)))]
        for _ in range(canvas.num_distractors)
    ]
    for glyph, (x1, y1, x2, y2) in zip(glyphs, boxes):
        img[y1:y2, x1:x2] = render_card(glyph, x2 - x1, rng)
    return img, boxes[:len(labels)]


# ---------------------------------------------------------------------------------------------------
# Writers, one per task
# ---------------------------------------------------------------------------------------------------
def _split_sizes(num_train: int, num_val: int) -> Dict[str, int]:
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be positive, got {num_train}, {num_val}')
    return {'train': num_train, 'val': num_val}


def _default_size_range(canvas: CanvasConfig) -> Tuple[int, int]:
    return max(8, canvas.obj_size * 2 // 3), canvas.obj_size * 4 // 3


def _balanced_labels(count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.arange(count) % num_classes
    rng.shuffle(labels)
    return labels


def _write_json(path: str, obj) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def write_classification_set(root: str, num_classes: int, num_train: int, num_val: int, seed: int,
                             stream: int, render: Callable[[int, np.random.Generator],
                                                           Tuple[np.ndarray, Box]],
                             meta: dict) -> str:
    """Write an mmpretrain ``CustomDataset`` tree under ``root/cls``: ``{split}/<class>/*.png``,
    ``{split}_boxes.json`` (each image's object box) and ``meta.json``.

    Args:
        root (str): The dataset root.
        num_classes (int): Number of classes (balanced labels per split).
        num_train (int): Training images. num_val (int): Validation images.
        seed (int): Seed; split ``k`` draws from ``default_rng([seed, stream, k])``.
        stream (int): The generator's random stream (different generators: different images).
        render (Callable): (label, rng) -> the uint8 BGR image (H, W, 3) and the object's box.
        meta (dict): Written to ``meta.json`` with the class names.

    Returns:
        str: ``root/cls``.
    """
    names = class_names(num_classes)
    out = osp.join(root, 'cls')
    for split_idx, (split, count) in enumerate(_split_sizes(num_train, num_val).items()):
        rng = np.random.default_rng([seed, stream, split_idx])
        boxes = {}
        for i, label in enumerate(_balanced_labels(count, num_classes, rng)):
            img, box = render(int(label), rng)
            rel = f'{names[label]}/{split}_{i:05d}.png'
            os.makedirs(osp.join(out, split, names[label]), exist_ok=True)
            cv2.imwrite(osp.join(out, split, rel), img)
            boxes[rel] = list(box)
        _write_json(osp.join(out, f'{split}_boxes.json'), boxes)
    _write_json(osp.join(out, 'meta.json'), dict(classes=names, **meta))
    return out


def write_video_set(root: str, num_classes: int, num_train: int, num_val: int, seed: int,
                    stream: int, make_clip: Callable[[int, np.random.Generator],
                                                     Tuple[Iterable[np.ndarray], dict]],
                    size: int, fps: int, meta: dict) -> str:
    """Write an mmaction2 ``VideoDataset`` under ``root/video``: ``{split}/*.mp4`` (``mp4v``),
    ``{split}_list.txt``, ``{split}_meta.json`` (each video's clip info) and ``meta.json``.

    Args:
        root (str): The dataset root.
        num_classes (int): Number of classes (balanced labels per split).
        num_train (int): Training videos. num_val (int): Validation videos.
        seed (int): Seed; split ``k`` draws from ``default_rng([seed, stream, k])``.
        stream (int): The generator's random stream.
        make_clip (Callable): (label, rng) -> the frames (each (size, size, 3) uint8 BGR; made
            lazily is fine, but every random draw must happen in the call) and the clip's info.
        size (int): Frame side. fps (int): Frames per second of the files.
        meta (dict): Written to ``meta.json`` with the class names.

    Returns:
        str: ``root/video``.
    """
    out = osp.join(root, 'video')
    for split_idx, (split, count) in enumerate(_split_sizes(num_train, num_val).items()):
        rng = np.random.default_rng([seed, stream, split_idx])
        os.makedirs(osp.join(out, split), exist_ok=True)
        lines, infos = [], {}
        for i, label in enumerate(_balanced_labels(count, num_classes, rng)):
            frames, info = make_clip(int(label), rng)
            rel = f'{split}/{split}_{i:05d}.mp4'
            writer = cv2.VideoWriter(osp.join(out, rel), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                     (size, size))
            if not writer.isOpened():
                raise RuntimeError('OpenCV cannot write mp4v videos on this machine')
            for frame in frames:
                writer.write(frame)
            writer.release()
            lines.append(f'{rel} {int(label)}')
            infos[rel] = dict(label=int(label), **info)
        with open(osp.join(out, f'{split}_list.txt'), 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')
        _write_json(osp.join(out, f'{split}_meta.json'), infos)
    _write_json(osp.join(out, 'meta.json'), dict(classes=class_names(num_classes), **meta))
    return out


def make_classification(root: str, num_classes: int = 10, num_train: int = 200, num_val: int = 100,
                        canvas: Optional[CanvasConfig] = None, seed: int = 0) -> str:
    """Write the image-classification set under ``root/cls``. Returns that folder."""
    canvas = canvas or CanvasConfig()

    def render(label: int, rng: np.random.Generator) -> Tuple[np.ndarray, Box]:
        img, (box, ) = render_scene([label], canvas, rng)
        return img, box

    return write_classification_set(
        root, num_classes, num_train, num_val, seed, 0, render,
        dict(img_size=canvas.img_size, obj_size=canvas.obj_size, seed=seed))


def make_video(root: str, num_classes: int = 10, num_train: int = 40, num_val: int = 20,
               canvas: Optional[CanvasConfig] = None, num_frames: int = 16, visible_frames: int = 3,
               fps: int = 8, seed: int = 0) -> str:
    """Write the video-recognition set under ``root/video``. Returns that folder.

    Each video shows a cluttered scene that drifts by one pixel per frame (frame ``t`` shows
    ``background[t:t + S, t:t + S]``); the digit card appears in only ``visible_frames`` consecutive
    frames at a random time and place.
    """
    canvas = canvas or CanvasConfig()
    if not 1 <= visible_frames <= num_frames:
        raise ValueError(f'visible_frames must be in [1, num_frames={num_frames}], '
                         f'got {visible_frames}')
    size = canvas.img_size

    def make_clip(label: int, rng: np.random.Generator) -> Tuple[List[np.ndarray], dict]:
        background = render_background(size + num_frames, rng, canvas.num_strokes)
        (box, ) = _place_boxes(1, canvas.obj_size, size, rng)
        card = render_card(str(label), canvas.obj_size, rng)
        start = int(rng.integers(0, num_frames - visible_frames + 1))
        frames = []
        for t in range(num_frames):
            frame = background[t:t + size, t:t + size].copy()
            if start <= t < start + visible_frames:
                frame[box[1]:box[3], box[0]:box[2]] = card
            frames.append(frame)
        return frames, dict(box=list(box), drift_per_frame=[1, 1],
                            visible=list(range(start, start + visible_frames)))

    return write_video_set(root, num_classes, num_train, num_val, seed, 1, make_clip, size, fps,
                           dict(num_frames=num_frames, fps=fps, seed=seed))


def make_detection(root: str, num_classes: int = 10, num_train: int = 40, num_val: int = 20,
                   canvas: Optional[CanvasConfig] = None, max_objects: int = 3,
                   size_range: Optional[Tuple[int, int]] = None, seed: int = 0) -> str:
    """Write the COCO-format detection set under ``root/det``. Returns that folder.

    Object sides are drawn from ``size_range`` (default: 2/3 to 4/3 of ``canvas.obj_size``).
    """
    canvas = canvas or CanvasConfig(img_size=160, obj_size=30, num_distractors=1)
    size_range = size_range or _default_size_range(canvas)
    names = class_names(num_classes)
    out = osp.join(root, 'det')
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(names)]
    for split_idx, (split, count) in enumerate(_split_sizes(num_train, num_val).items()):
        rng = np.random.default_rng([seed, 2, split_idx])
        os.makedirs(osp.join(out, split), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            labels = rng.integers(0, num_classes, size=int(rng.integers(1, max_objects + 1)))
            sizes = rng.integers(size_range[0], size_range[1] + 1, size=len(labels))
            img, boxes = render_scene([int(v) for v in labels], canvas, rng, sizes)
            name = f'{split}_{i:05d}.jpg'
            cv2.imwrite(osp.join(out, split, name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=i, file_name=name, height=img.shape[0], width=img.shape[1]))
            for label, (x1, y1, x2, y2) in zip(labels, boxes):
                annotations.append(
                    dict(id=len(annotations) + 1, image_id=i, category_id=int(label) + 1,
                         bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=0))
        _write_json(osp.join(out, 'annotations', f'instances_{split}.json'),
                    dict(images=images, annotations=annotations, categories=categories))
    return out


def make_segmentation(root: str, num_classes: int = 10, num_train: int = 40, num_val: int = 20,
                      canvas: Optional[CanvasConfig] = None, max_objects: int = 3,
                      size_range: Optional[Tuple[int, int]] = None, seed: int = 0) -> str:
    """Write the VOC-format segmentation set under ``root/seg``. Returns that folder.

    The label map marks each digit card with ``digit + 1`` and everything else with 0. Object sides are
    drawn from ``size_range`` (default: 2/3 to 4/3 of ``canvas.obj_size``).
    """
    canvas = canvas or CanvasConfig(img_size=128, obj_size=24, num_distractors=1)
    size_range = size_range or _default_size_range(canvas)
    out = osp.join(root, 'seg')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(out, sub), exist_ok=True)
    for split_idx, (split, count) in enumerate(_split_sizes(num_train, num_val).items()):
        rng = np.random.default_rng([seed, 3, split_idx])
        stems = []
        for i in range(count):
            labels = rng.integers(0, num_classes, size=int(rng.integers(1, max_objects + 1)))
            sizes = rng.integers(size_range[0], size_range[1] + 1, size=len(labels))
            img, boxes = render_scene([int(v) for v in labels], canvas, rng, sizes)
            seg = np.zeros(img.shape[:2], np.uint8)
            for label, (x1, y1, x2, y2) in zip(labels, boxes):
                seg[y1:y2, x1:x2] = int(label) + 1
            stem = f'{split}_{i:05d}'
            cv2.imwrite(osp.join(out, 'JPEGImages', stem + '.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(out, 'SegmentationClass', stem + '.png'), seg)
            stems.append(stem)
        with open(osp.join(out, 'ImageSets/Segmentation', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(stems) + '\n')
    _write_json(osp.join(out, 'meta.json'),
                dict(classes=SEG_CLASSES_PREFIX + class_names(num_classes), seed=seed))
    return out


class DemoBoxes:
    """The object box of a classification demo image, from the ``<split>_boxes.json`` that the
    generator writes beside the split folder (read once per split).

    Call it with an image path ``<root>/<split>/<class>/<name>.png``; returns [x1, y1, x2, y2].
    """

    def __init__(self) -> None:
        self._tables: Dict[str, Dict[str, List[int]]] = {}

    def __call__(self, img_path: str) -> List[int]:
        split_dir = osp.dirname(osp.dirname(img_path))
        if split_dir not in self._tables:
            path = osp.join(osp.dirname(split_dir), f'{osp.basename(split_dir)}_boxes.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'no object boxes for {img_path}: {path} is missing')
            with open(path, encoding='utf-8') as f:
                self._tables[split_dir] = json.load(f)
        return self._tables[split_dir][osp.relpath(img_path, split_dir).replace(osp.sep, '/')]


def demo_batches(model, loader: Iterable) -> Iterable[Tuple]:
    """Preprocessed batches of a classification demo set with their labels and object boxes.

    Args:
        model: A model with a ``data_preprocessor``.
        loader (Iterable): The test dataloader of a demo classification set (square images, the
            ``<split>_boxes.json`` beside the split folder).

    Yields:
        tuple: inputs (B, 3, S, S), labels (B, ) and boxes (B, 4) (x1, y1, x2, y2; x2 / y2 exclusive).
    """
    import torch
    lookup = DemoBoxes()
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        if inputs.shape[-1] != inputs.shape[-2]:
            raise ValueError(f'square images expected, got {tuple(inputs.shape[-2:])}')
        yield (inputs, torch.cat([s.gt_label for s in samples]),
               torch.tensor([lookup(s.img_path) for s in samples], dtype=torch.float))


def seg_palette(num_classes: int) -> List[List[int]]:
    """A fixed palette for ``num_classes`` digit classes plus background (RGB)."""
    rng = np.random.default_rng(1234)
    return [[0, 0, 0]] + [list(map(int, rng.integers(40, 256, 3))) for _ in range(num_classes)]


def write_stamped(folder: str, args: dict, force: bool, write: Callable[[], None]) -> None:
    """Run ``write`` unless ``folder`` holds a set stamped with the same ``args``.

    A set written with other arguments (or any set, with ``force``) is removed first, so no stale
    file survives; the stamp (``folder/.complete``, the arguments as JSON) is written last, so an
    interrupted run is redone.
    """
    stamp = osp.join(folder, '.complete')
    if not force and osp.isfile(stamp):
        with open(stamp, encoding='utf-8') as f:
            if json.load(f) == args:
                return
    if osp.isdir(folder):
        shutil.rmtree(folder)
    write()
    _write_json(stamp, args)


def make_demo_data(root: str = 'data/demo', tasks: Sequence[str] = TASKS, num_classes: int = 10,
                   num_train: Optional[int] = None, num_val: Optional[int] = None,
                   img_size: Optional[int] = None, obj_size: Optional[int] = None,
                   num_distractors: Optional[int] = None, seed: int = 0, force: bool = False
                   ) -> Dict[str, str]:
    """Write the demo datasets that are missing (or all, with ``force``).

    Args:
        root (str): Output folder. Defaults to ``'data/demo'``.
        tasks (Sequence[str]): Any of ``'cls'``, ``'video'``, ``'det'``, ``'seg'``.
        num_classes (int): Number of digit classes, 2..10.
        num_train (int, optional): Training samples per task (task default if None).
        num_val (int, optional): Validation samples per task (task default if None).
        img_size (int, optional): Canvas side (task default if None); objects scale with it.
        obj_size (int, optional): Object card side in pixels (task default if None: 7/64 of the
            canvas for cls/video, 3/16 for det/seg, at least 12).
        num_distractors (int, optional): Letter cards per image (task default if None: 2 for
            cls/video, 1 for det/seg). 0 leaves the digit card as the only card: an easier set
            on which a glance can find the object but not read it.
        seed (int): Seed; the same arguments always give the same files.
        force (bool): Rewrite sets that already exist.

    Returns:
        dict: task name -> folder.
    """
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f'unknown demo task(s) {sorted(unknown)}; choose from {TASKS}')
    writers = dict(cls=(make_classification, 128, 400, 200), video=(make_video, 112, 60, 30),
                   det=(make_detection, 160, 200, 50), seg=(make_segmentation, 128, 100, 30))
    folders = {}
    for task in tasks:
        writer, default_size, default_train, default_val = writers[task]
        folder = osp.join(root, task)
        args = dict(num_classes=num_classes, num_train=num_train or default_train,
                    num_val=num_val or default_val, seed=seed, img_size=img_size or default_size)
        # non-default geometry only enters the stamp when given (old stamps stay valid)
        if obj_size is not None:
            args['obj_size'] = obj_size
        if num_distractors is not None:
            args['num_distractors'] = num_distractors
        size = args['img_size']
        # small glyphs for the glance-and-focus tasks; larger, varied objects for det/seg demos
        glance_task = task in ('cls', 'video')
        fraction = 7 / 64 if glance_task else 3 / 16
        if num_distractors is not None and num_distractors < 0:
            raise ValueError(f'num_distractors must be >= 0, got {num_distractors}')
        canvas = CanvasConfig(
            img_size=size, obj_size=obj_size or max(12, int(size * fraction)),
            num_distractors=(2 if glance_task else 1) if num_distractors is None else num_distractors)
        write_stamped(folder, args, force,
                      partial(writer, root, num_classes=num_classes, num_train=args['num_train'],
                              num_val=args['num_val'], canvas=canvas, seed=seed))
        folders[task] = folder
    return folders
