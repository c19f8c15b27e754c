# Copyright (c) mmdynamic contributors. All rights reserved.
"""SAR's patch-sparse inference equals the dense masked path on a GPU (sar.md §2.7, exact mode).

Tolerances (the same test bodies as on the CPU, see tests/test_models/test_layers/test_sar_sparse.py):

- fp32 on CUDA, TF32 off (with TF32 cuDNN rounds convolution inputs to 10-bit mantissas, which is
  not the exactness being tested): blocks 1e-4 absolute + 1e-5 relative; whole backbones 1e-4
  relative to the largest output magnitude.
- AMP (``torch.autocast('cuda', torch.float16)``), blocks with given masks: 2e-2 absolute + 1e-2
  relative (fp16 keeps 11 significant bits; one block is a few roundings of magnitude-30 outputs).
  Whole backbones are not compared under AMP: the masks are decided on fp16 logits, and the two
  paths may round a logit near the threshold to different sides, which changes the computation
  rather than its precision.

The ``cpu`` variants run the same bodies in CI.
"""
import contextlib

import pytest
import torch

from ..conftest import DEVICES
from ..test_models.test_layers.test_sar_sparse import (_block, _compare_backbone, _masks,
                                                       _mixed_masks, _randomise)
from mmdynamic.models.backbones.sar_resnet import SARResNet, SARResNetCifar
from mmdynamic.models.layers.sar_blocks import RefineBasicBlock, RefineBottleneck
from mmdynamic.models.layers.sar_layers import MacsMeter
from mmdynamic.models.layers.sar_sparse import sparse_refine_forward

FP32_ATOL, FP32_RTOL = 1e-4, 1e-5
AMP_ATOL, AMP_RTOL = 2e-2, 1e-2
BACKBONE_REL_TOL = 1e-4


def _compare_block(block, x, mask, atol, rtol, autocast=False) -> None:
    dense_meter, sparse_meter = MacsMeter(x.shape[0], x.device), MacsMeter(x.shape[0], x.device)
    context = (torch.autocast('cuda', dtype=torch.float16) if autocast else
               contextlib.nullcontext())
    with torch.no_grad(), context:
        dense = block(x, mask, dense_meter)
        sparse = sparse_refine_forward(block, x, mask, sparse_meter)
    assert sparse.device == dense.device == x.device and sparse.dtype == dense.dtype
    torch.testing.assert_close(sparse.float(), dense.float(), atol=atol, rtol=rtol)
    assert sparse_meter.static == dense_meter.static
    assert torch.equal(sparse_meter.dynamic, dense_meter.dynamic)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2])
def test_blocks_sparse_equal_dense(device, cls, groups, no_tf32):
    block = _block(cls, groups, dilation=1, mask_output=True, shortcut=True).to(device)
    x = torch.randn(2, block.conv1.in_channels, 28, 28,
                    generator=torch.Generator().manual_seed(1)).to(device)
    for name, mask in _masks(2, groups, 7).items():
        _compare_block(block, x, mask.to(device), FP32_ATOL, FP32_RTOL)


@pytest.mark.cuda
@pytest.mark.parametrize('cls', [RefineBottleneck, RefineBasicBlock])
@pytest.mark.parametrize('groups', [1, 2])
def test_blocks_sparse_equal_dense_under_amp(cls, groups):
    block = _block(cls, groups, dilation=1, mask_output=True, shortcut=True).cuda()
    x = torch.randn(2, block.conv1.in_channels, 28, 28,
                    generator=torch.Generator().manual_seed(1)).cuda()
    for name, mask in _masks(2, groups, 7).items():
        _compare_block(block, x, mask.cuda(), AMP_ATOL, AMP_RTOL, autocast=True)


@pytest.mark.parametrize('device', DEVICES)
def test_cifar_backbone_sparse_equals_dense(device, no_tf32):
    model = _randomise(SARResNetCifar(depth=20), 0)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    _mixed_masks(model, x)  # mask biases calibrated on the CPU, then moved
    _compare_backbone(model.to(device), x.to(device), rel_tol=BACKBONE_REL_TOL)


@pytest.mark.cuda
def test_sar_resnet50_sparse_equals_dense_on_cuda(no_tf32):
    model = _randomise(SARResNet(depth=50, groups=2, out_indices=(0, 1, 2, 3)), 0)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    _mixed_masks(model, x)
    _compare_backbone(model.cuda(), x.cuda(), rel_tol=BACKBONE_REL_TOL)
