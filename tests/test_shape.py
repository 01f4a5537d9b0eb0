"""Theorem 3.3's shape on hand-made tables: the rank against s = B/(2μ_T λ), its scorecard row and its figure."""

from __future__ import annotations

import pandas as pd
import pytest
from test_plots import assert_rendered, roundtrip
from test_scorecard import config_with, fig18_table, final_table

from lowrank import grid, plots, scorecard, shape, views

CLAIM = "Theorem 3.3's shape: the rank grows with B/(μλ) across settings"
RESNET, MLP = "resnet18_leaky on cifar10, ε = 0.001", "mlp_bn_10_100 on cifar10, ε = 0.001"
VIT, WIDE = "vit_small on cifar10, ε = 0.001", "mlp_bn_2_10000 on cifar10, ε = 0.001"


def comparison(config: dict) -> pd.DataFrame:
    """A bound_vs_rank table for every run of the config: two layers (min(rows, cols) 16 and 48, mean 32), at
    epoch 0 with the initial μ and at the last epoch with the decayed one (RunConfig.lr_at); the bound columns are
    those of a run without one (only the bound rows read them)."""
    runs = grid.all_runs(config)
    return pd.DataFrame([{"run_id": rid, "epoch": epoch, "lr_epoch": cfg.lr_at(epoch), "layer": layer,
                          "trivial": trivial, "eps": eps, "status": "finished", "rank": 3, "bound": float("inf"),
                          "informative": False, "eps_star": 2.0, "holds": True, "tightness": 0.0}
                         for rid, cfg in runs.items() for epoch in (0, cfg.epochs)
                         for layer, trivial in (("l0", 16), ("l1", 48)) for eps in (0.01, 0.05)])


def tables(config: dict, rank) -> dict[str, pd.DataFrame]:
    """Final tables of every figure of the config; rank maps a run row to its average rank (Fig 18: 8 at ε = 1e-3)."""
    return {name: fig18_table(config, {1e-3: 8.0}) if name == "fig18" else final_table(config, name, rank)
            for name in config["figures"]}


def s_of(r) -> float:
    """B/(μλ), proportional to s within a figure (μ_T/μ and λ/wd are the same for all its runs); 1 at λ = 0."""
    return r.batch_size / (r.lr * r.weight_decay) if r.weight_decay > 0 else 1.0


def test_each_run_is_one_point_of_its_model_with_the_decayed_learning_rate():
    config = config_with("fig02", "fig11", "fig06", "fig09", "fig18")  # Fig 11 re-slices Fig 2's 60 runs
    table = shape.shape_table(config, tables(config, lambda r: 8.0), comparison(config))
    view = shape.shape_table(views.scorecard_view(config), tables(config, lambda r: 8.0), comparison(config))
    pd.testing.assert_frame_equal(view, table)  # the job's view holds everything it reads
    counts = table.groupby("panel_label")["run_id"].agg(["size", "nunique"])
    # Fig 6: 6 B × 5 λ > 0 (its λ = 0 runs have no s); Fig 9: 6 B; Fig 18: one run
    assert counts.to_dict("index") == {RESNET: {"size": 60, "nunique": 60}, MLP: {"size": 30, "nunique": 30},
                                       VIT: {"size": 6, "nunique": 6}, WIDE: {"size": 1, "nunique": 1}}
    assert table.groupby("panel_label")["varies"].unique().map(list).to_dict() == {
        RESNET: ["B, μ"], MLP: ["λ"], VIT: ["B"], WIDE: ["none"]}
    assert set(table.loc[table["panel_label"] == RESNET, "figures"]) == {"fig02, fig11"}
    run = table[(table["panel_label"] == RESNET) & (table["batch_size"] == 4) & (table["lr"] == 0.1)].iloc[0]
    # μ_T = 0.1 · 0.2³ after the milestones 60, 100, 200; λ = wd/2 = 2.5e-4: s = 4/(2 · 8e-4 · 2.5e-4)
    assert (run["lr_final"], run["lam"], run["s"]) == pytest.approx((8e-4, 2.5e-4, 1e7))
    assert (run["trivial"], run["rank_norm"]) == (32.0, 0.25)
    config["switches"]["bound_lambda"] = "as_printed"  # λ = wd halves s
    printed = shape.shape_table(config, tables(config, lambda r: 8.0), comparison(config))
    assert printed.set_index("run_id").loc[run["run_id"], "s"] == pytest.approx(5e6)


def row(config: dict, rank, diverged=lambda r: False) -> pd.Series:
    figure_tables = tables(config, rank)
    for t in figure_tables.values():
        t.loc[[diverged(r) for r in t.itertuples()], "status"] = "diverged"
    rows, _ = scorecard.claims(config, figure_tables, comparison(config))
    return rows.set_index("claim").loc[CLAIM]


@pytest.mark.parametrize("rank, verdict, tau, slope", [
    (lambda r: s_of(r) ** 0.5, "supported", "+1.00", "0.50 [0.50, 0.50]"),  # monotone
    (lambda r: s_of(r) ** -0.5, "not supported", "-1.00", "-0.50 [-0.50, -0.50]"),  # reversed
    (lambda r: 8.0, "inconclusive", "+0.00", "0.00 [0.00, 0.00]"),  # flat
])
def test_the_row_reaches_each_verdict(rank, verdict, tau, slope):
    got = row(config_with("fig02", "fig06", "fig09", "fig18"), rank)
    assert got["verdict"] == verdict
    assert got["effect"].startswith(f"median τ = {tau} over 3 panels")
    for label, runs in ((RESNET, 60), (MLP, 30), (VIT, 6)):
        assert f"{label}: τ = {tau}, slope {slope} (n = {runs})" in got["effect"]
    assert got["effect"].endswith(f"not counted: {WIDE} (n = 1, 1 distinct s)")
    assert got["evidence"] == "fig02, fig06, fig09 (96 runs)"
    assert got["rule"].endswith("; supported if the median τ ≥ 0.5, not supported if the median τ ≤ −0.5")


def test_the_median_over_panels_decides_and_diverged_runs_are_left_out():
    # rank grows with s in Fig 2 and Fig 6 and falls in Fig 9: median +1; Fig 2's 20 diverged runs are no points
    got = row(config_with("fig02", "fig06", "fig09"), lambda r: s_of(r) ** (-1 if r.figure == "fig09" else 1),
              diverged=lambda r: r.figure == "fig02" and r.batch_size == 4)
    assert got["verdict"] == "supported" and got["effect"].startswith("median τ = +1.00 over 3 panels (2 positive)")
    assert f"{RESNET}: τ = +1.00, slope 1.00 [1.00, 1.00] (n = 40)" in got["effect"]
    assert f"{VIT}: τ = -1.00" in got["effect"]


@pytest.mark.parametrize("batch_sizes, seeds, counted", [
    ([4, 8, 16], [0, 1], True),  # 6 runs at 3 distinct s
    ([4, 8, 16, 32, 64], [0], False),  # 5 runs
    ([4, 8], [0, 1, 2], False),  # 6 runs at 2 distinct s
])
def test_a_panel_needs_six_runs_at_three_distinct_s(batch_sizes, seeds, counted):
    config = config_with("fig09")
    config["figures"]["fig09"].update(vary={"batch_size": batch_sizes}, seeds=seeds)
    got = row(config, lambda r: r.batch_size)
    assert got["verdict"] == ("supported" if counted else "inconclusive")
    assert got["effect"].startswith("median τ = +1.00 over 1 panels" if counted else "no panel with ≥ 6 finished runs")


def test_the_figure_draws_each_finished_run_once_per_panel(tmp_path):
    config = config_with("fig02", "fig11", "fig06", "fig09", "fig18")
    figure_tables = tables(config, lambda r: 0.0 if r.figure == "fig09" and r.batch_size == 4 else s_of(r) ** 0.5)
    for name in ("fig02", "fig11"):  # the same 20 runs diverged in both figures
        t = figure_tables[name]
        t.loc[t["batch_size"] == 16, "status"] = "diverged"
    table = roundtrip(shape.shape_table(config, figure_tables, comparison(config)), tmp_path / "shape.csv")
    fits = roundtrip(shape.panel_fits(table), tmp_path / "fits.csv")
    fig = plots.shape.draw(views.comparison_view(config), table, fits)
    drawn = {ax.get_title().split("\n")[0]: sum(len(c.get_offsets()) for c in ax.collections)
             for ax in fig.axes if ax.get_visible()}
    # one rank-0 ViT run cannot go on the log axis; Fig 11 redraws Fig 2's runs, which are points once
    assert drawn == {MLP: 30, RESNET: 40, VIT: 5, WIDE: 1}
    titles = {ax.get_title().split("\n")[0]: ax.get_title() for ax in fig.axes}
    assert "20 diverged left out" in titles[RESNET] and "1 rank-0 (log axis) left out" in titles[VIT]
    assert "no τ (one s)" in titles[WIDE] and "not counted" in titles[WIDE] and "not counted" not in titles[MLP]
    plots.render_bound_shape(views.comparison_view(config), table, fits, tmp_path / "s.png", tmp_path / "s.pdf")
    assert_rendered(tmp_path / "s.png", tmp_path / "s.pdf")
