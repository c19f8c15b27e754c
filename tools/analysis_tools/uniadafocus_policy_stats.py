# Copyright (c) mmdynamic contributors. All rights reserved.
"""Where and when a trained Uni-AdaFocus looks, on the demo videos (``make_demo_data --tasks video``).

The demo writes ``{split}_meta.json`` next to ``{split}_list.txt``: per video the object box
(x1, y1, x2, y2) and the frames in which the object is visible. For every video of the test split the
model runs once in eval mode (the test protocol: middle glance frames, centred quantile levels) and the
tool reports:

- **frame weights**: the temporal policy's weight mass on the glance frames that show the object, against
  the uniform share (the fraction of glance frames that show it);
- **focus frames**: the fraction of the T_L frames read by f_L that show the object, against the frames
  that uniform weights would choose;
- **boxes**: the mean fraction of the object's area inside each focus box (``object_in_box``) and the
  fraction of boxes that hold the whole object (``covered``: at least 0.99 of its area), against boxes of
  the same sizes at uniformly random places inside the frame and against random P x P boxes (the
  equal-cost baseline's patches), both as exact expectations over the places; the mean box side;
- top-1 of the glance exit and of the final exit.

The test pipeline must keep the frames' geometry (as ``_base_/demo_video_card64.py`` does: the meta boxes
are frame coordinates) and read every frame as a candidate (T_0 = frames per video).

Example:
    python tools/analysis_tools/uniadafocus_policy_stats.py \\
        configs/uniadafocus/uniadafocus_r18w16-pre-p32-8+4_1xb8-10e_demo-video.py CKPT --out stats.json
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

COVERED = 0.99  # fraction of the object's area inside a box for the box to count as covering it


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Frame weights and boxes of a Uni-AdaFocus model '
                                     'against the object of the demo videos')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--meta', help='the split\'s meta JSON (default: {split}_meta.json next to '
                        'the test annotation file {split}_list.txt)')
    parser.add_argument('--out', help='write the statistics (JSON) to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def object_fraction_inside(boxes: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """Fraction of the object's area inside each box.

    Args:
        boxes (Tensor): (..., 4) boxes (centre_y, centre_x, height, width) in pixels.
        obj (Tensor): (4, ) the object (x1, y1, x2, y2) in pixels.

    Returns:
        Tensor: (...) in [0, 1].
    """
    y1, x1 = boxes[..., 0] - boxes[..., 2] / 2, boxes[..., 1] - boxes[..., 3] / 2
    y2, x2 = y1 + boxes[..., 2], x1 + boxes[..., 3]
    inter_h = (torch.minimum(y2, obj[3]) - torch.maximum(y1, obj[1])).clamp(min=0)
    inter_w = (torch.minimum(x2, obj[2]) - torch.maximum(x1, obj[0])).clamp(min=0)
    return inter_h * inter_w / ((obj[3] - obj[1]) * (obj[2] - obj[0]))


def random_place_fraction(sides: torch.Tensor, obj: torch.Tensor, frame_size: Sequence[int],
                          steps: int = 65) -> Dict[str, torch.Tensor]:
    """Expected object fraction inside, and probability of covering, for boxes of the given sides at
    uniformly random places inside the frame (the top-left corner uniform on ``[0, S - side]`` per axis;
    the expectation is a mean over a ``steps`` x ``steps`` grid of places).

    Args:
        sides (Tensor): (N, 2) box (height, width) in pixels.
        obj (Tensor): (4, ) the object (x1, y1, x2, y2). frame_size: (H, W).

    Returns:
        dict: ``object_in_box`` and ``covered``, each (N, ).
    """
    height, width = frame_size
    grid = torch.linspace(0, 1, steps, dtype=sides.dtype)
    top = grid[None, :] * (height - sides[:, :1])  # (N, steps)
    left = grid[None, :] * (width - sides[:, 1:])
    cy = (top + sides[:, :1] / 2)[:, :, None].expand(-1, -1, steps)
    cx = (left + sides[:, 1:] / 2)[:, None, :].expand(-1, steps, -1)
    boxes = torch.stack([cy, cx, sides[:, None, None, 0].expand_as(cy),
                         sides[:, None, None, 1].expand_as(cy)], dim=-1)
    frac = object_fraction_inside(boxes, obj)
    return dict(object_in_box=frac.mean(dim=(1, 2)),
                covered=(frac >= COVERED).to(sides.dtype).mean(dim=(1, 2)))


def _meta_path(cfg: Config, split_file: Optional[str]) -> str:
    if split_file:
        return split_file
    ann = cfg.test_dataloader.dataset.ann_file
    if not ann.endswith('_list.txt'):
        raise ValueError(f'cannot derive the meta file from {ann!r}; pass --meta')
    return ann[:-len('_list.txt')] + '_meta.json'


def run(args: argparse.Namespace) -> Dict:
    from mmengine.runner import Runner

    from mmdynamic.utils.run_config import build_model, load_tool_config
    cfg = load_tool_config(args.config, args.cfg_options, default_scope='mmaction')
    from mmdynamic.models.action.frame_sampling import quantile_frame_indices
    model = build_model(cfg, args.checkpoint)
    if not hasattr(model, 'plan_focus'):
        raise TypeError(f'{type(model).__name__} is not a Uni-AdaFocus recognizer')
    with open(_meta_path(cfg, args.meta), encoding='utf-8') as f:
        meta = json.load(f)
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader = Runner.build_dataloader(loader_cfg)
    dataset = loader.dataset

    sums: Dict[str, float] = {}

    def add(key: str, value: torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(value.sum())

    count, num_focus_boxes, seen = 0, 0, 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs']
            out = model.forward_steps(inputs)
            frame_size = tuple(inputs.shape[-2:])
            labels = torch.as_tensor([int(s.gt_label.reshape(-1)[0]) for s in data['data_samples']])
            uniform = quantile_frame_indices(torch.ones_like(out['frame_weights']), model.num_focus,
                                             model.num_candidates)
            for b in range(inputs.shape[0]):
                info = dataset.get_data_info(seen + b)
                key = osp.relpath(info['filename'], dataset.data_prefix['video']).replace(osp.sep, '/')
                video = meta[key]
                visible = torch.zeros(model.num_candidates, dtype=torch.bool)
                visible[[v for v in video['visible'] if v < model.num_candidates]] = True
                glance_visible = visible[out['index'][b]].double()
                weights = out['frame_weights'][b].double()
                add('weight_on_visible', (weights * glance_visible).sum())
                add('uniform_share', glance_visible.mean())
                add('focus_visible', visible[out['focus_index'][b]].double().mean())
                add('uniform_focus_visible', visible[uniform[b]].double().mean())
                obj = torch.tensor(video['box'], dtype=torch.float64)
                boxes = out['boxes'][b].double()
                inside = object_fraction_inside(boxes, obj)
                same = random_place_fraction(boxes[:, 2:], obj, frame_size)
                patch = torch.full((1, 2), float(model.patch_size), dtype=torch.float64)
                rand_p = random_place_fraction(patch, obj, frame_size)
                add('object_in_box', inside)
                add('covered', (inside >= COVERED).double())
                add('random_same_size_object_in_box', same['object_in_box'])
                add('random_same_size_covered', same['covered'])
                add('random_patch_object_in_box', rand_p['object_in_box'] * len(boxes))
                add('random_patch_covered', rand_p['covered'] * len(boxes))
                add('box_side', boxes[:, 2:].mean(dim=1))
                num_focus_boxes += len(boxes)
            steps = out['steps']
            add('top1_glance_exit', (steps[:, model.exit_offset].argmax(-1) == labels).double())
            add('top1_final_exit', (steps[:, -1].argmax(-1) == labels).double())
            seen += inputs.shape[0]
            count += inputs.shape[0]
    per_video = ('weight_on_visible', 'uniform_share', 'focus_visible', 'uniform_focus_visible',
                 'top1_glance_exit', 'top1_final_exit')
    result = {k: sums[k] / (count if k in per_video else num_focus_boxes) for k in sums}
    result.update(num_videos=count, num_focus_boxes=num_focus_boxes, frame_size=list(frame_size),
                  patch_size=model.patch_size, covered_threshold=COVERED)
    return result


def format_table(stats: Dict) -> str:
    """The statistics as a markdown table (policy vs the random references)."""
    rows = [
        ('frame-weight mass on glance frames with the object', stats.get('weight_on_visible'),
         stats['uniform_share'], 'uniform weights'),
        ('focus frames with the object', stats['focus_visible'], stats['uniform_focus_visible'],
         'uniform frames'),
        ('object area inside the focus box', stats['object_in_box'],
         stats['random_same_size_object_in_box'], 'same-size boxes at random places'),
        ('focus boxes holding the whole object', stats['covered'],
         stats['random_same_size_covered'], 'same-size boxes at random places'),
        ('focus boxes holding the whole object (vs P x P)', stats['covered'],
         stats['random_patch_covered'], 'random P x P patches'),
    ]
    lines = ['| quantity | model | reference | reference is |', '|---|---|---|---|']
    for name, ours, ref, what in rows:
        lines.append(f'| {name} | {ours:.3f} | {ref:.3f} | {what} |')
    lines.append(f'| mean box side (px) | {stats["box_side"]:.1f} | {stats["patch_size"]} | P |')
    lines.append(f'| top-1 glance exit / final exit | {stats["top1_glance_exit"]:.3f} / '
                 f'{stats["top1_final_exit"]:.3f} | | |')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    stats = run(args)
    print(format_table(stats))
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(stats, f, indent=1)
    return stats


if __name__ == '__main__':
    main()
