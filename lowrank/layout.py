"""The results layout: where every file of a build lives, for the workflow (common.smk) and the package alike.

Torch-free and pure (it imports nothing of the package): each function maps a root folder and a name to a path, so
moving a file moves it everywhere; lowrank.logs says what the files of a run hold.
"""

from __future__ import annotations

from pathlib import Path

# the log files of one run by what they hold (lowrank.logs), summary.json last: its presence marks a complete run
RUN_FILES = {"evals": "evals.csv", "layers": "layers.csv", "ranks": "ranks.csv", "spectra": "singular_values.npz",
             "summary": "summary.json"}


def dataset_file(data_root: str | Path, name: str) -> Path:
    """The prepared dataset `name` (lowrank.data.prepare writes it, training reads it)."""
    return Path(data_root) / f"{name}.pt"


def runs_dir(results: str | Path) -> Path:
    """The folder holding one log folder per run."""
    return Path(results) / "runs"


def run_dir(runs: str | Path, run_id: str) -> Path:
    """Where run `run_id`'s logs live inside the runs folder `runs` (runs_dir)."""
    return Path(runs) / run_id


def run_file(run: str | Path, what: str) -> Path:
    """The log file holding `what` (a key of RUN_FILES) in the run folder `run`."""
    return Path(run) / RUN_FILES[what]


def run_files(runs: str | Path, run_id: str) -> list[Path]:
    """The log files run `run_id` writes (RUN_FILES, summary.json last)."""
    return [run_file(run_dir(runs, run_id), what) for what in RUN_FILES]


def retired_file(run: str | Path) -> Path:
    """The mark of a run whose logs were found damaged (lowrank.logs.retire) in run folder `run`: the run is not
    logged while it is there, and the training job that rewrites the logs removes it."""
    return Path(run) / "retired.txt"


def live_dir(results: str | Path) -> Path:
    """The folder of the partial logs of runs still training (lowrank.engine.live), one run_dir per run: never a
    finished run's logs, so nothing that reads the runs folder takes them for results."""
    return Path(results) / "live"


def checkpoints_dir(results: str | Path) -> Path:
    """Checkpoints live outside every rule's outputs, so a failed job's cleanup keeps them."""
    return Path(results) / "checkpoints"


def checkpoint_file(ckpt_dir: str | Path, run_id: str) -> Path:
    """Run `run_id`'s latest checkpoint in folder `ckpt_dir`."""
    return Path(ckpt_dir) / f"{run_id}.pt"


def previous_checkpoint_file(checkpoint: str | Path) -> Path:
    """Where the checkpoint before `checkpoint` (a checkpoint_file) is kept, to resume from when that one is corrupt."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def lease_file(ckpt_dir: str | Path, run_id: str) -> Path:
    """Run `run_id`'s lease (lowrank.lease) in checkpoint folder `ckpt_dir`: next to its checkpoint, one per run."""
    return Path(ckpt_dir) / f"{run_id}.lease"


def pace_file(ckpt_dir: str | Path, run_id: str) -> Path:
    """Run `run_id`'s measured pace (lowrank.pace) in checkpoint folder `ckpt_dir`: next to its checkpoint."""
    return Path(ckpt_dir) / f"{run_id}.pace.json"


def pack_fit_file(ckpt_dir: str | Path, shape: str) -> Path:
    """The largest pack known to fit in a device's memory for one pack shape (lowrank.engine.memory), in checkpoint
    folder `ckpt_dir`."""
    return Path(ckpt_dir) / "fit" / f"{shape}.json"


def default_checkpoints_dir(out: str | Path) -> Path:
    """The checkpoint folder of a run trained by hand into `out` without --ckpt-dir: next to its logs."""
    return Path(f"{out}.ckpt")


def table_file(results: str | Path, name: str) -> Path:
    """The tidy table behind figure `name` (or a comparison table)."""
    return Path(results) / "tables" / f"{name}.csv"


def figure_file(results: str | Path, name: str, ext: str) -> Path:
    """A rendered figure."""
    return Path(results) / "figures" / f"{name}.{ext}"


def preview_file(results: str | Path, name: str, ext: str) -> Path:
    """A preview of figure `name` drawn from finished and partial runs (python -m lowrank.status --preview)."""
    return Path(results) / "preview" / f"{name}.{ext}"


def scorecard_file(results: str | Path, ext: str) -> Path:
    """The claims scorecard (md or html)."""
    return Path(results) / f"scorecard.{ext}"


def provenance_file(results: str | Path) -> Path:
    """The provenance record (code version, environment)."""
    return Path(results) / "provenance.md"


def front_page_file(results: str | Path) -> Path:
    """The report's front page, written once the scorecard exists."""
    return Path(results) / "report" / "front_page.rst"


def log_file(results: str | Path, rule: str, name: str) -> Path:
    """The log of one job of `rule` (`name`: its wildcard or pack)."""
    return Path(results) / "logs" / rule / f"{name}.log"


def attempts_file(results: str | Path, pack: str) -> Path:
    """A training job's history: every attempt's log behind a header, appended (Snakemake deletes the rule's
    declared log when an attempt starts, so that log holds the latest attempt only)."""
    return Path(results) / "logs" / "train" / "attempts" / f"{pack}.log"
