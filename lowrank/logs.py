"""The per-run log files: their schema, atomic writing, and reading.

A finished run directory holds (``epoch`` always counts completed training epochs; 0 = initialisation):

* ``evals.csv`` — one row per evaluation epoch (every ``eval_every`` epochs from 0, and the last):
  ``epoch, lr, train_loss, train_acc, test_loss, test_acc`` (mean cross-entropy and accuracy over the whole
  un-augmented train / test set in eval mode; ``lr`` is the learning rate of the epoch that follows).
* ``layers.csv`` — one row per epoch (0..last) and rank layer:
  ``epoch, layer, m, rows, cols, fro_norm, spectral_norm, stable_rank``.
* ``ranks.csv`` — one row per epoch, rank layer and threshold: ``epoch, layer, eps, rank`` where
  rank = #{σ_i(W/‖W‖_F) > eps}.
* ``singular_values.npz`` — at every evaluation epoch: ``epochs`` (int array) and, per rank layer,
  ``<layer>`` of shape (len(epochs), min(rows, cols)): descending singular values of W/‖W‖_F (float32).
* ``summary.json`` — ``run_id``, ``config`` (the RunConfig), ``status`` ("finished" or "diverged"),
  ``diverged_epoch`` and ``diverged_reason`` ("nonfinite_loss" or "early_stop"), ``epochs_completed``,
  ``final`` (last evaluation and average rank per eps), ``layers`` (name, shape, m), ``code`` (git commit and
  dirty flag, SHA-256 of the lowrank sources: lowrank.provenance), ``versions``, and ``runtime`` (device, GPU
  kernels and step mode, host, wall time, start/end: the only fields that differ between identical runs).

lowrank.layout.RUN_FILES names them. ``summary.json`` is written last, so its presence marks a complete run; every
file is written to a temporary name and renamed into place, so a half-written log never looks finished. A run still
training writes the same files, its logs so far, to its live folder (lowrank.engine.live), never to the runs
folder: ``status`` "running", and its runtime's wall time and end as of the writing.
``check_run`` validates a run's files against its summary where they are consumed; ``retire`` marks a damaged
run (layout.retired_file), so the pipeline's next start rewrites the run's logs from its final checkpoint (no
retraining) and removes the mark; its files stay until then, so other jobs reading the run in the same start fail
with the same sentence, not with a missing input.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank import errors
from lowrank.config import RunConfig
from lowrank.layout import RUN_FILES, retired_file, run_file

EVAL_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]
LAYER_COLUMNS = ["epoch", "layer", "m", "rows", "cols", "fro_norm", "spectral_norm", "stable_rank"]
RANK_COLUMNS = ["epoch", "layer", "eps", "rank"]
RUNNING, FINISHED, DIVERGED = "running", "finished", "diverged"  # a run's status; only the last two are logged
NONFINITE_LOSS, EARLY_STOP = "nonfinite_loss", "early_stop"  # why a run diverged (its diverged_reason)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename: readers see the old file or the whole new one; a failed
    write removes its temporary and names `path` (a full disk fails in a write, which names no file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk: leave no half-written temporary behind
        tmp.unlink(missing_ok=True)
        raise errors.naming(path, err) from err
    except BaseException:  # a kill mid-write: the same
        tmp.unlink(missing_ok=True)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A .npz (np.load-compatible) with fixed timestamps, so equal arrays give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), npy.getvalue())
    return buf.getvalue()


def csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    """Rows as CSV with full float precision (repr), deterministic."""
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format=None).encode()


def write_run(out_dir: Path, *, evals: list[dict], layers: list[dict], ranks: list[dict],
              spectra: dict[str, np.ndarray], summary: dict) -> None:
    """Write a run's five log files atomically, summary.json last, then remove the run's retired mark (retire)."""
    atomic_write_bytes(run_file(out_dir, "evals"), csv_bytes(evals, EVAL_COLUMNS))
    atomic_write_bytes(run_file(out_dir, "layers"), csv_bytes(layers, LAYER_COLUMNS))
    atomic_write_bytes(run_file(out_dir, "ranks"), csv_bytes(ranks, RANK_COLUMNS))
    atomic_write_bytes(run_file(out_dir, "spectra"), npz_bytes(spectra))
    atomic_write_bytes(run_file(out_dir, "summary"), (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    retired_file(out_dir).unlink(missing_ok=True)


def read_summary(run_dir: Path) -> dict:
    """The run's summary.json."""
    return json.loads(run_file(run_dir, "summary").read_text())


def read_table(run_dir: Path, name: str) -> pd.DataFrame:
    """One of the run's CSV logs ("evals", "layers" or "ranks")."""
    return pd.read_csv(run_file(run_dir, name))


def read_spectra(run_dir: Path) -> dict[str, np.ndarray]:
    """The saved singular values: {"epochs": ..., <layer>: (n_evals, n)}."""
    with np.load(run_file(run_dir, "spectra")) as z:
        return {k: z[k] for k in z.files}


class DamagedRun(errors.UserError, ValueError):
    """A run's log file is missing, unreadable or disagrees with its summary.json; names the file."""

    def __init__(self, path: Path, why: str):
        self.path = Path(path)
        super().__init__(f"run {self.path.parent.name}: {self.path} is damaged: {why}.")


def _read(path: Path, reader: Callable):
    """reader(path), any failure to read it reported as a DamagedRun naming the file."""
    if not path.is_file():
        raise DamagedRun(path, "the file is missing")
    try:
        return reader(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise DamagedRun(path, f"it cannot be read ({type(err).__name__}: {err})") from None


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A CSV log read strictly: the expected header, every row complete (as many fields as columns, the file ending
    with its newline: a cut file fails here) and every value but `layer` a number (empty = NaN, a diverged loss)."""
    text = _read(path, lambda p: p.read_text())
    lines = text.split("\n")
    if lines[0].split(",") != columns:
        raise DamagedRun(path, f"its columns are {lines[0].split(',')}, expected {columns}")
    rows = lines[1:-1] if text.endswith("\n") else lines[1:]
    short = [line.count(",") + 1 for line in rows if line.count(",") != len(columns) - 1]
    if short:
        raise DamagedRun(path, f"a row has no {'/'.join(columns[min(short):])} value (truncated?)")
    if not text.endswith("\n"):
        raise DamagedRun(path, "its last row has no line end (truncated?)")
    table = pd.read_csv(io.StringIO(text))
    for column in (c for c in columns if c != "layer"):
        values = pd.to_numeric(table[column], errors="coerce")
        if (values.isna() & table[column].notna()).any():
            raise DamagedRun(path, f"a value of column {column} is not a number")
    return table


def _check_columns(path: Path, table: pd.DataFrame, keys: list[str]) -> None:
    """The key columns of every row hold a value."""
    if table[keys].isna().any().any():
        raise DamagedRun(path, f"a row has no {'/'.join(keys)} value (truncated?)")


def _check_layers(run_dir: Path, names: list[str], done: int, diverged: bool) -> list[int]:
    """layers.csv: every layer once per epoch, up to epochs_completed (one less for a run that diverged while
    training, whose last epoch was never observed), its shape columns present (a matrix that decayed to zero has
    NaN norms, finished or not); returns the observed epochs."""
    path = run_file(run_dir, "layers")
    layers = _read_csv(path, LAYER_COLUMNS)
    _check_columns(path, layers, ["epoch", "layer", "m", "rows", "cols"])  # norms of a zero matrix are NaN
    epochs = sorted(int(e) for e in layers["epoch"].unique())
    last = epochs[-1] if epochs else -1
    if last not in ({done, done - 1} if diverged else {done}):
        raise DamagedRun(path, f"its last epoch is {last} but {RUN_FILES['summary']} says {done} epochs "
                               f"completed")
    grid = pd.MultiIndex.from_product([epochs, names])
    if len(layers) != len(grid) or not grid.isin(layers.set_index(["epoch", "layer"]).index).all():
        raise DamagedRun(path, f"it has {len(layers)} rows, expected {len(grid)} "
                               f"({len(epochs)} epochs × {len(names)} layers)")
    return epochs


def _check_ranks(run_dir: Path, epochs: list[int], names: list[str], n_eps: int) -> None:
    """ranks.csv: one row per observed epoch × layer × ε."""
    path = run_file(run_dir, "ranks")
    ranks = _read_csv(path, RANK_COLUMNS)
    _check_columns(path, ranks, RANK_COLUMNS)
    expected = len(epochs) * len(names) * n_eps
    if (len(ranks) != expected or ranks.groupby(["epoch", "layer"]).size().ne(n_eps).any()
            or sorted(int(e) for e in ranks["epoch"].unique()) != epochs):
        raise DamagedRun(path, f"it has {len(ranks)} rows, expected {expected} ({len(epochs)} epochs × "
                               f"{len(names)} layers × {n_eps} eps)")


def _check_evaluations(run_dir: Path, cfg: RunConfig, epochs: list[int], layers: list[dict], finished: bool) -> None:
    """evals.csv at increasing observed epochs ending with the run's last evaluation (cfg.eval_epochs up to its
    last observed epoch), each value present in a finished run; and the spectra saved at exactly those epochs, one
    row per evaluation of min(rows, cols) singular values per layer. A lost row is blamed on the file that lost it."""
    path = run_file(run_dir, "evals")
    evals = _read_csv(path, EVAL_COLUMNS)
    _check_columns(path, evals, EVAL_COLUMNS if finished else ["epoch"])
    evaluated = evals["epoch"].tolist()
    if evaluated != sorted(set(evaluated)) or not set(evaluated) <= set(epochs):
        raise DamagedRun(path, f"its epochs {evaluated} are not increasing epochs of {RUN_FILES['layers']}")
    last = [e for e in cfg.eval_epochs() if e <= epochs[-1]][-1:] if epochs else []
    if not set(last) <= set(evaluated):
        raise DamagedRun(path, f"it lacks the run's last evaluation, at epoch {last[0]} (truncated?)")
    spectra_path = run_file(run_dir, "spectra")
    spectra = _read(spectra_path, lambda p: read_spectra(p.parent))
    saved = spectra.get("epochs", np.empty(0)).tolist()
    if saved != evaluated:
        lost = sorted(set(saved) - set(evaluated))
        if lost and set(evaluated) < set(saved):
            raise DamagedRun(path, f"it lacks the evaluations at epochs {lost} that {RUN_FILES['spectra']} holds")
        raise DamagedRun(spectra_path, f"its epochs differ from the evaluations in {RUN_FILES['evals']} "
                                           f"({evaluated})")
    path = spectra_path
    for layer in layers:
        want = (len(evaluated), min(layer["shape"]))
        got = spectra[layer["name"]].shape if layer["name"] in spectra else None
        if got != want:
            raise DamagedRun(path, f"layer {layer['name']} has shape {got}, expected {want}")


def check_run(run_dir: Path, run_id: str | None = None) -> dict:
    """Validate a run's logs against its summary.json, and the summary against itself and the run expected there
    (`run_id`: the pipeline's folders are named by it; its run id and its config's are that run's), and return the
    summary (see _check_layers, _check_ranks, _check_evaluations): a damaged
    or foreign file is a DamagedRun naming it, never a figure drawn around it."""
    run_dir = Path(run_dir)
    path = run_file(run_dir, "summary")
    summary = _read(path, lambda p: json.loads(p.read_text()))
    try:
        layers, cfg = summary["layers"], RunConfig.from_dict(summary["config"])
        names = [layer["name"] for layer in layers]
        done, finished = int(summary["epochs_completed"]), summary["status"] == FINISHED
    except (KeyError, TypeError, ValueError) as err:
        raise DamagedRun(path, f"it lacks a field or holds a bad one ({err})") from None
    expected = run_id or cfg.run_id
    if summary.get("run_id") != expected or cfg.run_id != expected:
        raise DamagedRun(path, f"it is the summary of run {summary.get('run_id')} (config of {cfg.run_id}), not of "
                               f"{expected} (copied from another run?)")
    epochs = _check_layers(run_dir, names, done, not finished)
    _check_ranks(run_dir, epochs, names, len(cfg.eps))
    _check_evaluations(run_dir, cfg, epochs, layers, finished)
    return summary


def retire(err: DamagedRun) -> str:
    """Mark the damaged run retired (layout.retired_file), so the workflow's next start rewrites its logs from its
    final checkpoint; return the error with what was done and what to do. Its files stay: the other jobs of this
    start that read the run fail with the same sentence."""
    mark = retired_file(err.path.parent)
    atomic_write_bytes(mark, f"{err}\n".encode())
    return (f"{err} Marked it retired ({mark}): rerun the same snakemake command to rewrite this run's logs from "
            f"its final checkpoint, once, for every figure (no retraining; without one the run is trained again).")
