"""FAKE torch.distributed (see torch/__init__.py): one process per rank, no traffic between them."""
import os

import torch
from torch import cuda

_group = None


def init_process_group(backend, init_method=None, rank=0, world_size=1, timeout=None):
    global _group
    if os.environ.get("FAKE_NCCL_ERROR"):
        raise RuntimeError(os.environ["FAKE_NCCL_ERROR"])
    assert backend == "nccl" and init_method.startswith("tcp://"), (backend, init_method)
    _group = {"rank": rank, "world": world_size, "calls": 0}


def all_reduce(t):
    w = _group["world"]
    _group["calls"] += 1
    # What a sum over ranks that filled rank + 1 gives, then sums of equal tensors.
    t.value = w * (w + 1) / 2 if _group["calls"] == 1 else t.value * w
    t.wrong = int(os.environ.get("FAKE_WRONG", "0"))
    busbw = torch._busbw() * 1e9
    cuda._elapsed_ms += t.n * 4 * 2 * (w - 1) / w / busbw * 1000


def barrier():
    pass


def destroy_process_group():
    global _group
    _group = None
