# Copyright (c) mmdynamic contributors. All rights reserved.
"""Confidence scores of a prediction, used to decide early exits (larger = more confident).

Scores are computed in at least float32 (float64 logits stay float64): half-precision logits of an
AMP run are scored as the thresholds were fitted (:class:`~mmdynamic.evaluation.BudgetSolver` fits on
float32 logits), not after a float16 softmax.
"""
from typing import Callable, Dict, Union

import torch

ConfidenceFn = Callable[[torch.Tensor], torch.Tensor]


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Largest softmax probability (GFNet). Args: logits (Tensor): (..., C). Returns: (...)."""
    return _at_least_float32(logits).softmax(dim=-1).amax(dim=-1)


def max_logit(logits: torch.Tensor) -> torch.Tensor:
    """Largest raw logit (the AdaFocus codes' 'confidence'). Args: logits (..., C). Returns: (...)."""
    return _at_least_float32(logits).amax(dim=-1)


def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Negative entropy sum_j p_j log p_j of the softmax (Uni-AdaFocus paper). Returns: (...)."""
    log_p = _at_least_float32(logits).log_softmax(dim=-1)
    return (log_p.exp() * log_p).sum(dim=-1)


CONFIDENCE_FUNCTIONS: Dict[str, ConfidenceFn] = {
    'max_softmax': max_softmax,
    'max_logit': max_logit,
    'neg_entropy': neg_entropy,
}


def get_confidence_fn(confidence: Union[str, ConfidenceFn]) -> ConfidenceFn:
    """The confidence function named ``confidence`` (or ``confidence`` itself if callable)."""
    if callable(confidence):
        return confidence
    if confidence not in CONFIDENCE_FUNCTIONS:
        raise ValueError(f'unknown confidence function {confidence!r}; choose one of '
                         f'{sorted(CONFIDENCE_FUNCTIONS)}')
    return CONFIDENCE_FUNCTIONS[confidence]
