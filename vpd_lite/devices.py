"""Where to compute: pick a device, and bf16 autocast on CUDA.

Nothing in vpd-lite assumes a GPU. Random numbers are always drawn on the CPU from a seeded
``torch.Generator`` and then moved, so a run gives the same masks on every device.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["resolve_device", "autocast", "draw_uniform", "torch_threads"]


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; anything else as ``torch.device``. Asking for CUDA on a
    machine without it raises a clear error."""
    if str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available on this machine")
    return device


def autocast(device: torch.device, bf16: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``bf16``; a no-op context elsewhere (CPU runs stay in float32)."""
    if device.type == "cuda" and bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def draw_uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U(0, 1) of ``shape`` drawn on the CPU from ``generator`` (device-independent results), moved to ``device``."""
    u = torch.rand(shape, generator=generator, dtype=dtype)
    return u if device is None or device.type == "cpu" else u.to(device, non_blocking=True)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads and restore the previous count afterwards (also on
    errors). ``None`` leaves the setting alone."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
