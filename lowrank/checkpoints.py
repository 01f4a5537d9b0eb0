"""Checkpoint files bound to their run: each carries the run id, a hash of the run's config and a checksum.

A file is torch.save of {run_id, config_hash, epoch, sha256, payload}, with the payload (lowrank.engine.records' run
state: tensors, numbers, strings and containers only) serialised by torch.save into bytes whose SHA-256 is
`sha256`, held as a uint8 tensor (written raw; bytes, as older files hold them, pickle at 1.5x their size and
~6x the time, a stop's cost). Both levels load with weights_only=True, so a file dropped into a results folder cannot run code.
Another run's checkpoint is refused; a corrupt one is reported and the previous checkpoint (one is kept) used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import torch

from lowrank import layout
from lowrank.config import RunConfig
from lowrank.errors import UserError
from lowrank.logs import atomic_write_bytes

FIELDS = ("run_id", "config_hash", "epoch", "sha256", "payload")


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used; the message names the file."""


class CheckpointMismatch(CheckpointError):
    """A valid checkpoint of another run (or of other settings) under this run's name."""


class CorruptCheckpoint(CheckpointError):
    """A checkpoint that cannot be read or fails its checksum."""


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the run's settings: binds a checkpoint to everything that determines the run."""
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()


def checkpoint_path(ckpt_dir: Path, cfg: RunConfig) -> Path:
    """Where a run's checkpoint lives (outside its final outputs, so a failed job's cleanup keeps it)."""
    return layout.checkpoint_file(ckpt_dir, cfg.run_id)


def save(path: Path, cfg: RunConfig, payload: dict, keep_previous: bool = True) -> None:
    """Write run `cfg`'s checkpoint atomically, moving the one it replaces to layout.previous_checkpoint_file (or
    dropping that one: a finished run's final, logs-only checkpoint needs no predecessor)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    out = io.BytesIO()
    torch.save({"run_id": cfg.run_id, "config_hash": config_hash(cfg), "epoch": payload["epoch"],
                "sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, out)
    path, prev = Path(path), layout.previous_checkpoint_file(path)
    if keep_previous and path.exists():
        os.replace(path, prev)
    atomic_write_bytes(path, out.getvalue())
    if not keep_previous:
        prev.unlink(missing_ok=True)


def read(path: Path, cfg: RunConfig) -> dict:
    """Run `cfg`'s state from checkpoint `path`: CheckpointMismatch if it is another run's, CorruptCheckpoint if it
    cannot be read or its payload fails the checksum."""
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(wrapper, dict) or set(wrapper) != set(FIELDS):
            raise ValueError("not a lowrank checkpoint")
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: it cannot be read ({type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    if (wrapper["run_id"], wrapper["config_hash"]) != (cfg.run_id, config_hash(cfg)):
        raise CheckpointMismatch(f"checkpoint {path} belongs to run {wrapper['run_id']} (config hash "
                                 f"{wrapper['config_hash'][:12]}), not to run {cfg.run_id} (config hash "
                                 f"{config_hash(cfg)[:12]}): move it away or delete it.")
    data = wrapper["payload"]
    data = data if isinstance(data, bytes) else data.numpy().tobytes()  # bytes in older files
    if hashlib.sha256(data).hexdigest() != wrapper["sha256"]:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: its payload fails its SHA-256 checksum")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_latest(ckpt_dir: Path, cfg: RunConfig, log: Callable[[str], None]) -> dict | None:
    """Run `cfg`'s newest good checkpoint, falling back to the previous one past a corrupt one (saying so in the
    log); None when there is none (a corrupt one left: the run restarts, also said). Another run's is refused."""
    path = checkpoint_path(ckpt_dir, cfg)
    candidates = [p for p in (path, layout.previous_checkpoint_file(path)) if p.exists()]
    for i, candidate in enumerate(candidates):
        try:
            return read(candidate, cfg)
        except CorruptCheckpoint as err:
            then = (f"resuming from the previous checkpoint {candidates[i + 1]}" if i + 1 < len(candidates)
                    else f"no good checkpoint is left: run {cfg.run_id} restarts from epoch 0")
            log(f"{err}; {then} (delete the corrupt file if this recurs).")
    return None
