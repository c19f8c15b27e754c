# Copyright (c) mmdynamic contributors. All rights reserved.
"""Annotation files of ImageNet100 (the first 100 ImageNet classes in sorted WNID order, MGNet §2).

Reads an ImageNet folder (``train/<wnid>/*.JPEG``; ``val/<wnid>/*.JPEG`` or a flat ``val/`` with
mmpretrain's ``meta/val.txt``) and writes, for mmpretrain's ``CustomDataset``:

- ``<out>/classes.txt``: the WNIDs, one per line (label = line index);
- ``<out>/train.txt`` and ``<out>/val.txt``: ``<path relative to the split folder> <label>``.

The labels are the positions in sorted WNID order, i.e. ILSVRC-2012 class indices 0..99 for the default
selection (n01440764 ... n01855672). ``--class-list`` selects other classes (one WNID per line).

Example:
    python tools/dataset_converters/make_imagenet100.py data/imagenet --out data/imagenet/meta/in100
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build ImageNet100 annotation files')
    parser.add_argument('root', help='ImageNet folder with train/ and val/')
    parser.add_argument('--out', help='output folder (default: <root>/meta/imagenet100)')
    parser.add_argument('--num-classes', type=int, default=100,
                        help='take the first N sorted WNIDs (default 100)')
    parser.add_argument('--class-list', help='file with the WNIDs to use, one per line')
    parser.add_argument('--val-ann', help="flat val/ folder: mmpretrain's meta/val.txt "
                        '(<file> <1000-class label>); default <root>/meta/val.txt if val/ has no '
                        'class folders')
    return parser.parse_args(argv)


def is_wnid(name: str) -> bool:
    return len(name) == 9 and name[0] == 'n' and name[1:].isdigit()


def list_images(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))


def select_classes(train_dir: str, num_classes: int, class_list: Optional[str]) -> List[str]:
    all_wnids = sorted(d for d in os.listdir(train_dir)
                       if is_wnid(d) and osp.isdir(osp.join(train_dir, d)))
    if class_list:
        with open(class_list) as f:
            wnids = [line.strip() for line in f if line.strip()]
        missing = [w for w in wnids if w not in all_wnids]
        if missing:
            raise ValueError(f'{len(missing)} classes of {class_list} are not in {train_dir}: '
                             f'{missing[:5]}')
        return sorted(wnids)
    if num_classes < 1 or num_classes > len(all_wnids):
        raise ValueError(f'--num-classes {num_classes}: {train_dir} has {len(all_wnids)} class '
                         'folders')
    return all_wnids[:num_classes]


def split_from_folders(split_dir: str, wnids: Sequence[str]) -> List[Tuple[str, int]]:
    entries = []
    for label, wnid in enumerate(wnids):
        folder = osp.join(split_dir, wnid)
        if not osp.isdir(folder):
            raise FileNotFoundError(f'class folder missing: {folder}')
        images = list_images(folder)
        if not images:
            raise ValueError(f'no images in {folder}')
        entries += [(f'{wnid}/{name}', label) for name in images]
    return entries


def val_from_annotation(ann_file: str, all_wnids: Sequence[str],
                        wnids: Sequence[str]) -> List[Tuple[str, int]]:
    """Flat val folder: keep the lines whose 1000-class label is one of ``wnids``."""
    index: Dict[str, int] = {w: i for i, w in enumerate(wnids)}
    entries = []
    with open(ann_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue
            wnid = all_wnids[int(parts[1])]
            if wnid in index:
                entries.append((parts[0], index[wnid]))
    return entries


def write_list(path: str, entries: Sequence[Tuple[str, int]]) -> None:
    with open(path, 'w') as f:
        f.writelines(f'{name} {label}\n' for name, label in entries)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    train_dir, val_dir = osp.join(args.root, 'train'), osp.join(args.root, 'val')
    for folder in (train_dir, val_dir):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'not an ImageNet folder: {folder} is missing')
    wnids = select_classes(train_dir, args.num_classes, args.class_list)
    train = split_from_folders(train_dir, wnids)
    if all(osp.isdir(osp.join(val_dir, w)) for w in wnids):
        val = split_from_folders(val_dir, wnids)
    else:
        ann = args.val_ann or osp.join(args.root, 'meta', 'val.txt')
        if not osp.isfile(ann):
            raise FileNotFoundError(f'val/ has no class folders and no annotation file {ann} '
                                    '(pass --val-ann)')
        all_wnids = sorted(d for d in os.listdir(train_dir) if is_wnid(d))
        if len(all_wnids) != 1000:
            raise ValueError(f'a flat val/ needs all 1000 train class folders to map labels; '
                             f'found {len(all_wnids)}')
        val = val_from_annotation(ann, all_wnids, wnids)
    out = args.out or osp.join(args.root, 'meta', 'imagenet100')
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'classes.txt'), 'w') as f:
        f.writelines(w + '\n' for w in wnids)
    write_list(osp.join(out, 'train.txt'), train)
    write_list(osp.join(out, 'val.txt'), val)
    print(f'{len(wnids)} classes ({wnids[0]} .. {wnids[-1]}), {len(train)} train and {len(val)} '
          f'val images -> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
