# Copyright (c) mmdynamic contributors. All rights reserved.
"""Does GFNet's learned policy beat random patch locations? Learned vs uniformly random focus
locations with the same weights, per step, with the paired standard error.

Runs the test dataloader of the config once with the policy's mean action (``test_locations='mean'``)
and ``--random-draws`` times with uniformly random locations (``'random'``, draw d seeded with d),
every sample running every step. Per step it reports top-1 of both; at the last step the paired
difference per image (learned correct minus the mean over the random draws) with its standard
error std / sqrt(n); per focus step the fraction of patches that hold the whole object box (from the
``<split>_boxes.json`` of the demo generators, x2 / y2 exclusive) and the mean and spread of the
locations.

Example:
    python tools/analysis_tools/gfnet_policy_eval.py \\
        configs/gfnet/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-cls.py \\
        work_dirs/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-cls/epoch_20.pth \\
        --cfg-options test_dataloader.dataset.data_root=data/demo_heldout/cls
"""
import argparse
import math
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import mmdynamic  # noqa: E402,F401
from mmdynamic.datasets.demo_data import demo_batches  # noqa: E402
from mmdynamic.models.utils.patch_sampler import patch_corners  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='GFNet: learned vs random patch locations')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--random-draws', type=int, default=4,
                        help='passes with uniformly random locations (default: 4)')
    parser.add_argument('--work-dir', help='where policy_eval.{json,md} go (default: '
                        'work_dirs/<config>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def patch_holds_box(locations: torch.Tensor, boxes: torch.Tensor, image_size: int, patch_size: int,
                    anchor: str) -> torch.Tensor:
    """Whether each focus patch holds its whole box.

    Args:
        locations (Tensor): (N, S, 2) (row, col) locations in [0, 1] of S focus steps.
        boxes (Tensor): (N, 4) boxes (x1, y1, x2, y2) in pixels, x2 / y2 exclusive.
        image_size (int): Image side (square images).
        patch_size (int): Patch side P.
        anchor (str): The model's ``crop_anchor``.

    Returns:
        Tensor: (N, S) bool.
    """
    corners = patch_corners(locations.flatten(0, 1), (image_size, image_size),
                            (patch_size, patch_size), anchor).floor().view(locations.shape)
    top, left = corners[..., 0], corners[..., 1]
    boxes = boxes[:, None]
    return ((left <= boxes[..., 0]) & (left + patch_size >= boxes[..., 2]) &
            (top <= boxes[..., 1]) & (top + patch_size >= boxes[..., 3]))


def _run(model, loader, mode: str, seed: Optional[int]) -> Dict[str, torch.Tensor]:
    """Correct (N, T), locations (N, T - 1, 2), labels (N, ) and boxes (N, 4) of one pass."""
    if seed is not None:
        torch.manual_seed(seed)
    correct, locations, labels, boxes = [], [], [], []
    with torch.no_grad():
        for inputs, target, box in demo_batches(model, loader):
            rollout = model.rollout(inputs, mode=mode, with_aux=False)
            correct.append(rollout.logits.argmax(-1).t() == target[:, None])
            locations.append(rollout.locations)
            labels.append(target)
            boxes.append(box)
    return dict(correct=torch.cat(correct).float(), locations=torch.cat(locations),
                labels=torch.cat(labels), boxes=torch.cat(boxes), size=inputs.shape[-1])


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.random_draws < 1:
        raise ValueError(f'--random-draws must be >= 1, got {args.random_draws}')
    from mmengine.runner import Runner

    from mmdynamic.utils.run_config import build_model, load_tool_config, write_tool_report
    from mmdynamic.utils.stage_inputs import resolve_stage_inputs
    cfg = load_tool_config(args.config, args.cfg_options, default_scope='mmpretrain')
    resolve_stage_inputs(cfg)
    model = build_model(cfg, args.checkpoint)
    if not hasattr(model, 'rollout') or not hasattr(model, 'test_locations'):
        raise TypeError(f'{type(model).__name__} has no patch policy: not a GFNet')
    if model.num_exits < 2:
        raise ValueError('a GFNet with T = 1 has no focus step to compare')
    model.eval()
    loader = Runner.build_dataloader(cfg.test_dataloader, seed=0)

    learned = _run(model, loader, 'mean', None)
    draws = [_run(model, loader, 'random', d) for d in range(args.random_draws)]
    if any(not torch.equal(d['labels'], learned['labels']) for d in draws):
        raise RuntimeError('the test dataloader changed its order between passes')
    size, patch = learned['size'], model.patch_size
    hold = patch_holds_box(learned['locations'], learned['boxes'], size, patch, model.crop_anchor)
    hold_random = torch.stack([patch_holds_box(d['locations'], d['boxes'], size, patch,
                                               model.crop_anchor) for d in draws])
    random_correct = torch.stack([d['correct'] for d in draws]).mean(0)  # (N, T)
    diff = learned['correct'][:, -1] - random_correct[:, -1]
    n = len(diff)
    result = dict(
        num_samples=n, image_size=size, patch_size=patch, random_draws=args.random_draws,
        top1_learned=(learned['correct'].mean(0) * 100).tolist(),
        top1_random=[(d['correct'].mean(0) * 100).tolist() for d in draws],
        top1_random_mean=(random_correct.mean(0) * 100).tolist(),
        gain_last=diff.mean().item() * 100,
        gain_last_se=(diff.std(unbiased=True).item() / math.sqrt(n) * 100) if n > 1 else float('nan'),
        holds_object_learned=hold.float().mean(0).tolist(),
        holds_object_random=hold_random.float().mean((0, 1)).tolist(),
        location_mean=learned['locations'].mean(0).tolist(),
        location_std=learned['locations'].std(0).tolist() if n > 1 else None)
    steps = len(result['top1_learned'])
    lines = [f'GFNet on {n} images of {size} px, P = {patch}: learned (mean action) vs uniformly random '
             f'patch locations ({args.random_draws} draws)', '',
             '| step | top-1 learned (%) | top-1 random, mean (%) | learned patches holding the object | '
             'random patches holding the object |', '|---|---|---|---|---|']
    for t in range(steps):
        held = ('-', '-') if t == 0 else (f"{result['holds_object_learned'][t - 1]:.3f}",
                                          f"{result['holds_object_random'][t - 1]:.3f}")
        lines.append(f"| {t + 1} | {result['top1_learned'][t]:.2f} | "
                     f"{result['top1_random_mean'][t]:.2f} | {held[0]} | {held[1]} |")
    lines += ['', f"learned - random at t = {steps}: {result['gain_last']:+.2f} points "
              f"(paired SE {result['gain_last_se']:.2f})"]
    write_tool_report(result, '\n'.join(lines), 'policy_eval', args.config, args.work_dir)
    return result


if __name__ == '__main__':
    main()
