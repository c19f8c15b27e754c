# Copyright (c) mmdynamic contributors. All rights reserved.
"""Do the masks of a trained SAR model refine the objects? Object cells vs background cells.

Runs a SAR checkpoint (classifier, detector or segmentor) on the test dataloader of its config and
pools, per SAR stage and overall, the fraction of mask cells refined on object cells and on
background cells (:mod:`mmdynamic.evaluation.functional.mask_selectivity`), and reports the density
it measured: the mean refined fraction of every mask (area-weighted with cells in pixels, as the
realised MACs and the sparsity loss), per stage and over all masks (the number the sparsity
target refers to). Objects come from the
data samples (``gt_instances.bboxes`` of detection datasets, in the network-input frame; the pixels of
``gt_sem_seg`` outside ``--background-labels`` and the ignore index for segmentation) or,
with ``--boxes``, from a JSON file ``{relative image path: [x1, y1, x2, y2]}`` such as the
``*_boxes.json`` files of the demo classification set (the image must not be resized by the test
pipeline; a resize is rejected).

With ``--task-gradient`` it also reports, per mask, the mean gradient of the task loss (the
model's losses without the sparsity loss, per image) with respect to the mask on object cells and
on background cells, at the inference masks: the first-order change of the loss from refining a
cell. Negative on the object and near zero on the background means refining the object would
help; a mask that skips its object cells anyway did not learn from the task there (issue #19).

Example:
    python tools/analysis_tools/sar_mask_selectivity.py CONFIG CHECKPOINT \
        --boxes data/demo/cls/val_boxes.json --out selectivity.json --task-gradient
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmdynamic.evaluation.functional.mask_selectivity import (  # noqa: E402
    MaskSelectivity, mask_selectivity, merge_selectivity)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='SAR mask selectivity: objects vs background')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--boxes', help='JSON {image path relative to the data prefix: box}')
    parser.add_argument('--background-labels', type=int, nargs='+', default=[0],
                        help='segmentation labels that are background (default: 0)')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='segmentation label of unlabelled pixels (neither object nor background)')
    parser.add_argument('--max-batches', type=int, help='stop after this many test batches')
    parser.add_argument('--task-gradient', action='store_true',
                        help='also report the task loss gradient w.r.t. each mask on object and '
                        'background cells (needs the labels of the test set)')
    parser.add_argument('--out', help='write the result as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def _foreground_of(samples, input_hw: Sequence[int], background: Sequence[int],
                   ignore_index: int) -> torch.Tensor:
    """(B, H, W) bool object pixels from ``gt_sem_seg`` (zero-padded to the batch input size)."""
    out = torch.zeros(len(samples), *input_hw, dtype=torch.bool)
    for b, sample in enumerate(samples):
        labels = sample.gt_sem_seg.data[0]
        fg = labels != ignore_index
        for label in background:
            fg &= labels != label
        out[b, :fg.shape[0], :fg.shape[1]] = fg[:input_hw[0], :input_hw[1]]
    return out


def _boxes_of(samples, table: Optional[Dict[str, List[float]]], root: Optional[str],
              input_hw: Sequence[int]) -> List[torch.Tensor]:
    out = []
    for sample in samples:
        if table is None:
            if 'gt_instances' not in sample:
                raise KeyError('the data samples carry no gt_instances; pass --boxes')
            out.append(sample.gt_instances.bboxes.tensor
                       if hasattr(sample.gt_instances.bboxes, 'tensor')
                       else torch.as_tensor(sample.gt_instances.bboxes))
            continue
        ori = sample.get('ori_shape')
        if ori is not None and tuple(ori[:2]) != tuple(sample.get('img_shape', ori)[:2]):
            raise ValueError(f'{sample.img_path}: resized by the test pipeline ({ori} -> '
                             f'{sample.img_shape}); --boxes needs unresized images')
        key = osp.relpath(sample.img_path, root).replace(osp.sep, '/')
        if key not in table:
            raise KeyError(f'no box for {key} in the --boxes file')
        out.append(torch.tensor(table[key], dtype=torch.float32).view(-1, 4))
    return out


def _task_loss(losses: Dict) -> torch.Tensor:
    """Sum of a model's loss terms without the sparsity loss."""
    total = 0.0
    for key, value in losses.items():
        if not key.startswith('loss') or 'sparsity' in key:
            continue
        total = total + (sum(value) if isinstance(value, (list, tuple)) else value)
    if not torch.is_tensor(total):
        raise ValueError(f'the model returned no task loss (keys: {sorted(losses)})')
    return total


class _MaskLeaves:
    """Feeds every refine block its mask as a leaf tensor that collects the task gradient: one
    leaf per mask, shared by the refine blocks the mask gates (``mask_sharing='stage'``), so that
    its gradient sums over them."""

    def __init__(self, backbone) -> None:
        self.leaves: List[torch.Tensor] = []
        self._leaf_of: Dict[int, torch.Tensor] = {}
        self.handles = [refine.register_forward_pre_hook(self._hook)
                        for stage in backbone.stages for refine in stage.refine]

    def _hook(self, module, args):
        x, mask, *rest = args
        leaf = self._leaf_of.get(id(mask))
        if leaf is None:
            leaf = mask.detach().requires_grad_()
            self._leaf_of[id(mask)] = leaf
            self.leaves.append(leaf)
        return (x, leaf, *rest)

    def clear(self) -> None:
        """Forget the leaves of the previous batch."""
        self.leaves.clear()
        self._leaf_of.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def run(args: argparse.Namespace) -> Dict:
    from mmengine.runner import Runner

    from mmdynamic.utils.run_config import build_model, load_tool_config
    cfg = load_tool_config(args.config, args.cfg_options)
    model = build_model(cfg, args.checkpoint)
    backbone = model.backbone
    if not hasattr(backbone, 'stages') or not hasattr(backbone, 'last_masks'):
        raise TypeError(f'{type(backbone).__name__} is not a SAR backbone')
    table, root = None, None
    if args.boxes:
        with open(args.boxes, encoding='utf-8') as f:
            table = json.load(f)
        dataset = cfg.test_dataloader.dataset
        root = osp.join(dataset.get('data_root', ''), dataset.get('data_prefix', ''))
        if isinstance(dataset.get('data_prefix'), dict):
            root = osp.join(dataset.get('data_root', ''), dataset.data_prefix.get('img_path', ''))
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    num_masks = sum(len(s.masks) for s in backbone.stages)
    per_mask: List[List[MaskSelectivity]] = [[] for _ in range(num_masks)]
    per_mask_grad: List[List[MaskSelectivity]] = [[] for _ in range(num_masks)]
    density_sum = torch.zeros(num_masks, dtype=torch.float64)
    num_images = 0
    leaves = None
    if args.task_gradient:
        # the dense masked refine path (equal to the sparse one) carries the gradient to the masks
        backbone.set_sparse_infer(False)
        leaves = _MaskLeaves(backbone)
    with torch.set_grad_enabled(args.task_gradient):
        for i, batch in enumerate(loader):
            if args.max_batches is not None and i >= args.max_batches:
                break
            data = model.data_preprocessor(batch, False)
            inputs = data['inputs']
            if leaves is None:
                backbone(inputs)
            else:
                leaves.clear()
                model.zero_grad(set_to_none=True)
                # the losses are means over the batch: scale to the gradient of one image's loss
                (_task_loss(model.loss(inputs, data['data_samples'])) *
                 inputs.shape[0]).backward()
            # area-weighted with cells in pixels, as the realised MACs
            density_sum += torch.stack([f.double().sum().cpu() for f in backbone.mask_fractions()])
            num_images += inputs.shape[0]
            samples = data['data_samples']
            if table is None and 'gt_sem_seg' in samples[0]:
                objects = dict(foreground=_foreground_of(
                    samples, inputs.shape[-2:], args.background_labels, args.ignore_index))
            else:
                objects = dict(boxes=_boxes_of(samples, table, root, inputs.shape[-2:]),
                               image_size=inputs.shape[-2:])
            for n, mask in enumerate(backbone.last_masks):
                per_mask[n].append(mask_selectivity([mask], **objects))
                if leaves is not None:
                    grad = leaves.leaves[n].grad
                    if grad is None:
                        raise RuntimeError(f'mask {n} got no task gradient: its refine block did '
                                           'not use it')
                    per_mask_grad[n].append(mask_selectivity([grad], **objects))
    if leaves is not None:
        leaves.remove()
    if num_images == 0:
        raise ValueError('the test dataloader gave no images')
    densities = (density_sum / num_images).tolist()
    masks = [merge_selectivity(parts) for parts in per_mask]
    stages, stage_densities, start = [], [], 0
    for stage in backbone.stages:
        stages.append(merge_selectivity(masks[start:start + len(stage.masks)]))
        stage_densities.append(sum(densities[start:start + len(stage.masks)]) / len(stage.masks))
        start += len(stage.masks)
    overall = merge_selectivity(stages)
    mask_rows = [dict(vars(m), ratio=m.ratio, density=d) for m, d in zip(masks, densities)]
    if args.task_gradient:
        for row, parts in zip(mask_rows, per_mask_grad):
            grad = merge_selectivity(parts)
            row['task_gradient'] = dict(object=grad.object_rate, background=grad.background_rate)
    return dict(
        overall=dict(vars(overall), ratio=overall.ratio,
                     density=sum(densities) / len(densities)),
        stages=[dict(vars(s), ratio=s.ratio, density=d) for s, d in zip(stages, stage_densities)],
        masks=mask_rows,
        densities=densities, num_images=num_images)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    result = run(args)
    for name, item in [('overall', result['overall'])] + [
            (f'stage {i + 1}', s) for i, s in enumerate(result['stages'])]:
        print(f'{name}: refined {item["object_rate"]:.3f} of object cells '
              f'({item["num_object_cells"]}), {item["background_rate"]:.3f} of background cells '
              f'({item["num_background_cells"]}), ratio {item["ratio"]:.2f}, '
              f'density {item["density"]:.3f}')
    print(f'mask densities over {result["num_images"]} images: ' +
          ', '.join(f'{d:.3f}' for d in result['densities']))
    if args.task_gradient:
        print('per mask: refined object / background cells, mean task-loss gradient d L / d M '
              'on object / background cells (per image; negative: refining lowers the loss)')
        for n, row in enumerate(result['masks']):
            grad = row['task_gradient']
            print(f'mask {n}: refined {row["object_rate"]:.3f} / {row["background_rate"]:.3f}, '
                  f'gradient {grad["object"]:+.4f} / {grad["background"]:+.4f}')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
