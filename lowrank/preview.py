"""Preview figures: a figure drawn while its runs train, by the real figures' code (lowrank.aggregate.figure_table,
lowrank.plots.render), from the runs that have logs: final ones (the runs folder) or else partial ones (the live
folder, lowrank.engine.live); runs without logs are left out. A run still training is drawn as a finished one, up to
its last evaluation (its curve ends there). Previews go to layout.preview_file; the figures folder stays Snakemake's,
drawn from complete runs only. Every title starts `PREVIEW — n of N runs finished, epochs ≤ e`: n of the figure's N
runs have final logs (finished or diverged), and every run drawn reaches epoch e (the least advanced one's last).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from lowrank import grid, layout, logs
from lowrank.aggregate import figure_table
from lowrank.plots import render


class NothingToDraw(ValueError):
    """No run of the figure has logs yet."""


def sources(results: Path, run_ids: list[str]) -> dict[str, Path]:
    """Each run's log folder to draw, final logs before partial ones; runs with neither left out."""
    found = {}
    for rid in run_ids:
        for folder in (layout.runs_dir(results), layout.live_dir(results)):
            if layout.run_file(layout.run_dir(folder, rid), "summary").is_file():
                found[rid] = layout.run_dir(folder, rid)
                break
    return found


def preview_table(config: dict, name: str, found: dict[str, Path], partial: set[str]
                  ) -> tuple[pd.DataFrame, list[str]]:
    """Figure `name`'s table from the runs `found` (through a runs folder of links to them), and the `partial` runs
    left out because their logs disagree (being rewritten as this reads them, or cut by a kill between two files)."""
    found, left_out = dict(found), []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for rid, path in found.items():
            layout.run_dir(runs, rid).symlink_to(path.resolve(), target_is_directory=True)
        while True:
            try:
                return figure_table(config, name, runs, only=set(found)), left_out
            except logs.DamagedRun as err:
                rid = err.path.parent.name
                if rid not in partial or len(found) == 1:
                    raise
                left_out.append(rid)
                del found[rid]
                layout.run_dir(runs, rid).unlink()


def draw(config: dict, name: str, run_ids: list[str]) -> tuple[Path, str]:
    """Draw figure `name` (drawing runs `run_ids`) from the runs with logs; return its PNG and its title's note."""
    results = Path(config["results"])
    found = sources(results, run_ids)
    if not found:
        raise NothingToDraw(f"none of its {len(run_ids)} runs has logs yet")
    partial = {rid for rid, path in found.items() if path.parent == layout.live_dir(results)}
    table, left_out = preview_table(config, name, found, partial)
    done = len(found) - len(partial)
    reached = int(table.groupby("run_id")["epoch"].max().min())
    note = f"PREVIEW — {done} of {len(run_ids)} runs finished, epochs ≤ {reached}"
    title = f"{note}: {config['figures'][name]['title']}"
    table = table.assign(status=table["status"].replace(logs.RUNNING, logs.FINISHED))  # drawn as far as it got
    png = layout.preview_file(results, name, "png")
    render(grid.merge(config, {"figures": {name: {"title": title}}}), name, table, png,
           layout.preview_file(results, name, "pdf"))
    return png, note + (f" (left out, logs being rewritten: {', '.join(left_out)})" if left_out else "")
