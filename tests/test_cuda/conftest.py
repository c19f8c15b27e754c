# Copyright (c) mmdynamic contributors. All rights reserved.
"""Fixtures shared by the CUDA tests."""
import pytest
import torch


@pytest.fixture
def no_tf32():
    """fp32 comparisons on CUDA: TF32 matmuls and convolutions off for the test, restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
