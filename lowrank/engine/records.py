"""What one run of a pack carries between epochs: its state and status, the records it logs, and the glue to its
checkpoint (lowrank.checkpoints writes and reads the files) and to its final log files (lowrank.logs)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import lowrank
from lowrank import checkpoints, logs, metrics, provenance
from lowrank.config import RunConfig


@dataclass
class RunState:
    """What one run of a pack carries between epochs (and into its checkpoint)."""

    cfg: RunConfig
    out: Path
    epoch: int = 0  # epochs completed
    step: int = 0  # steps of epoch `epoch + 1` trained (0 but in a run stopped mid-epoch by a signal)
    order: torch.Generator = field(default_factory=torch.Generator)  # data order, on the CPU
    aug: torch.Generator | None = None  # augmentation, on the training device
    evals: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    ranks: list = field(default_factory=list)
    spectra: dict = field(default_factory=dict)  # layer -> list of arrays, one per evaluation
    spectra_epochs: list = field(default_factory=list)
    status: str = logs.RUNNING
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    wall_time: float = 0.0


def new_state(cfg: RunConfig, out: Path | None, device: torch.device) -> RunState:
    """A run at epoch 0: its data-order (and augmentation) generator seeded from the run's seed."""
    s = RunState(cfg=cfg, out=Path(out) if out is not None else None)
    s.order.manual_seed(cfg.seed)
    if cfg.augmentation != "none":
        s.aug = torch.Generator(device=device)
        s.aug.manual_seed(cfg.seed + 1)
    return s


def conclude(s: RunState, epoch: int, reason: str | None = None) -> None:
    """The one status transition after `epoch`: a running run diverges for `reason` (logs.NONFINITE_LOSS or
    logs.EARLY_STOP), or, given none, finishes if `epoch` is its last; a run that stopped keeps its first verdict."""
    if s.status != logs.RUNNING:
        return
    if reason is not None:
        s.status, s.diverged_epoch, s.diverged_reason = logs.DIVERGED, epoch, reason
    elif epoch == s.cfg.epochs:
        s.status = logs.FINISHED


def record_layers(s: RunState, epoch: int, measured: dict, layers: list, spectra: bool) -> None:
    """Append one epoch of per-layer norms and ranks (and, at evaluations, the spectra) to the run's logs."""
    for layer in layers:
        fro, sv = measured[layer.name]
        s.layers.append({"epoch": epoch, "layer": layer.name, "m": layer.m, "rows": layer.shape[0],
                         "cols": layer.shape[1], **metrics.layer_norms(fro, sv)})
        for eps in s.cfg.eps:
            s.ranks.append({"epoch": epoch, "layer": layer.name, "eps": eps, "rank": int(metrics.eps_rank(sv, eps))})
        if spectra:
            s.spectra.setdefault(layer.name, []).append(sv.numpy())
    if spectra:
        s.spectra_epochs.append(epoch)


# --- checkpoints ----------------------------------------------------------------------------------------------
def log_state(s: RunState) -> dict:
    """The run's logs so far (kept in its checkpoint so a resumed run writes them unchanged); the spectra as
    tensors, which a weights_only load accepts."""
    state = {k: getattr(s, k) for k in ("evals", "layers", "ranks", "spectra_epochs", "status", "diverged_epoch",
                                        "diverged_reason", "wall_time")}
    return {**state, "spectra": {n: [torch.from_numpy(a) for a in sv] for n, sv in s.spectra.items()}}


def restore_logs(s: RunState, saved: dict) -> None:
    """Inverse of log_state."""
    for k, v in saved.items():
        setattr(s, k, v)
    s.spectra = {n: [t.numpy() for t in sv] for n, sv in saved["spectra"].items()}


def run_checkpoint(s: RunState, tensors: dict, device: torch.device) -> dict:
    """Everything run `s` needs to continue exactly where it is, at an epoch's end or in the middle of one: its
    position (epoch and step), its trained tensors (Pack.run_state, with the epoch's data order and running totals
    mid-epoch), its data-order generator and the random generators (those of `device` too), its logs so far."""
    return {"epoch": s.epoch, "step": s.step, **tensors, "order": s.order.get_state(),
            "aug": s.aug.get_state() if s.aug is not None else None, "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "logs": log_state(s)}


def restore_run(s: RunState, ckpt: dict, device: torch.device) -> None:
    """Inverse of run_checkpoint for all but the tensors (Pack.load_run_state restores those)."""
    s.order.set_state(ckpt["order"])
    if s.aug is not None:
        s.aug.set_state(ckpt["aug"])
    torch.set_rng_state(ckpt["rng"])
    if ckpt["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    restore_logs(s, ckpt["logs"])
    s.epoch, s.step = ckpt["epoch"], ckpt.get("step", 0)  # no step in older versions' checkpoints: an epoch's end


def shrink_checkpoint(s: RunState, ckpt_dir: Path) -> None:
    """Replace a stopped run's checkpoint by its logs alone: it is written out again, never trained again."""
    checkpoints.save(checkpoints.checkpoint_path(ckpt_dir, s.cfg), s.cfg, {"epoch": s.epoch, "logs": log_state(s)},
                     keep_previous=False)


# --- final logs -----------------------------------------------------------------------------------------------
def summary_of(s: RunState, layers: list, runtime: dict) -> dict:
    """The run's summary.json: config, outcome, final metrics, versions; `runtime` holds what varies by host
    (device, kernels, host, start; wall time and end are added here)."""
    final = dict(s.evals[-1]) if s.evals else {}
    last = max((r["epoch"] for r in s.ranks), default=None)
    final["avg_rank"] = {str(eps): float(np.mean([r["rank"] for r in s.ranks
                                                   if r["epoch"] == last and r["eps"] == eps]))
                         for eps in s.cfg.eps} if last is not None else {}
    return {
        "run_id": s.cfg.run_id, "config": s.cfg.to_dict(), "status": s.status,
        "diverged_epoch": s.diverged_epoch, "diverged_reason": s.diverged_reason, "epochs_completed": s.epoch,
        "final": final, "layers": [{"name": l.name, "param": l.param, "shape": list(l.shape), "m": l.m}
                                   for l in layers],
        "code": provenance.code_version(),
        "versions": {"lowrank": lowrank.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "runtime": {**runtime, "wall_time_s": round(s.wall_time, 3),
                    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def write_outputs(s: RunState, layers: list, runtime: dict) -> None:
    """Write the run's final logs (atomically, summary last)."""
    names = [l.name for l in layers]
    spectra = {"epochs": np.asarray(s.spectra_epochs, dtype=np.int64)}
    spectra.update({n: np.stack(s.spectra[n]) for n in names if n in s.spectra})
    logs.write_run(s.out, evals=s.evals, layers=s.layers, ranks=s.ranks, spectra=spectra,
                   summary=summary_of(s, layers, runtime))
