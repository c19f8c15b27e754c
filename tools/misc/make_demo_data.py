# Copyright (c) mmdynamic contributors. All rights reserved.
"""Write the small synthetic demo datasets.

Two generators: ``cards`` (:mod:`mmdynamic.datasets.demo_data`: font digits on cards among letter cards;
tasks cls, video, det, seg) and ``alt`` (:mod:`mmdynamic.datasets.demo_data_alt`: dot-matrix and
seven-segment digits on blotchy backgrounds among letter glyphs and glyph fragments; tasks cls, video).

Example:
    python tools/misc/make_demo_data.py --root data/demo --tasks cls det --num-train 100 --seed 1
    python tools/misc/make_demo_data.py --generator alt --root data/demo_alt --tasks cls video
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmdynamic.datasets.demo_data import TASKS, make_demo_data  # noqa: E402
from mmdynamic.datasets.demo_data_alt import ALT_TASKS, make_alt_demo_data  # noqa: E402

GENERATORS = dict(cards=(make_demo_data, TASKS), alt=(make_alt_demo_data, ALT_TASKS))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the mmdynamic demo datasets')
    parser.add_argument('--generator', default='cards', choices=sorted(GENERATORS),
                        help='cards: font digits on cards (all tasks); alt: dot-matrix / '
                        'seven-segment glyphs on blotchy ground (cls, video)')
    parser.add_argument('--root', default=None,
                        help='output folder (default: data/demo, data/demo_alt for --generator alt)')
    parser.add_argument('--tasks', nargs='+', default=None, choices=TASKS,
                        help='tasks to write (default: all the generator has)')
    parser.add_argument('--num-classes', type=int, default=10)
    parser.add_argument('--num-train', type=int, help='training samples per task (task default)')
    parser.add_argument('--num-val', type=int, help='validation samples per task (task default)')
    parser.add_argument('--img-size', type=int, help='canvas side in pixels (task default)')
    parser.add_argument('--obj-size', type=int, help='object card side in pixels (task default)')
    parser.add_argument('--num-distractors', type=int,
                        help='letter cards (cards) / letter glyphs (alt) per image (task default: 2 '
                        'for cls/video, 1 for det/seg)')
    parser.add_argument('--num-fragments', type=int,
                        help='alt only: glyph fragments per image (default 6, for the default '
                        'canvases; 64 px video frames fit 2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='rewrite existing sets')
    args = parser.parse_args(argv)
    _, tasks = GENERATORS[args.generator]
    if args.tasks is None:
        args.tasks = list(tasks)
    bad = sorted(set(args.tasks) - set(tasks))
    if bad:
        parser.error(f'--generator {args.generator} has no task(s) {bad}; it writes {list(tasks)}')
    if args.num_fragments is not None and args.generator != 'alt':
        parser.error('--num-fragments is an option of --generator alt')
    if args.root is None:
        args.root = 'data/demo_alt' if args.generator == 'alt' else 'data/demo'
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    make, _ = GENERATORS[args.generator]
    extra = {} if args.num_fragments is None else dict(num_fragments=args.num_fragments)
    folders = make(args.root, args.tasks, num_classes=args.num_classes, num_train=args.num_train,
                   num_val=args.num_val, img_size=args.img_size, obj_size=args.obj_size,
                   num_distractors=args.num_distractors, seed=args.seed, force=args.force, **extra)
    for task, folder in folders.items():
        print(f'{task:>5}: {folder}')


if __name__ == '__main__':
    main()
