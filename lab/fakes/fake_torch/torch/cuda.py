"""FAKE torch.cuda (see torch/__init__.py)."""
import os

_device = None
_elapsed_ms = 0.0  # the simulated GPU time since start


def device_count():
    return int(os.environ.get("FAKE_GPUS", "8"))


def set_device(device):
    global _device
    if device >= device_count():
        raise RuntimeError(f"CUDA error: invalid device ordinal {device}")
    _device = device


def synchronize():
    pass


class Event:
    def __init__(self, enable_timing=False):
        self.at = None

    def record(self):
        self.at = _elapsed_ms

    def elapsed_time(self, end):
        return end.at - self.at
