"""Scorecard verdicts on hand-made tables whose answer is known."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowrank import aggregate, provenance, scorecard
from lowrank.bound import CONVENTIONS, informative_eps, rank_bound

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
B_CLAIM = "Prediction 4.1: rank falls as the batch size B falls"
WD_CLAIM = "Prediction 4.1: rank falls as weight decay λ rises"
LR_CLAIM = "Prediction 4.1: rank falls as the learning rate μ rises"
ZERO_CLAIM = "With λ = 0, batch size and learning rate barely change the rank"
GEN_CLAIM = "Lower rank goes with better test accuracy among runs that fit the training set"
NORM_CLAIM = "Theorem 3.3's assumption: ‖W_{T−n}‖/‖W_T‖ ≤ 2 over the last n = ln(2/ε)/(2μλ) steps"
FIG18_CLAIM = "fig18: the measured average rank stays under Theorem 3.3's bound"
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
    return comparison_table([], [], [], [])


def comparison_table(run_ids, epochs, ranks, bounds, trivial=8) -> pd.DataFrame:
    """A bound_vs_rank table of one layer per run (min(rows, cols) = `trivial`) at ε = 0.05."""
    df = pd.DataFrame({"run_id": run_ids, "arch": "mlp_bn", "eps": 0.05, "epoch": epochs, "status": "finished",
                       "layer": "l0", "lr_epoch": 0.1,
                       "rank": ranks, "bound": np.asarray(bounds, dtype=float), "trivial": trivial,
                       "eps_star": 0.01, "convention": "torch"})
    df["holds"], df["tightness"] = df["rank"] <= df["bound"], df["rank"] / df["bound"]
    df["informative"] = df["bound"] < df["trivial"]
    return df


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
    assert verdicts(config, {"fig02": fig02})[ZERO_CLAIM] == "inconclusive"  # no λ = 0 run at all


@pytest.mark.parametrize("name, claim, rank, expected", [
    ("fig06", WD_CLAIM, lambda r: 40 + 1000 * r.weight_decay, "not supported"),  # rank rises with λ
    ("fig06", WD_CLAIM, lambda r: 7.0, "inconclusive"),
    ("fig02", LR_CLAIM, lambda r: r.lr, "not supported"),  # rank rises with μ
    ("fig02", LR_CLAIM, lambda r: 7.0, "inconclusive"),
])
def test_weight_decay_and_learning_rate_trends_can_fail(name, claim, rank, expected):
    config = config_with(name)
    assert verdicts(config, {name: final_table(config, name, rank)})[claim] == expected


def test_lambda_zero_needs_twins_at_the_same_grid_points():
    config = config_with("fig06")
    config["figures"]["fig06"]["vary"]["weight_decay"] = [0.0]
    config["figures"]["fig06"]["panels"] = config["figures"]["fig06"]["panels"][:3]
    alone = final_table(config, "fig06", lambda r: 50.0)
    other = config_with("fig07")  # λ > 0 at μ = 0.03, 0.1: only μ = 0.1 shares points, and only B = 4, 8, 16
    config["figures"]["fig07"] = other["figures"]["fig07"]
    fig07 = final_table(config, "fig07", lambda r: r.batch_size)
    rows = scorecard.claims(config, {"fig06": alone}, empty_comparison())[0].set_index("claim")
    assert rows.loc[ZERO_CLAIM, "verdict"] == "inconclusive"
    assert "without λ > 0 twins at ≥ 2 (B, μ) points in fig06" in rows.loc[ZERO_CLAIM, "effect"]
    rows = scorecard.claims(config, {"fig06": alone, "fig07": fig07}, empty_comparison())[0].set_index("claim")
    # λ = 0: 50 at B = 4, 8, 16 (spread 0); λ = 5e-4, μ = 0.1: rank = B (spread 0.75): ratio 0
    assert rows.loc[ZERO_CLAIM, "verdict"] == "supported"
    assert "over 1 paired settings (3 (B, μ) points)" in rows.loc[ZERO_CLAIM, "effect"]


def test_generalization_among_runs_that_fit():
    config = config_with("fig04")
    good = final_table(config, "fig04", lambda r: r.batch_size, lambda r: 1 - r.batch_size / 1000)
    assert verdicts(config, {"fig04": good})[GEN_CLAIM] == "supported"
    unfit = final_table(config, "fig04", lambda r: r.batch_size, lambda r: 1 - r.batch_size / 1000, train_acc=0.5)
    assert verdicts(config, {"fig04": unfit})[GEN_CLAIM] == "inconclusive"
    bad = final_table(config, "fig04", lambda r: r.batch_size, lambda r: 0.5 + r.batch_size / 1000)
    assert verdicts(config, {"fig04": bad})[GEN_CLAIM] == "not supported"  # higher rank, better test accuracy


def test_diverged_runs_are_excluded_and_counted():
    config = config_with("fig04")
    table = final_table(config, "fig04", lambda r: r.batch_size)
    wrong = table["batch_size"] == 4
    table.loc[wrong, ["status", "avg_rank"]] = ["diverged", 1e6]  # would flip ρ if it were used
    rows, notes = scorecard.claims(config, {"fig04": table}, empty_comparison())
    assert dict(zip(rows["claim"], rows["verdict"]))[B_CLAIM] == "supported"
    assert any(f"Excluded {table.loc[wrong, 'run_id'].nunique()} diverged" in n for n in notes)


def norm_table(config: dict, fro, steps_per_epoch: int = 10_000, decay: bool = False) -> pd.DataFrame:
    """Fig 14's runs with per-epoch norms fro(epoch), 100 epochs at the initial μ (decay: ×0.04 from epoch 60)."""
    runs = aggregate.figure_runs_frame(config, "fig14").assign(status="finished", diverged_epoch=np.nan)
    t = runs.merge(pd.DataFrame({"epoch": np.arange(1, 101)}), how="cross")
    t["layer"], t["fro_norm"], t["steps_per_epoch"] = "l0", fro(t["epoch"]), steps_per_epoch
    t["lr_epoch"] = t["lr"] * np.where(decay & (t["epoch"] >= 60), 0.04, 1.0)
    return t


# B = 8, λ = wd/2 = 2.5e-4, 10,000 steps per epoch: n = ln(2/ε)/(2μλ) is 10.6 epochs at μ = 0.1, ε = 0.01,
# and 0.5 epochs (below the resolution) at μ = 2; checked at the last epoch T = 100
@pytest.mark.parametrize("fro, steps, expected, says", [
    (lambda e: 1.0 + 0 * e, 10_000, "supported", "100.0% of"),
    (lambda e: 1.0 + e / 100, 10_000, "supported", "100.0% of"),  # growing norms never shrink by 2x
    (lambda e: np.exp(-e), 10_000, "not supported", "0.0% of"),  # shrinking by e per epoch: > 2 over one epoch
    # 100x larger before epoch 50: early training is not what "for sufficiently large T" is about
    (lambda e: np.where(e < 50, 100.0, 1.0), 10_000, "supported", "100.0% of"),
    (lambda e: 1.0 + 0 * e, 10 ** 9, "inconclusive", "no check possible: n < one epoch (the logged resolution) in"),
    (lambda e: 1.0 + 0 * e, 10, "inconclusive", "no check possible: n < one epoch (the logged resolution) in 0 "),
])
def test_norm_growth_assumption(fro, steps, expected, says):
    config = config_with("fig14")
    rows, _ = scorecard.claims(config, {"fig14": norm_table(config, fro, steps)}, empty_comparison())
    row = rows.set_index("claim").loc[NORM_CLAIM]
    assert row["verdict"] == expected and says in row["effect"]


def test_norm_growth_counts_the_checks():
    config = config_with("fig14")
    config["comparison"]["eps"] = [0.01]
    rows, _ = scorecard.claims(config, {"fig14": norm_table(config, lambda e: 1.0 + 0 * e)}, empty_comparison())
    # n in epochs: μ = 0.1: 10.6 → 11, μ = 0.5: 2.1 → 3, μ = 1: 1.06 → 2, all inside the log at T = 100;
    # μ = 2: 0.53 < 1 epoch. Fig 14 has 4 runs, 1 layer each.
    effect = rows.set_index("claim").loc[NORM_CLAIM, "effect"]
    assert effect.startswith("100.0% of 3 checks hold (3 runs)")
    assert "n < one epoch (the logged resolution) in 1 and T − n before the log in 0 of 4" in effect


def test_norm_growth_uses_the_decayed_learning_rate_at_T():
    # 3x larger before epoch 85. μ_T = μ/25 from epoch 60: n at T = 100 for ε = 0.01, 0.04, 0.05 is 53, 40, 37
    # epochs (μ = 0.5), 27, 20, 19 (μ = 1), 14, 10, 10 (μ = 2), beyond the log at μ = 0.1; 3 of 9 reach back
    # to a norm ≤ 2x. With the initial μ every window would start after epoch 85 (all hold).
    config = config_with("fig14")
    fro = lambda e: np.where(e < 85, 3.0, 1.0)  # noqa: E731
    rows, _ = scorecard.claims(config, {"fig14": norm_table(config, fro, decay=True)}, empty_comparison())
    row = rows.set_index("claim").loc[NORM_CLAIM]
    assert row["verdict"] == "not supported" and row["effect"].startswith("33.3% of 9 checks hold (3 runs)")
    assert "T − n before the log in 3 of 12" in row["effect"]
    rows, _ = scorecard.claims(config, {"fig14": norm_table(config, fro)}, empty_comparison())
    assert rows.set_index("claim").loc[NORM_CLAIM, "verdict"] == "supported"


def test_bound_row_is_not_supported_when_every_bound_exceeds_the_matrix():
    # every bound ≥ min(rows, cols) = 8: rank ≤ bound holds from the shape alone, which proves nothing
    vacuous = comparison_table(["a", "a", "b"], [0, 10, 10], [5, 8, 3], [9.0, 1e6, 40.0])
    row = scorecard.claims(config_with("fig04"), {}, vacuous)[0].set_index("claim").loc[BOUND_CLAIM]
    assert row["verdict"] == "inconclusive"
    assert "the bound is vacuous for every run at these ε" in row["effect"] and "0 of 2 rows" in row["effect"]


@pytest.mark.parametrize("ranks, expected", [([2, 5, 3], "supported"), ([2, 7, 3], "not supported")])
def test_bound_row_judges_informative_rows_only(ranks, expected):
    # run a's last evaluation (epoch 10) is informative (6 < 8), run b's is vacuous (40 ≥ 8), run c has no bound
    cmp = comparison_table(["a", "a", "b", "c"], [0, 10, 10, 10], [ranks[0], ranks[1], ranks[2], 3],
                           [1.0, 6.0, 40.0, np.inf])
    row = scorecard.claims(config_with("fig04"), {}, cmp)[0].set_index("claim").loc[BOUND_CLAIM]
    assert row["verdict"] == expected and "informative in 1 of 2 rows (50.0%)" in row["effect"]


def fig18_table(config: dict, rank: dict) -> pd.DataFrame:
    """Fig 18's run at one evaluation: average rank rank[ε] at each ε, with the bound columns aggregate adds."""
    runs = aggregate.figure_runs_frame(config, "fig18").assign(status="finished", diverged_epoch=np.nan, epoch=500)
    t = runs.merge(pd.DataFrame({"eps": list(rank), "avg_rank": list(rank.values())}), how="cross")
    t = t.assign(m=1, width=10000, trivial=6536.0, train_acc=1.0, test_acc=0.5)
    for c in CONVENTIONS:
        t[f"bound_{c}"] = [rank_bound(1, 6, 0.1, 8e-3, e, c) for e in t["eps"]]
        t[f"informative_{c}"] = t[f"bound_{c}"] < t["trivial"]
        t[f"eps_star_{c}"] = informative_eps(1, 6, 0.1, 8e-3, 6536.0, c)
    return t


YARDSTICKS = ("bound < the largest possible average rank 6536 (decides) for ε > 0.837 (torch) | 0.35 (as_printed); "
              "bound < the width 10000 (the paper's yardstick, reported) for ε > 0.527 (torch) | 0.139 (as_printed)")


@pytest.mark.parametrize("rank, switch, expected", [
    ({1e-3: 4000, 0.3: 3, 0.9: 3}, "torch", "supported"),  # 7500·ln(2/0.9) = 5989 < 6536: informative only at 0.9
    ({1e-3: 4000, 0.3: 3, 0.9: 6000}, "torch", "not supported"),
    ({1e-3: 4000, 0.3: 3, 0.5: 3}, "torch", "inconclusive"),  # 7500·ln 4 = 10397: vacuous at every ε
    # 7500·ln(2/0.7) = 7874: below the width 10000 (where 6000 would hold) but not below 6536, which decides
    ({1e-3: 4000, 0.3: 3, 0.7: 6000}, "torch", "inconclusive"),
    ({1e-3: 4000, 0.3: 3, 0.5: 3}, "as_printed", "supported"),  # 3750·ln 4 = 5199: informative at 0.5
    ({1e-3: 4000, 0.3: 3, 0.5: 6000}, "as_printed", "not supported"),
])
def test_fig18_compares_the_measured_rank_with_the_bound(rank, switch, expected):
    config = config_with("fig18")
    config["switches"]["bound_lambda"] = switch
    rows, notes = scorecard.claims(config, {"fig18": fig18_table(config, rank)}, empty_comparison())
    row = rows.set_index("claim").loc[FIG18_CLAIM]
    assert row["verdict"] == expected
    informative = 0 if expected == "inconclusive" else 1
    assert row["evidence"] == f"fig18 (1 run; informative at {informative} of 3 plotted ε)"
    assert YARDSTICKS in row["effect"] and "largest possible average rank, the yardstick that decides" in row["rule"]
    # the paper's width yardstick and the factor-2 reading of λ: a note on the paper's numbers, never a verdict
    assert [n for n in notes if n.startswith("fig18:")] == [
        "fig18: the paper prints no bound values; it says the bound is below the network's width 10000 for ε ≥ 0.3, "
        "which holds at ε = 0.3 under as_printed only (bound 7114 with λ = wd = 0.008, as_printed; 14228 with "
        "torch's λ = wd/2, torch): the paper's λ = wd is a reading inferred from this claim. "
        f"Yardsticks: {YARDSTICKS}. This is arithmetic on the paper's numbers, not a test of data."]


@pytest.mark.parametrize("width, under", [(256, "neither λ reading"), (20000, "both λ readings")])
def test_fig18_note_says_under_which_lambda_reading_the_papers_claim_holds(width, under):
    # the bound at ε = 0.3 is 7114 (as_printed) and 14228 (torch): below a width of 20000 both times, 256 neither
    table = fig18_table(config_with("fig18"), {0.3: 3}).assign(width=width)
    assert f"which holds at ε = 0.3 under {under} (bound 7114 " in scorecard._fig18_note(CONFIG, "fig18", table)


def test_each_run_counts_once_per_claim():
    config = config_with("fig02", "fig11")  # Fig 11 re-slices Fig 2's 60 runs
    rank = lambda r: 100 / (1 + r.lr) + r.batch_size  # noqa: E731
    tables = {n: final_table(config, n, rank) for n in ("fig02", "fig11")}
    rows = scorecard.claims(config, tables, empty_comparison())[0].set_index("claim")
    assert rows.loc[LR_CLAIM, "effect"].startswith("median ρ = -1.00 over 3 settings")  # not 3 + 3
    assert rows.loc[LR_CLAIM, "evidence"] == "fig02, fig11 (60 runs)"
    alone = scorecard.claims(config_with("fig02"), {"fig02": tables["fig02"]}, empty_comparison())[0]
    assert alone.set_index("claim").loc[B_CLAIM, "effect"] == rows.loc[B_CLAIM, "effect"]


def code(src: str, commit: str | None = None, dirty: bool = False) -> str:
    """The code label of a run trained by lowrank sources hashing to `src` * 64, at git commit `commit` * 40."""
    return provenance.code_label({"source_sha256": src * 64, "commit": commit and commit * 40, "dirty": dirty})


@pytest.mark.parametrize("labels, warned", [
    ((code("a", "1"), code("a", "1", dirty=True), code("a", "2")), False),  # only the git commit or dirty flag differ
    ((code("a", "1"), code("b", "1")), True),  # one commit, other sources (e.g. a tree dirty inside lowrank/)
    ((code("a", "1"), provenance.code_label(None)), True),  # an unrecorded run may have been any code
])
def test_a_figure_is_flagged_only_when_its_runs_sources_differ(labels, warned):
    config = config_with("fig04")
    table = final_table(config, "fig04", lambda r: r.batch_size)
    table["code"] = [labels[i % len(labels)] for i in range(len(table))]
    _, notes = scorecard.claims(config, {"fig04": table}, empty_comparison())
    warnings = [n for n in notes if n.startswith("WARNING")]
    assert len(warnings) == warned
    assert all(label in (warnings or notes)[-1] for label in labels)  # the warning (else the note) names them all
    assert all("compared: the source hash, not the git commit or dirty flag" in w for w in warnings)


def test_markdown_and_html_state_the_rules():
    config = config_with("fig04")
    config["demo"] = True
    tables = {"fig04": final_table(config, "fig04", lambda r: r.batch_size)}
    md = scorecard.scorecard(config, tables, empty_comparison())
    assert md.startswith("# DEMO (synthetic data): ")
    assert f"| {B_CLAIM} | supported |" in md and "Verdict rules" in md and "|median ρ| ≥ 0.5" in md
    page = scorecard.scorecard_html(config, tables, empty_comparison())
    assert page.startswith("<!DOCTYPE html>") and "<table" in page and "supported" in page


NAN = float("nan")


@pytest.mark.parametrize("rule, text, verdicts", [
    (scorecard.trend(+1), "supported if the median ρ ≥ 0.5, not supported if the median ρ ≤ −0.5",
     [(0.5, "supported"), (0.49, "inconclusive"), (-0.49, "inconclusive"), (-0.5, "not supported")]),
    (scorecard.trend(-1), "supported if the median ρ ≤ −0.5, not supported if the median ρ ≥ 0.5",
     [(-0.5, "supported"), (0.0, "inconclusive"), (0.5, "not supported")]),
    (scorecard.HOLDS, "supported if the fraction that holds ≥ 95%, not supported if the fraction that holds < 50%",
     [(0.95, "supported"), (0.949, "inconclusive"), (0.5, "inconclusive"), (0.499, "not supported")]),
    (scorecard.SPREAD, "supported if the ratio ≤ 0.5, not supported if the ratio ≥ 1",
     [(0.5, "supported"), (0.51, "inconclusive"), (0.99, "inconclusive"), (1.0, "not supported")]),
])
def test_a_rule_states_the_thresholds_its_verdict_applies(rule, text, verdicts):
    assert str(rule) == text
    assert [(v, rule.verdict(v)) for v, _ in verdicts] == verdicts
    assert rule.verdict(NAN) == "inconclusive"  # nothing to judge


def test_each_row_states_the_rule_its_verdict_follows():
    config = config_with("fig04")
    rows = scorecard.claims(config, {"fig04": final_table(config, "fig04", lambda r: r.batch_size)},
                            empty_comparison())[0].set_index("claim")["rule"]
    assert rows[B_CLAIM].endswith("λ > 0 only; seeds averaged; ≥ 3 values of B); supported if the median ρ ≥ 0.5, "
                                  "not supported if the median ρ ≤ −0.5")
    assert rows[WD_CLAIM].endswith("; supported if the median ρ ≤ −0.5, not supported if the median ρ ≥ 0.5")
    assert rows[GEN_CLAIM].endswith("; supported if the median ρ ≤ −0.5, not supported if the median ρ ≥ 0.5")
    assert rows[ZERO_CLAIM].endswith("; supported if the ratio ≤ 0.5, not supported if the ratio ≥ 1")
    for claim in (NORM_CLAIM, BOUND_CLAIM):
        assert rows[claim].endswith("; supported if the fraction that holds ≥ 95%, not supported if the fraction that "
                                    "holds < 50%")
