"""Scorecard verdicts on hand-made tables whose answer is known."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowrank import aggregate, scorecard

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
B_CLAIM = "Prediction 4.1: rank falls as the batch size B falls"
WD_CLAIM = "Prediction 4.1: rank falls as weight decay λ rises"
LR_CLAIM = "Prediction 4.1: rank falls as the learning rate μ rises"
ZERO_CLAIM = "With λ = 0, batch size and learning rate barely change the rank"
GEN_CLAIM = "Lower rank goes with better test accuracy among runs that fit the training set"
NORM_CLAIM = "Norm ratios converge to 1 (assumption of Theorem 3.3)"
BOUND_CLAIM = "Theorem 3.3: rank_ε(W/‖W‖) ≤ m·B·ln(2/ε)/(2μλ)"


def config_with(*names: str) -> dict:
    """The real config.yaml restricted to the named figures."""
    cfg = copy.deepcopy(CONFIG)
    cfg["figures"] = {n: cfg["figures"][n] for n in names}
    return cfg


def final_table(config: dict, name: str, rank, test_acc=None, train_acc: float = 1.0) -> pd.DataFrame:
    """A one-evaluation curves table of figure `name`'s real runs; rank/test_acc map a run row to a number."""
    runs = aggregate.figure_runs_frame(config, name).assign(status="finished", diverged_epoch=np.nan, epoch=500)
    runs["eps"] = runs["plot_eps"]
    runs["avg_rank"] = [float(rank(r)) for r in runs.itertuples()]
    runs["test_acc"] = [float(test_acc(r)) if test_acc else 0.9 for r in runs.itertuples()]
    runs["train_acc"] = train_acc
    return runs


def verdicts(config: dict, tables: dict, comparison: pd.DataFrame | None = None) -> dict[str, str]:
    rows, _ = scorecard.claims(config, tables, empty_comparison() if comparison is None else comparison)
    return dict(zip(rows["claim"], rows["verdict"]))


def empty_comparison() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_id", "arch", "eps", "epoch", "status", "rank", "bound", "holds", "tightness",
                                 "convention"])


SHUFFLED = {4: 3, 8: 1, 16: 5, 32: 6, 64: 2, 128: 4}  # Spearman ρ with B = +0.26


@pytest.mark.parametrize("rank, expected", [(lambda r: math.log2(r.batch_size), "supported"),
                                            (lambda r: -r.batch_size, "not supported"),
                                            (lambda r: SHUFFLED[r.batch_size], "inconclusive"),
                                            (lambda r: 7.0, "inconclusive")])
def test_rank_vs_batch_size(rank, expected):
    config = config_with("fig04")
    assert verdicts(config, {"fig04": final_table(config, "fig04", rank)})[B_CLAIM] == expected


def test_spearman_handles_ties_and_constant_groups():
    df = pd.DataFrame({"g": [0, 0, 0, 1, 1, 1], "x": [1, 2, 3, 1, 2, 3], "y": [1, 1, 2, 5, 5, 5]})
    rho = scorecard.grouped_spearman(df, ["g"], "x", "y")
    assert rho.tolist() == pytest.approx([math.sqrt(3) / 2, 0.0])


def test_weight_decay_learning_rate_and_the_lambda_zero_claim():
    config = config_with("fig06", "fig02")
    fig06 = final_table(config, "fig06", lambda r: 50 if r.weight_decay == 0 else 40 - 1000 * r.weight_decay
                        + r.batch_size / 8)
    fig02 = final_table(config, "fig02", lambda r: 100 / (1 + r.lr) + r.seed * 0.01)
    got = verdicts(config, {"fig06": fig06, "fig02": fig02})
    assert got[WD_CLAIM] == "supported" and got[LR_CLAIM] == "supported"
    assert got[ZERO_CLAIM] == "supported"  # flat across B at λ = 0, varies with B at λ > 0
    flat = final_table(config, "fig06", lambda r: r.batch_size)
    assert verdicts(config, {"fig06": flat})[ZERO_CLAIM] == "not supported"


def test_generalization_among_runs_that_fit():
    config = config_with("fig04")
    good = final_table(config, "fig04", lambda r: r.batch_size, lambda r: 1 - r.batch_size / 1000)
    assert verdicts(config, {"fig04": good})[GEN_CLAIM] == "supported"
    unfit = final_table(config, "fig04", lambda r: r.batch_size, lambda r: 1 - r.batch_size / 1000, train_acc=0.5)
    assert verdicts(config, {"fig04": unfit})[GEN_CLAIM] == "inconclusive"


def test_diverged_runs_are_excluded_and_counted():
    config = config_with("fig04")
    table = final_table(config, "fig04", lambda r: r.batch_size)
    wrong = table["batch_size"] == 4
    table.loc[wrong, ["status", "avg_rank"]] = ["diverged", 1e6]  # would flip ρ if it were used
    rows, notes = scorecard.claims(config, {"fig04": table}, empty_comparison())
    assert dict(zip(rows["claim"], rows["verdict"]))[B_CLAIM] == "supported"
    assert any(f"Excluded {table.loc[wrong, 'run_id'].nunique()} diverged" in n for n in notes)


def norm_table(config: dict, late: float) -> pd.DataFrame:
    runs = aggregate.figure_runs_frame(config, "fig14").assign(status="finished", diverged_epoch=np.nan)
    t = runs.merge(pd.DataFrame({"epoch": np.arange(1, 101)}), how="cross")
    t["ratio"] = np.where(t["epoch"] > 90, 1 + late, 1.5)
    return t


@pytest.mark.parametrize("late, expected", [(1e-4, "supported"), (0.02, "inconclusive"), (0.2, "not supported")])
def test_norm_ratio_assumption(late, expected):
    config = config_with("fig14")
    assert verdicts(config, {"fig14": norm_table(config, late)})[NORM_CLAIM] == expected


def test_bound_claims():
    comparison = pd.DataFrame({"run_id": ["a", "a", "b", "c"], "arch": "mlp_bn", "eps": 0.05, "epoch": [0, 10, 10, 10],
                               "status": "finished", "rank": [50, 5, 5, 3], "bound": [10.0, 10.0, 10.0, np.inf],
                               "convention": "torch"})
    comparison["holds"], comparison["tightness"] = comparison["rank"] <= comparison["bound"], 0.5
    config = config_with("fig18")
    fig18 = final_table(config, "fig18", lambda r: 3.0).assign(m=1, width=10000)
    got = verdicts(config, {"fig18": fig18}, comparison)
    assert got[BOUND_CLAIM] == "supported"  # both last evaluations hold; the wd = 0 run c is left out
    width = [c for c in got if c.startswith("fig18: bound below the width")][0]
    assert got[width] == "not supported"  # 7500·ln(2/0.3) = 14228 > 10000 with λ = wd/2
    config["switches"]["bound_lambda"] = "as_printed"
    assert verdicts(config, {"fig18": fig18}, comparison)[width] == "supported"  # 3750·ln(2/0.3) = 7114
    comparison["holds"] = False
    assert verdicts(config, {"fig18": fig18}, comparison)[BOUND_CLAIM] == "not supported"


def test_markdown_and_html_state_the_rules():
    config = config_with("fig04")
    config["demo"] = True
    tables = {"fig04": final_table(config, "fig04", lambda r: r.batch_size)}
    md = scorecard.scorecard(config, tables, empty_comparison())
    assert md.startswith("# DEMO (synthetic data): ")
    assert f"| {B_CLAIM} | supported |" in md and "Verdict rules" in md and "|median ρ| ≥ 0.5" in md
    page = scorecard.scorecard_html(config, tables, empty_comparison())
    assert page.startswith("<!DOCTYPE html>") and "<table" in page and "supported" in page
