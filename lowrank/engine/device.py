"""Where a pack trains, under which GPU kernels, and how its steps are issued.

cuDNN settings per `kernels`. exact: no TF32 and deterministic algorithms (no effect on the CPU), so float32 stays
float32, a pack equals its runs alone within float32 rounding, and a resumed run repeats the uninterrupted one bit
for bit. fast: PyTorch's defaults (TF32 convolutions, non-deterministic algorithms), as the authors' code ran on
Ampere or newer GPUs.

Steps per `step` (STEPS; no effect on the CPU): eager issues each step's kernels one by one from Python; graph
replays the step captured as a CUDA graph (lowrank.engine.graphs), the same kernels on the same memory.
"""

from __future__ import annotations

import torch

from lowrank.config import ConfigError

KERNELS = {"exact": {"deterministic": True, "allow_tf32": False},
           "fast": {"deterministic": False, "allow_tf32": True}}
STEPS = ("eager", "graph")


def kernel_flags(kernels: str):
    """A context that trains under the cuDNN settings named `kernels` (see KERNELS)."""
    if kernels not in KERNELS:
        raise ConfigError(f"kernels={kernels!r} is invalid: choose one of {', '.join(KERNELS)}.")
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, **KERNELS[kernels])


def check_step(step: str) -> None:
    """Refuse a `step` that is not one of STEPS, naming it."""
    if step not in STEPS:
        raise ConfigError(f"step={step!r} is invalid: choose one of {', '.join(STEPS)}.")


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
