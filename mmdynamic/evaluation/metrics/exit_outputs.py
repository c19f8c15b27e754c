# Copyright (c) mmdynamic contributors. All rights reserved.
"""Reading the per-exit outputs that step-wise models attach to their data samples."""
from typing import Dict, List, Mapping, Sequence, Tuple

import torch


def _field(sample, name: str):
    if isinstance(sample, Mapping):
        return sample.get(name)
    return getattr(sample, name, None)


def label_of(sample) -> torch.Tensor:
    """The ground truth of a data sample (dict or data element): class indices, 1-D."""
    label = _field(sample, 'gt_label')
    if label is None:
        raise KeyError('the data sample has no gt_label: budget evaluation needs labels')
    return torch.as_tensor(label).reshape(-1).long().cpu()


def exit_record(sample) -> Dict[str, torch.Tensor]:
    """``exit_logits`` (K, C), ``exit_macs`` (K, ) and the label of one data sample."""
    logits = _field(sample, 'exit_logits')
    if logits is None:
        if _field(sample, 'exit_index') is not None:
            raise KeyError('the data sample was predicted with early exit (model.exit_policy is '
                           'set), so it has no exit_logits: anytime and budget metrics need every '
                           "exit's logits; remove them from the evaluator for early-exit runs "
                           '(tools/test.py does) or unset model.exit_policy')
        raise KeyError('the data sample has no exit_logits: budget and anytime evaluation need a '
                       'step-wise model that runs every step')
    macs = _field(sample, 'exit_macs')
    if macs is None:
        raise KeyError('the data sample has no exit_macs (the cumulative MACs of the exits)')
    return dict(exit_logits=torch.as_tensor(logits).detach().float().cpu(),
                exit_macs=torch.as_tensor(macs).double().cpu(), label=label_of(sample))


def exit_choice_record(sample) -> Dict[str, torch.Tensor]:
    """``exit_index`` and ``exit_macs`` (K, ) of a sample predicted with early exit."""
    index = _field(sample, 'exit_index')
    macs = _field(sample, 'exit_macs')
    if index is None or macs is None:
        raise KeyError('the data sample has no exit_index/exit_macs: not a step-wise model output')
    return dict(exit_index=torch.as_tensor(index).reshape(()).long().cpu(),
                exit_macs=torch.as_tensor(macs).double().cpu())


def realised_cost(records: Sequence[Dict[str, torch.Tensor]]) -> Dict:
    """Mean realised MACs and exit fractions of early-exit predictions."""
    exits = torch.stack([r['exit_index'] for r in records])
    macs = torch.stack([r['exit_macs'][r['exit_index']] for r in records])
    num_exits = records[0]['exit_macs'].numel()
    fractions = torch.bincount(exits, minlength=num_exits).double() / len(records)
    return dict(realised_gmacs=float(macs.mean()) / 1e9, exit_fractions=fractions.tolist(),
                num_samples=len(records))


def stack_records(records: Sequence[Dict[str, torch.Tensor]]
                  ) -> Tuple[torch.Tensor, torch.Tensor, List[float]]:
    """Stack records into (exit logits (K, N, C), labels (N, ) or (N, C) multi-hot, exit costs (K, )).

    The exit costs are the mean over samples (equal for static step costs, realised for per-sample
    costs).
    """
    if not records:
        raise ValueError('no outputs to evaluate')
    logits = torch.stack([r['exit_logits'] for r in records], dim=1)
    costs = torch.stack([r['exit_macs'] for r in records]).mean(0).tolist()
    labels = [r['label'] for r in records]
    if all(label.numel() == 1 for label in labels):
        stacked = torch.cat(labels)
    else:
        stacked = torch.zeros(len(labels), logits.shape[-1], dtype=torch.long)
        for i, label in enumerate(labels):
            stacked[i, label] = 1
    return logits, stacked, costs
