"""Where a pack trains and under which GPU kernels.

cuDNN settings per `kernels`. exact: no TF32 and deterministic algorithms (no effect on the CPU), so float32 stays
float32, a pack equals its runs alone within float32 rounding, and a resumed run repeats the uninterrupted one bit
for bit. fast: PyTorch's defaults (TF32 convolutions, non-deterministic algorithms), as the authors' code ran on
Ampere or newer GPUs.
"""

from __future__ import annotations

import torch

from lowrank.config import ConfigError

KERNELS = {"exact": {"deterministic": True, "allow_tf32": False},
           "fast": {"deterministic": False, "allow_tf32": True}}


def kernel_flags(kernels: str):
    """A context that trains under the cuDNN settings named `kernels` (see KERNELS)."""
    if kernels not in KERNELS:
        raise ConfigError(f"kernels={kernels!r} is invalid: choose one of {', '.join(KERNELS)}.")
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, **KERNELS[kernels])


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_device(text: str | None) -> torch.device:
    """A --device value as a device (default: cuda if available), rejecting one this machine lacks."""
    if text is None:
        return default_device()
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise ConfigError(f"device={text!r} is invalid: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={text!r} is invalid: no CUDA GPU is visible here.")
    return device
