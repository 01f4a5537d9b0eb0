"""Tidy per-figure tables built from the run logs, and Theorem 3.3's bound against every measured rank.

Every table holds one row per observation and repeats its run's identity: ``figure, panel, panel_label,
run_id, plot_eps`` (the ε the panel's rank curves use), the run settings ``RUN_COLUMNS``, any other varied
value, ``status`` ("finished"/"diverged") with ``diverged_epoch`` and ``diverged_reason``, and ``code``
(provenance.code_label: the code that trained the run). A diverged run is kept and marked;
a run without logs is an error naming it, and one whose logs disagree with its summary.json (logs.check_run)
an error naming the file. Per kind (see ``figure_table``):

* curves     — ``epoch, eps, avg_rank, train_loss, train_acc, test_loss, test_acc`` at every evaluation epoch
  and every logged ε (filter ``eps == plot_eps`` for the figure's curves).
* heatmap    — the last evaluation of each run at its panel's plot ε: ``epoch, eps, avg_rank, train_acc, ...``.
* norm_ratio — ``epoch, layer, layer_index, fro_norm, ratio`` with ratio = ‖W_t‖_F/‖W_{t−1}‖_F (epochs ≥ 1),
  ``lr_epoch`` (the learning rate of epoch t) and ``steps_per_epoch`` (SGD steps per epoch, last batch partial).
* spectra    — ``epoch, layer, layer_index, rows, cols, index, sigma`` (σ of W/‖W‖_F at the last saved epoch).
* bound      — as curves, at the plot ε and every ``bound_eps`` (ranks at ε not logged are counted from the
  saved spectra), plus ``m`` (largest m_l), ``width`` (largest output dimension of a rank layer), ``trivial``
  (the largest possible average rank: mean of min(rows, cols)) and per λ reading c in bound.CONVENTIONS
  ``bound_c`` (at the initial μ, as the paper's Fig 18), ``informative_c`` (bound_c < trivial) and ``eps_star_c``
  (the ε above which the bound is informative).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank import grid, layout, logs
from lowrank.bound import CONVENTIONS, informative_eps, rank_bound
from lowrank.config import RunConfig
from lowrank.logs import FINISHED
from lowrank.metrics import eps_rank
from lowrank.provenance import code_label

RUN_COLUMNS = ("arch", "dataset", "batch_size", "lr", "weight_decay", "momentum", "epochs", "gamma", "seed")
STATUS_COLUMNS = ["run_id", "status", "diverged_epoch", "diverged_reason", "code"]


def run_path(runs_dir: Path, run_id: str) -> Path:
    """The run's log directory; an error naming the run when it has no complete logs (no summary.json)."""
    path = layout.run_dir(runs_dir, run_id)
    summary = layout.run_file(path, "summary")
    if not summary.is_file():
        raise FileNotFoundError(f"run {run_id} has no logs: {summary} does not exist "
                                f"(train it first, or check runs_dir={str(runs_dir)!r}).")
    return path


def run_settings(cfg: RunConfig) -> dict:
    """The run settings every table carries (scalars only, so tables survive a CSV round trip)."""
    return {k: getattr(cfg, k) for k in RUN_COLUMNS}


def average_rank(ranks: pd.DataFrame) -> pd.DataFrame:
    """Unweighted mean of the per-layer ranks per (run_id, epoch, eps): the paper's average rank (np.mean)."""
    out = ranks.groupby(["run_id", "epoch", "eps"], as_index=False)["rank"].mean()
    return out.rename(columns={"rank": "avg_rank"})


def last_evaluation(table: pd.DataFrame, per: tuple[str, ...] = ("run_id",)) -> pd.DataFrame:
    """The rows of each run's last evaluation: those at the largest epoch of their `per` group (index kept)."""
    return table[table["epoch"] == table.groupby(list(per))["epoch"].transform("max")]


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each (figure, panel, run)'s last evaluation at its panel's plot ε: the 'end of training' values."""
    at = table[np.isclose(table["eps"], table["plot_eps"])]
    return last_evaluation(at, ("figure", "panel", "run_id")).reset_index(drop=True)


def _read_all(runs_dir: Path, run_ids, name: str) -> pd.DataFrame:
    """One CSV log ("evals", "layers" or "ranks") of every run, stacked with a run_id column."""
    return pd.concat([logs.read_table(run_path(runs_dir, rid), name).assign(run_id=rid) for rid in run_ids],
                     ignore_index=True)


def _summaries(runs_dir: Path, run_ids) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run: (status frame, rank-layer frame with run_id, layer, layer_index, m, rows, cols)."""
    status, layers = [], []
    for rid in run_ids:
        s = logs.check_run(run_path(runs_dir, rid), rid)  # every run's logs are validated before any is used
        status.append({"run_id": rid, "status": s["status"], "diverged_epoch": s.get("diverged_epoch"),
                       "diverged_reason": s.get("diverged_reason"), "code": code_label(s.get("code"))})
        layers += [{"run_id": rid, "layer": l["name"], "layer_index": i, "m": l["m"], "rows": l["shape"][0],
                    "cols": l["shape"][1]} for i, l in enumerate(s["layers"])]
    return pd.DataFrame(status, columns=STATUS_COLUMNS), pd.DataFrame(layers)


def spectrum_ranks(run_dir: Path, eps: list[float]) -> pd.DataFrame:
    """Ranks #{σ > ε} counted from the saved spectra (evaluation epochs only), for ε the run did not log.

    ε is compared in the spectra's own float32, as the trainer's torch count does (a Python float is weak).
    """
    spectra = logs.read_spectra(run_dir)
    epochs = spectra.pop("epochs")
    parts = [pd.DataFrame({"epoch": epochs, "layer": layer, "eps": float(e), "rank": eps_rank(sv, float(e))})
             for layer, sv in spectra.items() for e in eps]
    return pd.concat(parts, ignore_index=True)


def ranks_at(runs_dir: Path, run_ids, eps: list[float] | None = None) -> pd.DataFrame:
    """Per-layer ranks (run_id, epoch, layer, eps, rank) at the given ε (all logged ε when None)."""
    parts = []
    for rid in run_ids:
        path = run_path(runs_dir, rid)
        ranks = logs.read_table(path, "ranks")
        if eps is not None:
            want = np.asarray(eps, dtype=float)
            ranks = ranks[np.isclose(ranks["eps"].to_numpy()[:, None], want[None, :]).any(axis=1)]
            missing = [e for e in want if not np.isclose(ranks["eps"], e).any()]
            if missing:
                ranks = pd.concat([ranks, spectrum_ranks(path, missing)], ignore_index=True)
        parts.append(ranks.assign(run_id=rid))
    return pd.concat(parts, ignore_index=True)


def figure_runs_frame(config: dict, name: str) -> pd.DataFrame:
    """One row per (panel, run) of figure `name`: where it is drawn, its settings and varied values."""
    rows = []
    for fr in grid.figure_runs(config, name):
        extra = {k: json.dumps(v) if isinstance(v, (list, tuple)) else v
                 for k, v in fr.labels.items() if k not in RUN_COLUMNS}
        rows.append({"figure": name, "panel": fr.panel, "panel_label": fr.panel_label, "run_id": fr.run.run_id,
                     "plot_eps": grid.plot_eps(config, name, fr.panel), **run_settings(fr.run), **extra})
    return pd.DataFrame(rows)


def _rank_evals(runs: pd.DataFrame, runs_dir: Path, eps: list[float] | None = None) -> pd.DataFrame:
    """Runs × evaluation epochs × ε: average rank with the evaluation's losses and accuracies."""
    ids = runs["run_id"].unique()
    evals = _read_all(runs_dir, ids, "evals").drop(columns="lr")  # evals' lr is the *next* epoch's
    avg = average_rank(ranks_at(runs_dir, ids, eps))
    return runs.merge(evals, on="run_id").merge(avg, on=["run_id", "epoch"], how="left")


def _curves(config: dict, name: str, runs: pd.DataFrame, runs_dir: Path, layers: pd.DataFrame) -> pd.DataFrame:
    return _rank_evals(runs, runs_dir)


def _heatmap(config: dict, name: str, runs: pd.DataFrame, runs_dir: Path, layers: pd.DataFrame) -> pd.DataFrame:
    return final_rows(_rank_evals(runs, runs_dir))


def _norm_ratio(config: dict, name: str, runs: pd.DataFrame, runs_dir: Path,
                layers: pd.DataFrame) -> pd.DataFrame:
    norms = _read_all(runs_dir, runs["run_id"].unique(), "layers")[["run_id", "epoch", "layer", "fro_norm"]]
    norms = norms.sort_values(["run_id", "layer", "epoch"])
    prev = norms.groupby(["run_id", "layer"])["fro_norm"].shift()
    norms = norms.assign(ratio=norms["fro_norm"] / prev)[prev.notna()]
    norms = norms.merge(layers[["run_id", "layer", "layer_index"]], on=["run_id", "layer"])
    cfgs = {fr.run.run_id: fr.run for fr in grid.figure_runs(config, name)}
    norms["lr_epoch"] = [cfgs[r].lr_at(int(e)) for r, e in zip(norms["run_id"], norms["epoch"])]
    steps = {rid: c.steps_per_epoch for rid, c in cfgs.items()}
    return runs.merge(norms.assign(steps_per_epoch=norms["run_id"].map(steps)), on="run_id")


def _spectra(config: dict, name: str, runs: pd.DataFrame, runs_dir: Path, layers: pd.DataFrame) -> pd.DataFrame:
    pick = config["figures"][name].get("layers")
    parts = []
    for rid, own in layers.groupby("run_id", sort=False):
        chosen = own if pick is None else own.set_index("layer_index", drop=False).reindex(pick)
        if chosen["layer"].isna().any():
            raise ValueError(f"figures.{name}.layers={pick} is invalid: run {rid} has {len(own)} rank layers "
                             f"(indices 0..{len(own) - 1}).")
        spectra = logs.read_spectra(run_path(runs_dir, rid))
        for row in chosen.itertuples(index=False):
            sigma = spectra[row.layer][-1]
            parts.append(pd.DataFrame({"run_id": rid, "epoch": int(spectra["epochs"][-1]), "layer": row.layer,
                                       "layer_index": row.layer_index, "rows": row.rows, "cols": row.cols,
                                       "index": np.arange(1, len(sigma) + 1), "sigma": sigma.astype(float)}))
    return runs.merge(pd.concat(parts, ignore_index=True), on="run_id")


def _bound(config: dict, name: str, runs: pd.DataFrame, runs_dir: Path, layers: pd.DataFrame) -> pd.DataFrame:
    eps = sorted({*runs["plot_eps"], *map(float, config["figures"][name]["bound_eps"])})
    shape = layers.assign(trivial=np.minimum(layers["rows"], layers["cols"])).groupby("run_id", as_index=False).agg(
        m=("m", "max"), width=("rows", "max"), trivial=("trivial", "mean"))
    df = _rank_evals(runs, runs_dir, eps).merge(shape, on="run_id")
    for c in CONVENTIONS:
        df[f"bound_{c}"] = [rank_bound(int(r.m), int(r.batch_size), r.lr, r.weight_decay, r.eps, c)
                            for r in df.itertuples(index=False)]
        df[f"informative_{c}"] = df[f"bound_{c}"] < df["trivial"]
        df[f"eps_star_{c}"] = [informative_eps(int(r.m), int(r.batch_size), r.lr, r.weight_decay, r.trivial, c)
                               for r in df.itertuples(index=False)]
    return df


BUILDERS = {"curves": _curves, "heatmap": _heatmap, "norm_ratio": _norm_ratio, "spectra": _spectra,
            "bound": _bound}


def figure_table(config: dict, name: str, runs_dir: Path, only: set[str] | None = None) -> pd.DataFrame:
    """The tidy table behind figure `name`, from the logs of exactly the runs grid.figure_runs lists (`only`: of
    those among them, for a preview drawn before every run has logs: lowrank.preview)."""
    runs = figure_runs_frame(config, name)
    if only is not None:
        runs = runs[runs["run_id"].isin(only)]
    status, layers = _summaries(Path(runs_dir), runs["run_id"].unique())
    runs = runs.merge(status, on="run_id")
    kind = config["figures"][name]["kind"]
    return BUILDERS[kind](config, name, runs, Path(runs_dir), layers).reset_index(drop=True)


def _lr_at_evals(runs_dir: Path, run_ids) -> pd.DataFrame:
    """Per run and evaluation epoch: the settings and lr_epoch, the learning rate of the epoch just completed."""
    rows = []
    for rid in run_ids:
        cfg = RunConfig.from_dict(logs.read_summary(run_path(runs_dir, rid))["config"])
        epochs = logs.read_table(run_path(runs_dir, rid), "evals")["epoch"]
        rows += [{"run_id": rid, "epoch": int(e), "lr_epoch": cfg.lr_at(int(e)), **run_settings(cfg)}
                 for e in epochs]
    return pd.DataFrame(rows)


def bound_vs_rank(config: dict, runs_dir: Path, run_ids: list[str]) -> pd.DataFrame:
    """Every run × rank layer × evaluation epoch × comparison ε: measured rank vs Theorem 3.3's bound.

    bound = m_l·B·ln(2/ε)/(2·μ_t·λ) with μ_t the learning rate of the epoch just completed (the decayed one
    after a milestone; RunConfig.lr_at) and λ from weight_decay per ``switches.bound_lambda``. A run with
    weight_decay 0 has no bound: bound = inf, so holds = True and tightness = rank/bound = 0. ``trivial`` is
    min(rows, cols), the rank no matrix exceeds: the bound says something only when ``informative``
    (bound < trivial), i.e. for ε > ``eps_star``.
    """
    runs_dir = Path(runs_dir)
    eps, convention = [float(e) for e in config["comparison"]["eps"]], config["switches"]["bound_lambda"]
    status, layers = _summaries(runs_dir, run_ids)
    df = (ranks_at(runs_dir, run_ids, eps).merge(_lr_at_evals(runs_dir, run_ids), on=["run_id", "epoch"])
          .merge(layers[["run_id", "layer", "m", "rows", "cols"]], on=["run_id", "layer"]).merge(status, on="run_id"))
    df["trivial"] = np.minimum(df["rows"], df["cols"])
    combos = df[["m", "batch_size", "lr_epoch", "weight_decay", "eps", "trivial"]].drop_duplicates()
    combos["bound"] = [rank_bound(int(c.m), int(c.batch_size), c.lr_epoch, c.weight_decay, c.eps, convention)
                       for c in combos.itertuples(index=False)]
    combos["eps_star"] = [informative_eps(int(c.m), int(c.batch_size), c.lr_epoch, c.weight_decay, c.trivial,
                                          convention) for c in combos.itertuples(index=False)]
    df = df.merge(combos, on=list(combos.columns[:-2]))
    df["holds"] = df["rank"] <= df["bound"]
    df["tightness"] = df["rank"] / df["bound"]
    df["informative"] = df["bound"] < df["trivial"]
    df["convention"] = convention
    first = ["run_id", *RUN_COLUMNS, "status", "diverged_epoch", "epoch", "lr_epoch", "layer", "m", "rows", "cols",
             "eps"]
    return df[first + ["rank", "bound", "trivial", "informative", "eps_star", "holds", "tightness",
                       "convention"]].sort_values(
        ["run_id", "epoch", "layer", "eps"]).reset_index(drop=True)


# ε from below the logged thresholds (1e-3) up to just under 2, where the bound m·B·ln(2/ε)/(2μλ) reaches 0:
# wide enough that every layer's ε* (its bound's crossing of min(rows, cols)) lies on it.
EPS_CURVE = np.geomspace(1e-4, 1.99, 60)


def eps_curves(runs_dir: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture's median run: each rank layer's rank_ε and bound as functions of ε at the last evaluation.

    `table` is ``bound_vs_rank``'s: the bound, min(rows, cols) (``trivial``) and ε* come from it, so the curve uses
    the same μ_t and λ reading. The run is the (lower) median by its layers' median ε* among the finished runs
    with weight decay, neither the best nor the worst case; rank_ε on EPS_CURVE is counted from the saved spectra.
    """
    convention = table["convention"].iloc[0] if len(table) else "torch"
    done = table[(table["status"] == FINISHED) & np.isfinite(table["bound"].astype(float))]
    last = last_evaluation(done).drop_duplicates(["run_id", "layer"])
    star = (last.groupby(["arch", "run_id"], as_index=False)["eps_star"].median()
            .sort_values(["arch", "eps_star", "run_id"]))
    size = star.groupby("arch")["run_id"].transform("size")
    chosen = star.loc[star.groupby("arch").cumcount() == (size - 1) // 2, "run_id"]
    keep = ["run_id", "arch", "batch_size", "lr", "weight_decay", "epoch", "lr_epoch", "layer", "m", "trivial",
            "eps_star", "convention"]
    parts = []
    for rid in chosen:
        layers = _summaries(runs_dir, [rid])[1][["layer", "layer_index"]]
        ranks = spectrum_ranks(run_path(runs_dir, rid), list(EPS_CURVE))
        run = last.loc[last["run_id"] == rid, keep].merge(layers, on="layer")
        parts.append(run.merge(ranks, on=["epoch", "layer"]))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=keep + ["layer_index", "eps", "rank"])
    df["bound"] = [rank_bound(int(r.m), int(r.batch_size), r.lr_epoch, r.weight_decay, r.eps, convention)
                   for r in df.itertuples(index=False)]
    return df.sort_values(["arch", "layer_index", "eps"]).reset_index(drop=True)


def bound_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and ε over finished runs: how often the bound is informative, holds, and how tight it is.

    Rows without a bound (weight_decay 0) are counted in ``no_bound_rows``; ``frac_informative`` is over the
    finite bounds, and the fraction holding and the tightness are over the informative rows only, since a bound
    at or above min(rows, cols) holds from the matrix's shape alone.
    """
    done = df[df["status"] == FINISHED]
    finite = done[np.isfinite(done["bound"])]
    counts = done.groupby(["arch", "eps"]).agg(runs=("run_id", "nunique"), rows=("rank", "size"),
                                               no_bound_rows=("bound", lambda b: int(np.isinf(b).sum())))
    informative = finite.groupby(["arch", "eps"]).agg(frac_informative=("informative", "mean"),
                                                      median_eps_star=("eps_star", "median"))
    stats = finite[finite["informative"]].groupby(["arch", "eps"]).agg(frac_holds=("holds", "mean"),
                                                median_tightness=("tightness", "median"),
                                                max_tightness=("tightness", "max"))
    return counts.join(informative).join(stats).reset_index()
