"""Partial logs: while a run trains, its logs so far are written at every evaluation and every checkpoint to its
live folder, layout.run_dir(live_dir, run_id) with live_dir = layout.live_dir(results), in a finished run's schemas
(lowrank.logs.write_run, file by file atomically) with summary status "running". The runs folder is written only
when a run stops, so a live folder never looks finished; `python -m lowrank.status` reads it (progress, pace, preview
figures). A stopped run's live folder is removed once its final logs are written. A resumed run's records hold every
epoch since 0 (its checkpoint keeps them), so its next write replaces the live folder whole: continued, never
duplicated. Without a live_dir (the command line's default) nothing is written.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from lowrank import layout, logs
from lowrank.engine.records import RunState, write_outputs


def write(states: list[RunState], layers: list, runtime: dict, live_dir: Path | None) -> None:
    """Write each running run's logs so far to its live folder (runtime's wall time and end: as of now)."""
    if live_dir is None:
        return
    for s in states:
        if s.status == logs.RUNNING:
            write_outputs(dataclasses.replace(s, out=layout.run_dir(live_dir, s.cfg.run_id)), layers, runtime)


def remove(s: RunState, live_dir: Path | None) -> None:
    """Remove a stopped run's live folder (its final logs are in the runs folder)."""
    if live_dir is not None:
        shutil.rmtree(layout.run_dir(live_dir, s.cfg.run_id), ignore_errors=True)
