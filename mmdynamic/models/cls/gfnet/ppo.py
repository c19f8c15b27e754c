# Copyright (c) mmdynamic contributors. All rights reserved.
"""Rewards and the PPO objective of GFNet stage II (§2.1, §2.2).

Tensors are batch-first: (B, N) for N = T - 1 focus decisions.
"""
from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F


def increment_reward(gt_probs: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``r_{t+1} = p_{t+1,y} - p_{t,y}``.

    Args:
        gt_probs (Tensor): (B, T) softmax probability of the ground-truth class after every step.

    Returns:
        Tensor: (B, T - 1) rewards of the focus decisions.
    """
    return gt_probs[:, 1:] - gt_probs[:, :-1]


def contrastive_reward(gt_probs: torch.Tensor, random_gt_probs: torch.Tensor) -> torch.Tensor:
    """Eq. 8 (T-PAMI): ``r_{t+1} = p_{t+1,y} - E_random[p_{t+1,y}]``, the expectation estimated by
    the probability after a uniformly random patch from the same previous state.

    Args:
        gt_probs (Tensor): (B, T) ground-truth probability after every step (policy patches).
        random_gt_probs (Tensor): (B, T - 1) ground-truth probability after a random patch at steps
            2..T.

    Returns:
        Tensor: (B, T - 1).
    """
    if random_gt_probs.shape != gt_probs[:, 1:].shape:
        raise ValueError(f'random_gt_probs must be (B, T - 1) = {tuple(gt_probs[:, 1:].shape)}, '
                         f'got {tuple(random_gt_probs.shape)}')
    return gt_probs[:, 1:] - random_gt_probs


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``R_t = r_t + gamma * R_{t+1}``. Args: rewards (B, N). Returns: (B, N)."""
    returns = torch.empty_like(rewards)
    running = rewards.new_zeros(rewards.shape[0])
    for n in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, n] + gamma * running
        returns[:, n] = running
    return returns


@dataclass
class PPOConfig:
    """PPO hyper-parameters (App. A.2): discount, clip range, value and entropy coefficients,
    whether returns are normalised over the batch (the official code does) and the number of PPO
    epochs over each rollout.

    ``epochs`` = 1 is the official update (the ratio is then 1 and the clip never binds: REINFORCE
    with a learned baseline). With ``epochs`` = K > 1 every rollout batch is used for K clipped
    updates of the policy (PPO proper): K times the policy updates for the same encoder
    forwards, which the demo's short stage II needs (``GFNet.train_step`` runs them).
    """
    gamma: float = 0.7
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    normalize_returns: bool = True
    epochs: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.gamma <= 1:
            raise ValueError(f'gamma must be in [0, 1], got {self.gamma}')
        if not 0 < self.clip < 1:
            raise ValueError(f'clip must be in (0, 1), got {self.clip}')
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f'epochs must be a positive integer, got {self.epochs}')


@dataclass
class RolloutBuffer:
    """What a stage-II rollout stores for the update (one mini-batch, batch-first).

    Args:
        fmaps (Tensor): (B, N, C, s, s) feature maps each decision was taken on (detached).
        actions (Tensor): (B, N, 2) clipped actions.
        logps (Tensor): (B, N) their log-probabilities under the sampling policy.
        rewards (Tensor): (B, N).
    """
    fmaps: torch.Tensor
    actions: torch.Tensor
    logps: torch.Tensor
    rewards: torch.Tensor


def normalize_returns(returns: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(R - mean) / (std + eps)`` with the mean and the (unbiased) std of the returns of every rank.

    In a distributed run each rank holds a shard of the batch; the statistics are all-reduced (sum,
    sum of squares, count), so 2 processes with batch B normalise as 1 process with batch 2B would.
    In a single process this is the plain batch normalisation.

    Args:
        returns (Tensor): (B, N) returns of this rank.
        eps (float): Added to the std.

    Returns:
        Tensor: (B, N) normalised returns (no gradient flows through the statistics).
    """
    from mmengine.dist import all_reduce, get_world_size
    if get_world_size() == 1:
        if returns.numel() > 1:
            return (returns - returns.mean()) / (returns.std(unbiased=True) + eps)
        return returns - returns.mean()
    flat = returns.detach().double().flatten()
    stats = torch.stack([flat.sum(), (flat * flat).sum(), flat.new_tensor(flat.numel())])
    all_reduce(stats, op='sum')
    total, total_sq, count = stats.tolist()
    mean = total / count
    if count <= 1:
        return returns - mean
    var = max(total_sq - count * mean * mean, 0.0) / (count - 1)
    return (returns - mean) / (var**0.5 + eps)


def ppo_loss(logps: torch.Tensor, old_logps: torch.Tensor, values: torch.Tensor,
             entropies: torch.Tensor, returns: torch.Tensor,
             cfg: PPOConfig) -> Dict[str, torch.Tensor]:
    """The clipped surrogate with value and entropy terms (Eq. 14), as a loss to minimise.

    ``A = R - V.detach()``; ``loss = -min(rho A, clip(rho) A) + c1 (V - R)^2 - c2 H``, averaged over
    all (sample, step) pairs. ``returns`` are normalised first when ``cfg.normalize_returns``, with
    the statistics of every rank (:func:`normalize_returns`).

    Args:
        logps, old_logps, values, entropies, returns (Tensor): (B, N) each.
        cfg (PPOConfig): Hyper-parameters.

    Returns:
        dict: ``loss_policy``, ``loss_value``, ``loss_entropy`` (their sum is the objective).
    """
    if cfg.normalize_returns:
        returns = normalize_returns(returns)
    advantages = returns - values.detach()
    ratio = torch.exp(logps - old_logps.detach())
    surrogate = torch.min(ratio * advantages,
                          ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * advantages)
    return dict(loss_policy=-surrogate.mean(),
                loss_value=cfg.value_coef * F.mse_loss(values, returns),
                loss_entropy=-cfg.entropy_coef * entropies.mean())
