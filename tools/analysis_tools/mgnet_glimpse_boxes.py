# Copyright (c) mmdynamic contributors. All rights reserved.
"""Where MGNet's glimpses go on the demo data: per glimpse, the accuracy of its exit, how often the
glimpse holds the whole object box, and the mean and spread of its parameters ``[a_s, a_x, a_y]``.

Reads the object boxes that ``make_demo_data`` writes next to each split folder
(``<split>_boxes.json``: image path relative to the split folder -> (x1, y1, x2, y2), x2/y2 exclusive).
Also reports the accuracy of the last exit on the images whose object lies whole in some later glimpse
and on the others. A glimpse covers pixel coordinates ``c +- a_s (S - 1) / 2`` with
``c = (a + 1) (S - 1) / 2`` (``align_corners=True``, the translation clamped inside the image as the
sampler does).

Example:
    python tools/analysis_tools/mgnet_glimpse_boxes.py \\
        configs/mgnet/mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls.py \\
        work_dirs/mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls/epoch_8.pth
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmdynamic  # noqa: E402,F401
from mmdynamic.datasets.demo_data import demo_batches  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MGNet glimpse boxes vs the demo's object boxes")
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', help='where glimpse_boxes.{json,md} go (default: '
                        'work_dirs/<config>)')
    parser.add_argument('--batch-size', type=int, help='test batch size (default: the config)')
    return parser.parse_args(argv)


def glimpse_holds_box(params, boxes, size: int):
    """Whether each glimpse holds its whole box.

    Args:
        params (Tensor): (T, N, 3) glimpse parameters ``[a_s, a_x, a_y]``.
        boxes (Tensor): (N, 4) boxes (x1, y1, x2, y2) in pixels, x2/y2 exclusive.
        size (int): Image side S (square images).

    Returns:
        Tensor: (T, N) bool.
    """
    import torch
    scale = params[..., 0]
    limit = (1 - scale).clamp(min=0)
    centre = torch.maximum(torch.minimum(params[..., 1:], limit[..., None]), -limit[..., None])
    centre = (centre + 1) * (size - 1) / 2  # (T, N, 2) pixel (x, y)
    half = scale * (size - 1) / 2
    eps = 1e-4
    low = (centre - half[..., None] <= boxes[None, :, :2] + eps).all(-1)
    high = (centre + half[..., None] >= boxes[None, :, 2:] - 1 - eps).all(-1)
    return low & high


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.runner import Runner, load_checkpoint

    from mmdynamic.utils.run_config import build_model, load_tool_config, write_tool_report
    cfg = load_tool_config(args.config, default_scope='mmpretrain')
    model = build_model(cfg)  # no init_cfg is applied: the checkpoint holds every weight
    if not hasattr(model, 'forward_glimpses'):
        raise TypeError(f'{type(model).__name__} has no forward_glimpses: not an MGNet')
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    loader_cfg = cfg.test_dataloader.copy()
    if args.batch_size:
        loader_cfg['batch_size'] = args.batch_size
    loader = Runner.build_dataloader(loader_cfg, seed=0)

    params, logits, labels, boxes = [], [], [], []
    size = None
    with torch.no_grad():
        for inputs, target, box in demo_batches(model, loader):
            size = inputs.shape[-1]
            out = model.forward_glimpses(inputs)
            params.append(out['params'])
            logits.append(out['logits'])
            labels.append(target)
            boxes.append(box)
    params, logits = torch.cat(params, 1), torch.cat(logits, 1)
    labels, boxes = torch.cat(labels), torch.cat(boxes)
    correct = logits.argmax(-1) == labels  # (T, N)
    inside = glimpse_holds_box(params, boxes, size)
    rows = []
    for t in range(params.shape[0]):
        rows.append(dict(glimpse=t + 1, accuracy=correct[t].float().mean().item() * 100,
                         holds_object=inside[t].float().mean().item() * 100,
                         mean=params[t].mean(0).tolist(), std=params[t].std(0).tolist()))
    later = inside[1:].any(0) if params.shape[0] > 1 else torch.zeros_like(labels, dtype=torch.bool)

    def rate(mask):
        return correct[-1][mask].float().mean().item() * 100 if mask.any() else float('nan')

    result = dict(num_samples=len(labels), image_size=size, glimpses=rows,
                  object_in_a_later_glimpse=later.float().mean().item() * 100,
                  last_exit_accuracy_object_in=rate(later), last_exit_accuracy_object_out=rate(~later))
    lines = [f'MGNet glimpses on {len(labels)} images of {size} px: exit accuracy, glimpses holding the '
             'whole object box, parameters (mean / std over images)', '',
             '| glimpse | top-1 (%) | holds object (%) | a_s | a_x | a_y |', '|---|---|---|---|---|---|']
    for r in rows:
        stats = ' | '.join(f'{m:.2f} / {s:.2f}' for m, s in zip(r['mean'], r['std']))
        lines.append(f'| {r["glimpse"]} | {r["accuracy"]:.2f} | {r["holds_object"]:.2f} | {stats} |')
    lines += ['', f'object whole in a later glimpse: {result["object_in_a_later_glimpse"]:.2f} %; '
              f'last exit top-1 on those images {result["last_exit_accuracy_object_in"]:.2f} %, '
              f'on the others {result["last_exit_accuracy_object_out"]:.2f} %']
    write_tool_report(result, '\n'.join(lines), 'glimpse_boxes', args.config, args.work_dir)
    return result


if __name__ == '__main__':
    main()
