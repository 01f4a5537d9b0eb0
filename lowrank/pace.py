"""The measured pace of training, recorded next to each run's checkpoint (layout.pace_file), so that the next
attempt's time limit comes from how fast this pack trains where it runs (lowrank.plan.Pack.minutes), not from the
resources table's step times, measured on one GPU; and so that a pack whose attempt made no progress stops.

The training engine writes a run's record when an attempt starts training it and at each of its checkpoints
(lowrank.engine.loop): the wall seconds per step of the pack it trains in (evaluations and checkpoints included;
null until an attempt measured it), that pack's size, the steps it has left, the steps it has done, the steps it
had done when this attempt started, and the SLURM job of that start. Torch-free and pure JSON: the workflow reads
it when it submits a job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from lowrank import layout
from lowrank.logs import atomic_write_bytes


def read(ckpt_dir: Path, run_id: str) -> dict | None:
    """Run `run_id`'s record; None when it has none (or it cannot be read: the table's estimate is used)."""
    try:
        record = json.loads(layout.pace_file(ckpt_dir, run_id).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write(ckpt_dir: Path, run_id: str, **fields) -> None:
    """Update run `run_id`'s record with `fields` (a seconds_per_step of None keeps the one measured before)."""
    record = read(ckpt_dir, run_id) or {"seconds_per_step": None}
    record.update({k: v for k, v in fields.items() if v is not None or k != "seconds_per_step"})
    record["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_bytes(layout.pace_file(ckpt_dir, run_id), json.dumps(record, indent=1).encode())


def seconds_left(ckpt_dir: Path, run_ids: Iterable[str]) -> float | None:
    """The wall seconds the runs need to finish at their measured pace, one pack after another: each run's
    seconds per step shared among its pack's runs, times its steps left. None unless every run not done has a
    measured pace."""
    total = 0.0
    for run_id in run_ids:
        record = read(ckpt_dir, run_id)
        if record is not None and record["steps_left"] == 0:
            continue
        if record is None or record["seconds_per_step"] is None:
            return None
        total += record["seconds_per_step"] / record["pack_runs"] * record["steps_left"]
    return total


def stalled(ckpt_dir: Path, run_ids: Iterable[str], job: str) -> str | None:
    """Why the runs' last attempt made no progress, in one sentence; None when it made some, when no run has a
    record (no attempt got as far as training), when every run is done, or when that attempt was an earlier start
    of SLURM job `job` (a requeued job, preempted perhaps before its first step)."""
    records = [r for r in (read(ckpt_dir, run_id) for run_id in run_ids) if r is not None]
    left = [r for r in records if r["steps_left"] > 0]
    if not left or any(r["steps_done"] > r["steps_done_at_start"] for r in left):
        return None
    if job and all(r.get("job") == job for r in left):
        return None
    return (f"no run of this pack advanced in its last attempt (it started and ended with {left[0]['steps_done']} "
            f"steps done of {left[0]['steps_done'] + left[0]['steps_left']}): it failed or was stopped before its "
            "first checkpoint, or its time limit is shorter than its start-up; not retrying it (its attempts log "
            "says more; run snakemake again to try once more).")
