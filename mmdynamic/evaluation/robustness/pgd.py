# Copyright (c) mmdynamic contributors. All rights reserved.
"""Projected gradient descent (PGD, l_inf) on any mmpretrain classifier, reported per step count.

Two spaces for the budget:

- ``'normalized'`` (the MGNet authors' code, Fig. 4 of the paper): the perturbation is added to the
  normalised tensor (after ``(x - mean) / std``) and ``eps``/``step_size`` are in those units; no clamp
  to the image range. 4/255 there is about 0.9/255 in pixels (std ~ 0.226), a weak attack.
- ``'pixel'``: the perturbation is added to the image in [0, 1] units (``eps=4/255`` is 4 grey levels),
  the image is clamped to the valid range and normalised again: the standard threat model.

The loss is the cross-entropy of one exit (the final one by default); accuracy is reported for every
exit of step-wise models. Without a random start PGD is deterministic, so the accuracies after
1, 2, 4, ... steps come from one run of ``max(steps)`` steps.
"""
import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ExitAccuracy, classifier_exit_logits, normalization_of

SPACES = ('normalized', 'pixel')


@dataclass
class PGDConfig:
    """Settings of an l_inf PGD attack.

    Args:
        eps (float): Radius of the l_inf ball (see the module docstring for its units).
        step_size (float): Size of each signed-gradient step, same units.
        steps (Sequence[int]): Step counts at which the accuracy is reported (0: clean).
        random_start (bool): Start from a uniform point of the ball instead of the input.
        space (str): ``'normalized'`` or ``'pixel'``.
        attack_exit (int): Exit whose cross-entropy is maximised (-1: the final one).
        seed (int): Seed of the random start.
        unscaled_gradients (bool): Attack with the model's gradient-scaling layers (MGNet's ``s`` of
            the localisation branch, any submodule with a float ``grad_scale``) set to 1 in the
            backward pass (BPDA-style): a check against gradient masking. Defaults to False.
    """
    eps: float = 4 / 255
    step_size: float = 1 / 255
    steps: Sequence[int] = (0, 1, 2, 4, 10, 20)
    random_start: bool = False
    space: str = 'normalized'
    attack_exit: int = -1
    seed: int = 0
    unscaled_gradients: bool = False

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f'space must be one of {SPACES}, got {self.space!r}')
        if self.eps < 0 or self.step_size <= 0:
            raise ValueError(f'eps must be >= 0 and step_size > 0, got {self.eps}, {self.step_size}')
        if not self.steps or min(self.steps) < 0:
            raise ValueError(f'steps must be non-negative step counts, got {self.steps}')
        self.steps = sorted(set(int(s) for s in self.steps))


# The paper's setting (Fig. 4, authors' code) and a stronger, standard one.
PGD_PRESETS: Dict[str, dict] = {
    'paper': dict(eps=4 / 255, step_size=1 / 255, random_start=False, space='normalized'),
    'strong': dict(eps=4 / 255, step_size=1 / 255, random_start=True, space='pixel'),
}


@contextlib.contextmanager
def unscaled_gradients(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """Temporarily set every float ``grad_scale`` of the model's submodules to 1 (forward unchanged).

    Yields:
        int: How many submodules were changed.
    """
    changed = []
    if enabled:
        for module in model.modules():
            value = getattr(module, 'grad_scale', None)
            if isinstance(value, float) and value != 1.0:
                changed.append((module, value))
                module.grad_scale = 1.0
    try:
        yield len(changed)
    finally:
        for module, value in changed:
            module.grad_scale = value


def pgd_attack_steps(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                     cfg: PGDConfig) -> Iterable[tuple]:
    """Run PGD on a batch and yield ``(num_steps, exit_logits)`` at each step count of ``cfg.steps``.

    Args:
        model (nn.Module): Classifier (see :func:`classifier_exit_logits`), in eval mode.
        inputs (Tensor): (B, C, H, W) normalised inputs (the data preprocessor's output).
        labels (Tensor): (B, ) labels.
        cfg (PGDConfig): The attack.

    Yields:
        tuple: (steps, Tensor (K, B, num_classes) logits of every exit at the adversarial input).
    """
    norm = normalization_of(model, inputs.shape[1])
    if cfg.space == 'pixel':  # work on images in [0, 1]
        scale, shift = norm['std'] / 255.0, norm['mean'] / 255.0
        clean = (inputs * scale + shift).detach()
        lower, upper = torch.zeros_like(clean), torch.ones_like(clean)
    else:
        scale, shift = torch.ones_like(norm['std']), torch.zeros_like(norm['mean'])
        clean = inputs.detach()
        lower = upper = None

    def to_model(x: torch.Tensor) -> torch.Tensor:
        return (x - shift) / scale

    adv = clean.clone()
    if cfg.random_start:
        # drawn on the CPU on purpose: the same random start from a seed on every device
        gen = torch.Generator(device='cpu').manual_seed(cfg.seed)
        noise = torch.rand(clean.shape, generator=gen, device='cpu',
                           dtype=clean.dtype).to(clean.device) * 2 - 1
        adv = clean + cfg.eps * noise
        if lower is not None:
            adv = torch.maximum(torch.minimum(adv, upper), lower)
    targets = set(cfg.steps)
    for step in range(max(cfg.steps) + 1):
        if step in targets:
            with torch.no_grad():
                yield step, classifier_exit_logits(model, to_model(adv))
        if step == max(cfg.steps):
            break
        adv = adv.detach().requires_grad_(True)
        with torch.enable_grad(), unscaled_gradients(model, cfg.unscaled_gradients):
            logits = classifier_exit_logits(model, to_model(adv))[cfg.attack_exit]
            loss = F.cross_entropy(logits, labels)
            grad, = torch.autograd.grad(loss, adv)
        adv = adv.detach() + cfg.step_size * grad.sign()
        adv = clean + (adv - clean).clamp(-cfg.eps, cfg.eps)
        if lower is not None:
            adv = torch.maximum(torch.minimum(adv, upper), lower)


@dataclass
class PGDResult:
    """Top-1 (%) per step count (rows) and exit (columns)."""
    config: PGDConfig
    accuracy: Dict[int, List[float]] = field(default_factory=dict)
    num_samples: int = 0


def evaluate_pgd(model: nn.Module, data_loader: Iterable, cfg: PGDConfig,
                 max_samples: Optional[int] = None) -> PGDResult:
    """PGD accuracy of a model on a data loader (mmengine data batches).

    Args:
        model (nn.Module): An mmpretrain classifier (with its data preprocessor).
        data_loader (Iterable): Yields data batches (``inputs``, ``data_samples``).
        cfg (PGDConfig): The attack.
        max_samples (int, optional): Stop after about this many samples.

    Returns:
        PGDResult: accuracy of every exit after each number of steps.
    """
    was_training = model.training
    model.eval()
    meters = {s: ExitAccuracy() for s in cfg.steps}
    seen = 0
    try:
        for batch in data_loader:
            data = model.data_preprocessor(batch, False)
            labels = torch.cat([ds.gt_label for ds in data['data_samples']]).to(data['inputs'].device)
            for step, logits in pgd_attack_steps(model, data['inputs'], labels, cfg):
                meters[step].update(logits, labels)
            seen += labels.numel()
            if max_samples is not None and seen >= max_samples:
                break
    finally:
        model.train(was_training)
    return PGDResult(cfg, {s: m.result() for s, m in meters.items()}, seen)
