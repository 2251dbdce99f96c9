"""FAKE torch for tests (no GPU here): only what provisioning/scripts/nccl-check.py calls. Tensors
hold one value (every element equal) and a count of wrong elements; torch.distributed's all_reduce
returns the sum NCCL would give, and CUDA events time it as a link of FAKE_BUSBW GB/s bus bandwidth
would (default 150). FAKE_WRONG: elements a reduction gets wrong. FAKE_NCCL_ERROR: init fails with
that NCCL message. FAKE_GPUS: devices there are (default 8)."""
import os

from . import cuda, distributed  # noqa: F401

float32 = "float32"


class Tensor:
    def __init__(self, n, value, wrong=0):
        self.n, self.value, self.wrong = n, value, wrong

    def ne(self, other):
        bad = self.n if self.value != other else self.wrong
        return Tensor(1, bad)

    def sum(self):
        return self

    def item(self):
        return self.value


def full(shape, value, dtype=None, device=None):
    if device == "cuda" and cuda._device is None:
        raise RuntimeError("CUDA error: no device selected")
    return Tensor(shape[0], value)


def _busbw():
    return float(os.environ.get("FAKE_BUSBW", "150"))
