"""What fits in a device's memory. A pack that runs out of it (torch.OutOfMemoryError) is trained again as sub-packs
of half its size, each run from its last checkpoint (a pack equals its runs alone, so the logs do not change), and
that size is recorded next to the checkpoints for the pack's shape on that device (architecture and its options,
data, batch size, dtype, augmentation: what a step's memory depends on), so later packs of the shape start from it.

LOWRANK_TEST_OOM_ABOVE_K=k makes every pack of more than k runs run out of memory as it starts an epoch: the tests'
stand-in for a GPU too small (on a CPU, or a GPU large enough).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from lowrank import layout
from lowrank.config import RunConfig
from lowrank.logs import atomic_write_bytes

FAKE_OOM = "LOWRANK_TEST_OOM_ABOVE_K"


def check_fake_oom(k: int) -> None:
    """Raise torch.OutOfMemoryError for a pack of k runs above the FAKE_OOM limit, when one is set."""
    limit = os.environ.get(FAKE_OOM)
    if limit and k > int(limit):
        raise torch.OutOfMemoryError(f"{FAKE_OOM}={limit}: a pack of {k} runs does not fit (a test's stand-in)")


def device_name(device: torch.device) -> str:
    """The device's model (its memory is what fits): the GPU's name, or `cpu`."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def shape(cfg: RunConfig, device: torch.device) -> dict:
    """What the memory of a pack's step depends on, besides its size K."""
    keys = ("arch", "arch_options", "dataset", "data_options", "batch_size", "dtype", "augmentation")
    return {"device": device_name(device), **{k: v for k, v in cfg.to_dict().items() if k in keys}}


def fit_file(ckpt_dir: Path, cfg: RunConfig, device: torch.device) -> Path:
    """Where the largest pack size known to fit for the shape of `cfg` on `device` is recorded."""
    digest = hashlib.sha1(json.dumps(shape(cfg, device), sort_keys=True).encode()).hexdigest()[:10]
    return layout.pack_fit_file(ckpt_dir, f"{cfg.arch}-{cfg.dataset}-b{cfg.batch_size}-{digest}")


def recorded_fit(ckpt_dir: Path, cfg: RunConfig, device: torch.device) -> int | None:
    """The pack size recorded for the shape of `cfg` on `device`; None when none is (or it cannot be read)."""
    try:
        return int(json.loads(fit_file(ckpt_dir, cfg, device).read_text())["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_fit(ckpt_dir: Path, cfg: RunConfig, device: torch.device, k: int) -> Path:
    """Record that packs of the shape of `cfg` on `device` start as sub-packs of at most k runs (after a larger one
    ran out of memory); a smaller size already recorded stands. Returns the file."""
    path = fit_file(ckpt_dir, cfg, device)
    known = recorded_fit(ckpt_dir, cfg, device)
    if known is None or k < known:
        atomic_write_bytes(path, json.dumps({"runs": k, **shape(cfg, device)}, indent=1).encode())
    return path
