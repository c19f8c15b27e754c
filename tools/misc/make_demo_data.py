# Copyright (c) mmdynamic contributors. All rights reserved.
"""Write the small synthetic demo datasets (see :mod:`mmdynamic.datasets.demo_data`).

Example:
    python tools/misc/make_demo_data.py --root data/demo --tasks cls det --num-train 100 --seed 1
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmdynamic.datasets.demo_data import TASKS, make_demo_data  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the mmdynamic demo datasets')
    parser.add_argument('--root', default='data/demo', help='output folder')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS)
    parser.add_argument('--num-classes', type=int, default=10)
    parser.add_argument('--num-train', type=int, help='training samples per task (task default)')
    parser.add_argument('--num-val', type=int, help='validation samples per task (task default)')
    parser.add_argument('--img-size', type=int, help='canvas side in pixels (task default)')
    parser.add_argument('--obj-size', type=int, help='object card side in pixels (task default)')
    parser.add_argument('--num-distractors', type=int,
                        help='letter cards per image (task default: 2 for cls/video, 1 for det/seg)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='rewrite existing sets')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    folders = make_demo_data(args.root, args.tasks, num_classes=args.num_classes,
                             num_train=args.num_train, num_val=args.num_val,
                             img_size=args.img_size, obj_size=args.obj_size,
                             num_distractors=args.num_distractors, seed=args.seed,
                             force=args.force)
    for task, folder in folders.items():
        print(f'{task:>5}: {folder}')


if __name__ == '__main__':
    main()
