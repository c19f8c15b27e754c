# Copyright (c) mmdynamic contributors. All rights reserved.
"""The README's demo job: demo detection data (if missing) -> tools/train.py -> tools/test.py -> where
things are.

The default config is Faster R-CNN with a SAR-ResNet-50 backbone on the demo detection set (any demo
detection config works; a ``--data-root`` other than data/demo is passed on to the config).

Example:
    python tools/misc/demo.py                      # the default demo config
    python tools/misc/demo.py --config CONFIG --work-dir work_dirs/my_demo
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

DEFAULT_CONFIG = 'configs/sar/sar-r50-g2s2a2b1-w16_faster-rcnn_fpn_1xb4-8e_demo-det.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run the mmdynamic demo end to end')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/demo',
                        help='where the demo data is (written there if missing)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to tools/train.py and tools/test.py')
    return parser.parse_args()


def run(cmd) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> None:
    args = parse_args()
    from mmdynamic.datasets import make_demo_data
    start = time.time()
    data_root = osp.join(ROOT, args.data_root)
    if osp.isfile(osp.join(data_root, 'det', '.complete')):
        folders = dict(det=osp.join(data_root, 'det'))  # a demo detection set that is there is used
    else:
        folders = make_demo_data(data_root, tasks=('det', ))  # only what the demo trains on
    print('demo data: ' + ', '.join(f'{k}={v}' for k, v in folders.items()), flush=True)
    work_dir = osp.join(ROOT, args.work_dir)
    options = list(args.cfg_options)
    if osp.abspath(data_root) != osp.join(ROOT, 'data', 'demo'):
        det = osp.join(data_root, 'det') + '/'
        ann = det + 'annotations/instances_val.json'
        options += [f'{split}_dataloader.dataset.data_root={det}' for split in ('train', 'val', 'test')]
        options += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    extra = ['--cfg-options'] + options if options else []
    run([sys.executable, 'tools/train.py', args.config, '--work-dir', work_dir] + extra)
    with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as f:
        checkpoint = f.read().strip()
    eval_dir = osp.join(work_dir, 'test')
    run([sys.executable, 'tools/test.py', args.config, checkpoint, '--work-dir', eval_dir] + extra)
    with open(osp.join(eval_dir, 'metrics.json'), encoding='utf-8') as f:
        metrics = json.load(f)
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    print('\n=== mmdynamic demo finished in %.1f min ===' % ((time.time() - start) / 60))
    print(f'config:     {args.config}')
    print(f'checkpoint: {checkpoint}')
    print(f'train log:  {logs[-1] if logs else work_dir}')
    print(f'metrics:    {osp.join(eval_dir, "metrics.json")}')
    for key, value in metrics.items():
        print(f'  {key}: {value}')


if __name__ == '__main__':
    main()
