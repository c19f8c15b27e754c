# Copyright (c) mmdynamic contributors. All rights reserved.
"""PPO returns are normalised with the statistics of every rank (2 gloo processes on CPU): two ranks
with half a batch each normalise exactly as one process with the whole batch."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdynamic.models.cls.gfnet import normalize_returns


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, returns: torch.Tensor, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        shard = returns.chunk(2)[rank]
        torch.save(normalize_returns(shard), f'{out}.{rank}')
    finally:
        dist.destroy_process_group()


def test_returns_are_normalised_over_all_ranks(tmp_path):
    # the two halves have very different statistics: per-rank normalisation would differ a lot
    returns = torch.cat([torch.randn(4, 2) * 0.1, torch.randn(4, 2) * 3 + 5]).double()
    expected = normalize_returns(returns)  # one process, the whole batch
    assert torch.allclose(expected.mean(), torch.zeros((), dtype=expected.dtype), atol=1e-9)
    out = str(tmp_path / 'norm')
    mp.start_processes(_worker, args=(_free_port(), returns, out), nprocs=2, start_method='spawn')
    got = torch.cat([torch.load(f'{out}.{r}') for r in range(2)])
    assert torch.allclose(got, expected, atol=1e-8), (got, expected)
    per_rank = torch.cat([normalize_returns(half) for half in returns.chunk(2)])
    assert not torch.allclose(per_rank, expected, atol=1e-2)
