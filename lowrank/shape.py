"""Theorem 3.3's shape: every run's final rank against s = B/(2μ_T λ), the one quantity its bound grows with.

The bound m·B·ln(2/ε)/(2μλ) depends on B, μ and λ only through s, so whichever of them moves, the rank should grow
with s. ``shape_table`` puts each run with λ > 0 on that axis once per panel — model (architecture with its size
options), dataset (with its options) and plot ε — from the figure tables (the final average rank at the plot ε)
and the bound comparison (μ_T, the learning rate of the last evaluated epoch, and each layer's min(rows, cols));
``panel_fits`` gives each panel's Kendall τ and log-log slope. The scorecard and the figure both read them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from lowrank import grid
from lowrank.aggregate import final_rows
from lowrank.bound import paper_lambda
from lowrank.logs import FINISHED

RANK_KINDS = ("curves", "heatmap", "bound")  # the figure tables holding the average rank at their plot ε
VARIED = ("batch_size", "lr", "weight_decay")  # what s combines, in the order a label names them
MIN_RUNS, MIN_S = 6, 3  # a panel counts with at least this many runs and distinct values of s
BOOTSTRAP = 1000  # resamples of a panel's runs behind its slope's 95% interval
COLUMNS = ["panel", "panel_label", "model", "data", "eps", "run_id", "figures", "varies", "status", "batch_size",
           "lr", "lr_final", "weight_decay", "lam", "s", "avg_rank", "trivial", "rank_norm"]


def _varied(fig: dict, panel: int) -> tuple[str, ...]:
    """Which of B, μ, λ panel `panel` of figure section `fig` varies."""
    vary = {**fig.get("vary", {}), **grid.panels_of(fig)[panel].get("vary", {})}
    return tuple(k for k in VARIED if k in vary)


def _identity(config: dict, name: str) -> pd.DataFrame:
    """Per run of figure `name`: its model's name, its architecture with options and its dataset with options."""
    base = config["datasets"]
    rows = []
    for fr in grid.figure_runs(config, name):
        run = fr.run
        own = {k: v for k, v in run.data_options.items() if base[run.dataset].get(k) != v}
        rows.append({"run_id": run.run_id, "model_name": config["figures"][name]["model"],
                     "model_key": json.dumps([run.arch, run.arch_options]),
                     "data": run.dataset + (f" ({', '.join(f'{k} {v}' for k, v in own.items())})" if own else ""),
                     "data_key": json.dumps([run.dataset, run.data_options])})
    return pd.DataFrame(rows).drop_duplicates("run_id")


def _label(varied) -> str:
    """'B, λ' for the union of the varied keys of every figure panel drawing a run ('none' if no panel varies one)."""
    keys = set().union(*varied)
    return ", ".join(grid.SYMBOLS[k] for k in VARIED if k in keys) or "none"


def shape_table(config: dict, tables: dict[str, pd.DataFrame], comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per panel and run with λ > 0 (finished or diverged): s = B/(2μ_T λ) and the final rank over the
    average min(rows, cols); λ per switches.bound_lambda; runs missing from `comparison` are left out."""
    parts = []
    for name, table in tables.items():
        fig = config["figures"][name]
        if fig["kind"] not in RANK_KINDS or not (table["weight_decay"] > 0).any():
            continue
        final = final_rows(table[table["weight_decay"] > 0])
        final = final.assign(varied=[_varied(fig, int(p)) for p in final["panel"]])
        parts.append(final.merge(_identity(config, name), on="run_id"))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    rows = pd.concat(parts, ignore_index=True)
    panel = ["model_key", "data_key", "eps"]
    models = rows.groupby(panel)["model_name"].agg(lambda m: " = ".join(sorted(set(m)))).rename("model")
    runs = rows.groupby(panel + ["run_id"], as_index=False).agg(
        figures=("figure", lambda f: ", ".join(sorted(set(f)))), varies=("varied", _label), data=("data", "first"),
        status=("status", "first"), batch_size=("batch_size", "first"), lr=("lr", "first"),
        weight_decay=("weight_decay", "first"), avg_rank=("avg_rank", "first"))
    last = comparison[comparison["epoch"] == comparison.groupby("run_id")["epoch"].transform("max")]
    layers = last.drop_duplicates(["run_id", "layer"]).groupby("run_id", as_index=False).agg(
        lr_final=("lr_epoch", "first"), trivial=("trivial", "mean"))
    df = runs.merge(models.reset_index(), on=panel).merge(layers, on="run_id")
    df["lam"] = paper_lambda(df["weight_decay"], config["switches"]["bound_lambda"])
    df["s"] = df["batch_size"] / (2 * df["lr_final"] * df["lam"])
    df["rank_norm"] = df["avg_rank"] / df["trivial"]
    df["panel_label"] = df["model"] + " on " + df["data"] + ", ε = " + df["eps"].map("{:g}".format)
    df["panel"] = df.groupby(panel).ngroup()
    return df.sort_values(["panel", "s", "run_id"])[COLUMNS].reset_index(drop=True)


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x in each row (NaN where x is constant; exactly 0 where y is)."""
    x, y = x - x[:, :1], y - y[:, :1]  # shifted by the first value, a constant row is exactly 0 before centring
    dx = x - x.mean(axis=1, keepdims=True)
    den = (dx ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * (y - y.mean(axis=1, keepdims=True))).sum(axis=1) / np.where(den > 0, den, np.nan)


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares slope and intercept of y on x, and the slope's 95% percentile-bootstrap interval."""
    if len(np.unique(x)) < 2:
        return (np.nan,) * 4
    slope = float(_slopes(x[None], y[None])[0])
    idx = np.random.default_rng(0).integers(0, len(x), (BOOTSTRAP, len(x)))
    lo, hi = np.nanpercentile(_slopes(x[idx], y[idx]), [2.5, 97.5])
    return slope, float(y.mean() - slope * x.mean()), float(lo), float(hi)


def _tau(s: pd.Series, rank: pd.Series) -> float:
    """Kendall τ-b of the rank with s: 0 when every rank is equal (no trend), NaN with fewer than 2 values of s."""
    if s.nunique() < 2:
        return float("nan")
    return 0.0 if rank.nunique() < 2 else float(kendalltau(s, rank).statistic)


def panel_fits(table: pd.DataFrame) -> pd.DataFrame:
    """Per panel of a shape_table over its finished runs: Kendall τ(s, rank), the log-log slope of the rank on s
    (rank > 0) with its bootstrap interval, and whether it counts (≥ MIN_RUNS runs, ≥ MIN_S distinct s)."""
    rows = []
    for (panel, label), sub in table.groupby(["panel", "panel_label"], sort=True):
        done = sub[sub["status"] == FINISHED]
        pos = done[done["rank_norm"] > 0]
        slope, intercept, lo, hi = _slope(np.log(pos["s"].to_numpy(float)), np.log(pos["rank_norm"].to_numpy(float)))
        rows.append({"panel": panel, "panel_label": label, "runs": len(done), "distinct_s": done["s"].nunique(),
                     "diverged": int((sub["status"] != FINISHED).sum()), "rank_zero": len(done) - len(pos),
                     "tau": _tau(done["s"], done["rank_norm"]), "slope": slope, "intercept": intercept,
                     "slope_lo": lo, "slope_hi": hi,
                     "counted": len(done) >= MIN_RUNS and done["s"].nunique() >= MIN_S})
    columns = ["panel", "panel_label", "runs", "distinct_s", "diverged", "rank_zero", "tau", "slope", "intercept",
               "slope_lo", "slope_hi", "counted"]
    return pd.DataFrame(rows, columns=columns).astype({"counted": bool})  # bool even when empty (a mask)
