"""Where to compute: pick a device, and bf16 autocast on CUDA.

Nothing in vpd-lite assumes a GPU. Random numbers are always drawn on the CPU from a seeded
``torch.Generator`` and then moved, so a run gives the same masks on every device.
"""

from __future__ import annotations

import contextlib
import os

import torch

from vpd_lite.errors import UserError


class DeviceUnavailableError(UserError, RuntimeError):
    """A device (or a backend that needs one) was asked for that this machine does not have."""


def no_cuda_reason() -> str:
    """Why CUDA is not available here, in words: this torch build has no CUDA, or it finds no GPU."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    return f"torch {torch.__version__} with CUDA {torch.version.cuda} finds no GPU"


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; anything else as ``torch.device``.

    Raises:
        DeviceUnavailableError: CUDA asked for on a machine without it (one line saying why and what to use).
    """
    if str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {str(spec)!r} requested but CUDA is not available on this machine "
                                     f"({no_cuda_reason()}); use cpu or auto")
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


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
