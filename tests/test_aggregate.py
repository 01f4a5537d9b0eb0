"""Aggregation on hand-made run logs with known numbers: average ranks, norm ratios, spectra, the bound."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowrank import aggregate, grid, logs, provenance, views
from lowrank.config import RunConfig

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
LAYERS = [{"name": "l0", "shape": [4, 8], "m": 1}, {"name": "l1", "shape": [6, 6], "m": 1}]
SIGMA = {"l0": [0.9, 0.4, 0.2, 0.1], "l1": [0.8, 0.5, 0.3, 0.1, 0.05, 0.01]}


def small_config(**figures: dict) -> dict:
    """The real config.yaml with only the given (shrunk) figures."""
    cfg = copy.deepcopy(CONFIG)
    cfg["figures"] = figures
    return cfg


def fig(name: str, **changes) -> dict:
    """A real figure of config.yaml with some keys replaced."""
    return {**copy.deepcopy(CONFIG["figures"][name]), **changes}


def write_fake_run(runs_dir: Path, cfg: RunConfig, *, epochs=(0, 1, 2), eval_epochs=None, ranks=None,
                   fro=None, status: str = "finished") -> None:
    """Logs of a two-layer run: constant ranks per layer, given Frobenius norms, fixed spectra."""
    eval_epochs = list(epochs) if eval_epochs is None else list(eval_epochs)
    ranks = ranks or {"l0": 4, "l1": 6}
    fro = fro or {"l0": [2.0, 3.0, 3.0], "l1": [1.0, 1.0, 1.0]}
    bad = status == "diverged"
    evals = [{"epoch": e, "lr": cfg.lr_at(e + 1), "train_loss": 1.0, "train_acc": 0.5 + 0.1 * e,
              "test_loss": 1.0, "test_acc": 0.4 + 0.1 * e} for e in eval_epochs]
    if bad:
        evals[-1].update(train_loss=math.nan, test_loss=math.nan)
    layers = [{"epoch": e, "layer": l["name"], "m": l["m"], "rows": l["shape"][0], "cols": l["shape"][1],
               "fro_norm": fro[l["name"]][i], "spectral_norm": 1.0, "stable_rank": 1.0}
              for i, e in enumerate(epochs) for l in LAYERS]
    rank_rows = [{"epoch": e, "layer": l["name"], "eps": eps, "rank": ranks[l["name"]]}
                 for e in epochs for l in LAYERS for eps in cfg.eps]
    spectra = {"epochs": np.asarray(eval_epochs)}
    spectra.update({n: np.tile(np.asarray(s, dtype=np.float32), (len(eval_epochs), 1)) for n, s in SIGMA.items()})
    summary = {"run_id": cfg.run_id, "config": cfg.to_dict(), "status": status,
               "diverged_epoch": eval_epochs[-1] if bad else None, "diverged_reason": "nonfinite_loss" if bad else None,
               "epochs_completed": epochs[-1], "final": {}, "layers": LAYERS,
               "runtime": {"host": "node1", "started": "2026-01-01T00:00:00+00:00", "wall_time_s": 60.0,
                           "finished": "2026-01-01T00:01:00+00:00"}}
    logs.write_run(runs_dir / cfg.run_id, evals=evals, layers=layers, ranks=rank_rows, spectra=spectra,
                   summary=summary)


def write_figure(runs_dir: Path, config: dict, name: str, **kwargs) -> list[RunConfig]:
    """Hand-made logs for every run of figure `name`."""
    runs = list({fr.run.run_id: fr.run for fr in grid.figure_runs(config, name)}.values())
    for cfg in runs:
        write_fake_run(runs_dir, cfg, **kwargs)
    return runs


def test_curves_average_rank_is_the_unweighted_layer_mean(tmp_path):
    config = small_config(fig04=fig("fig04", vary={"batch_size": [4, 8]}))
    write_figure(tmp_path, config, "fig04")
    table = aggregate.figure_table(config, "fig04", tmp_path)
    assert len(table) == 3 * 2 * 3 * 4  # panels × B × eval epochs × logged eps
    assert table["avg_rank"].eq(5.0).all()  # layers with ranks 4 and 6
    assert sorted(table["eps"].unique()) == [1e-3, 1e-2, 0.04, 0.05]
    assert table.groupby("panel")["plot_eps"].first().tolist() == [1e-3] * 3  # the caption's, by default
    config["switches"]["plot_eps"] = "notebook"
    assert aggregate.figure_runs_frame(config, "fig04").groupby("panel")["plot_eps"].first().tolist() == [
        0.05, 0.05, 0.04]
    row = table[(table["epoch"] == 2)].iloc[0]
    assert (row["train_acc"], row["test_acc"]) == pytest.approx((0.7, 0.6))
    for col in ("figure", "panel", "panel_label", "run_id", "seed", "batch_size", "status", "diverged_epoch"):
        assert col in table.columns
    assert set(table["status"]) == {"finished"}


def test_last_evaluation_keeps_every_row_of_each_runs_own_last_epoch():
    # run a ends at epoch 20 (two layers), b diverged at 5, c at 10 in panel 0 and 30 in panel 1 (another table)
    table = pd.DataFrame({"run_id": ["a", "b", "a", "a", "b", "a", "c", "c"],
                          "panel": [0, 0, 0, 0, 0, 0, 0, 1],
                          "epoch": [0, 0, 10, 20, 5, 20, 10, 30],
                          "layer": ["l0", "l0", "l0", "l0", "l0", "l1", "l0", "l0"]})
    last = aggregate.last_evaluation(table)
    assert last.index.tolist() == [3, 4, 5, 7]
    assert list(zip(last["run_id"], last["epoch"], last["layer"])) == [("a", 20, "l0"), ("b", 5, "l0"),
                                                                       ("a", 20, "l1"), ("c", 30, "l0")]
    assert aggregate.last_evaluation(table, ("panel", "run_id")).index.tolist() == [3, 4, 5, 6, 7]
    assert aggregate.last_evaluation(table.iloc[:0]).empty


def test_heatmap_keeps_the_last_evaluation_per_panel_and_run(tmp_path):
    config = small_config(fig01=fig("fig01", vary={"batch_size": [4, 8]}))
    write_figure(tmp_path, config, "fig01")
    table = aggregate.figure_table(config, "fig01", tmp_path)
    n = sum(len(p["vary"][p["y"]]) for p in config["figures"]["fig01"]["panels"]) * 2
    assert len(table) == n and table.groupby(["panel", "run_id"]).size().eq(1).all()
    assert table["epoch"].eq(2).all() and table["avg_rank"].eq(5.0).all()
    assert np.isclose(table["eps"], table["plot_eps"]).all()


def test_norm_ratio_is_consecutive_frobenius_ratio(tmp_path):
    config = small_config(fig14=fig("fig14", panels=[{"fixed": {"lr": 0.1}}]))
    write_figure(tmp_path, config, "fig14")
    table = aggregate.figure_table(config, "fig14", tmp_path)
    ratios = table.set_index(["layer", "epoch"])["ratio"]
    assert ratios[("l0", 1)] == pytest.approx(1.5)  # 2 then 3
    assert ratios[("l0", 2)] == pytest.approx(1.0)
    assert ratios[("l1", 1)] == pytest.approx(1.0)
    assert table["epoch"].min() == 1 and table["layer_index"].tolist().count(1) == 2
    assert table["steps_per_epoch"].eq(50_000 // 8).all() and table["lr_epoch"].eq(0.1).all()  # CIFAR-10, B = 8


def test_spectra_are_the_last_saved_epoch_of_the_chosen_layers(tmp_path):
    config = small_config(fig16=fig("fig16", vary={"batch_size": [4, 8]}, layers=[1]))
    write_figure(tmp_path, config, "fig16")
    table = aggregate.figure_table(config, "fig16", tmp_path)
    assert set(table["layer"]) == {"l1"} and table["epoch"].eq(2).all()
    one = table[table["batch_size"] == 4].sort_values("index")
    assert one["index"].tolist() == [1, 2, 3, 4, 5, 6]
    assert one["sigma"].to_numpy() == pytest.approx(SIGMA["l1"])
    bad = small_config(fig16=fig("fig16", vary={"batch_size": [4]}, layers=[0, 5]))
    with pytest.raises(ValueError, match=r"layers=\[0, 5\].*2 rank layers"):
        aggregate.figure_table(bad, "fig16", tmp_path)


def test_bound_figure_counts_ranks_at_bound_eps_from_the_spectra(tmp_path):
    config = small_config(fig18=fig("fig18"))
    write_figure(tmp_path, config, "fig18")
    table = aggregate.figure_table(config, "fig18", tmp_path)
    last = table[table["epoch"] == 2].set_index("eps")["avg_rank"]
    assert last[1e-3] == 5.0  # logged
    assert last[0.3] == pytest.approx((2 + 2) / 2)  # l0: 0.9, 0.4 > 0.3; l1: 0.8, 0.5 > 0.3
    assert last[0.5] == pytest.approx((1 + 1) / 2)  # σ = 0.5 is not > 0.5
    assert table["m"].eq(1).all() and table["width"].eq(6).all()
    assert table["trivial"].eq((4 + 6) / 2).all()  # the largest possible average rank: mean of min(rows, cols)
    at = table[table["epoch"] == 2].set_index("eps")
    # B = 6, μ = 0.1, wd = 8e-3: torch λ = 4e-3, 6·ln(2/ε)/8e-4 < 5 only for ε > 2·exp(−5·8e-4/6)
    assert at.loc[0.9, "bound_torch"] == pytest.approx(7500 * math.log(2 / 0.9))
    assert at.loc[0.9, "bound_as_printed"] == pytest.approx(3750 * math.log(2 / 0.9))
    assert not at["informative_torch"].any() and not at["informative_as_printed"].any()
    assert at["eps_star_torch"].iloc[0] == pytest.approx(2 * math.exp(-5 * 8e-4 / 6))
    assert at["eps_star_as_printed"].iloc[0] == pytest.approx(2 * math.exp(-5 * 16e-4 / 6))


def test_bound_vs_rank_uses_the_current_lr_and_the_lambda_switch(tmp_path):
    config = small_config(fig18=fig("fig18"))
    config["comparison"]["eps"] = [0.3]
    (cfg,) = write_figure(tmp_path, config, "fig18", epochs=(0, 59, 60), eval_epochs=(0, 59, 60))
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay) == (6, 0.1, 8e-3)
    df = aggregate.bound_vs_rank(config, tmp_path, [cfg.run_id])
    l0 = df[df["layer"] == "l0"].set_index("epoch")
    assert l0.loc[0, "bound"] == pytest.approx(7500 * math.log(2 / 0.3))  # torch: λ = wd/2
    assert l0.loc[60, "lr_epoch"] == pytest.approx(0.02) and l0.loc[60, "bound"] == pytest.approx(
        5 * 7500 * math.log(2 / 0.3))
    assert l0.loc[0, "rank"] == 2 and l0["holds"].all()
    assert l0.loc[0, "tightness"] == pytest.approx(2 / (7500 * math.log(2 / 0.3)))
    config["switches"]["bound_lambda"] = "as_printed"
    printed = aggregate.bound_vs_rank(config, tmp_path, [cfg.run_id])
    assert printed.loc[printed["epoch"] == 0, "bound"].iloc[0] == pytest.approx(3750 * math.log(2 / 0.3))
    assert set(printed["convention"]) == {"as_printed"}
    # min(rows, cols) = 4 and 6: bounds of ~9,000 are vacuous; ε* = 2·exp(−2μλ·trivial/(m·B)) is close to 2
    assert l0["trivial"].eq(4).all() and not df["informative"].any()
    assert l0.loc[0, "eps_star"] == pytest.approx(2 * math.exp(-8e-4 * 4 / 6))


def test_no_weight_decay_means_no_bound(tmp_path):
    config = small_config(fig18=fig("fig18", fixed={"batch_size": 6, "lr": 0.1, "weight_decay": 0.0}))
    (cfg,) = write_figure(tmp_path, config, "fig18")
    df = aggregate.bound_vs_rank(config, tmp_path, [cfg.run_id])
    assert np.isinf(df["bound"]).all() and df["holds"].all() and df["tightness"].eq(0).all()
    summary = aggregate.bound_summary(df)
    assert summary["no_bound_rows"].sum() == len(df) and summary["frac_holds"].isna().all()


@pytest.mark.parametrize("diverged, median_lr", [(None, 0.2), (0.2, 0.4)])
def test_eps_curves_of_the_median_run(tmp_path, diverged, median_lr):
    # B = 6, λ = wd/2 = 4e-3: ε* = 2·exp(−2μλ·trivial/6) falls as μ rises; with three runs the median is μ = 0.2,
    # and with μ = 0.2 diverged the lower median of μ = 0.1, 0.4 is μ = 0.4 (smaller ε*); wd = 0 has no bound
    config = small_config(fig18=fig("fig18", fixed={"batch_size": 6, "weight_decay": 8e-3},
                                    vary={"lr": [0.1, 0.2, 0.4]}))
    runs = write_figure(tmp_path, config, "fig18")
    for cfg in runs:
        if cfg.lr == diverged:
            write_fake_run(tmp_path, cfg, epochs=(0, 1), status="diverged")
    no_wd = small_config(fig18=fig("fig18", fixed={"batch_size": 6, "lr": 0.1, "weight_decay": 0.0}))
    runs += write_figure(tmp_path, no_wd, "fig18")
    table = aggregate.bound_vs_rank(config, tmp_path, [c.run_id for c in runs])
    curves = aggregate.eps_curves(tmp_path, table)
    assert set(curves["lr"]) == {median_lr} and curves["epoch"].eq(2).all()
    assert curves.groupby("layer")["eps"].apply(list).map(len).tolist() == [60, 60]
    for layer, index, trivial in (("l0", 0, 4), ("l1", 1, 6)):  # min(rows, cols) of 4 × 8 and 6 × 6
        part = curves[curves["layer"] == layer]
        sigma = np.asarray(SIGMA[layer], dtype=np.float32)
        assert part["layer_index"].eq(index).all() and part["trivial"].eq(trivial).all()
        assert part["rank"].tolist() == [int((sigma > np.float32(e)).sum()) for e in part["eps"]]
        assert part["bound"].to_numpy() == pytest.approx(6 * np.log(2 / part["eps"]) / (2 * median_lr * 4e-3))
    assert curves["eps_star"].iloc[0] == pytest.approx(2 * math.exp(-2 * median_lr * 4e-3 * 4 / 6))


def test_bound_summary_per_arch_and_eps(tmp_path):
    df = pd.DataFrame({"run_id": ["a", "a", "a", "b", "c"], "arch": "mlp_bn", "eps": 0.05,
                       "status": ["finished", "finished", "finished", "finished", "diverged"],
                       "rank": [1, 4, 3, 2, 99], "bound": [2.0, 2.0, 50.0, np.inf, 1.0], "trivial": 8,
                       "eps_star": [0.01, 0.01, 0.3, 2.0, 0.01]})
    df["holds"], df["tightness"] = df["rank"] <= df["bound"], df["rank"] / df["bound"]
    df["informative"] = df["bound"] < df["trivial"]
    row = aggregate.bound_summary(df).iloc[0]
    assert (row["runs"], row["rows"], row["no_bound_rows"]) == (2, 4, 1)
    assert row["frac_informative"] == pytest.approx(2 / 3) and row["median_eps_star"] == 0.01
    # the vacuous row (bound 50 > 8) holds but is left out of the fraction and the tightness
    assert row["frac_holds"] == 0.5 and row["median_tightness"] == 1.25 and row["max_tightness"] == 2.0


def test_diverged_runs_are_kept_and_marked(tmp_path):
    config = small_config(fig04=fig("fig04", panels=fig("fig04")["panels"][:1], vary={"batch_size": [4, 8]}))
    ok, bad = [fr.run for fr in grid.figure_runs(config, "fig04")]
    write_fake_run(tmp_path, ok)
    write_fake_run(tmp_path, bad, epochs=(0, 1), status="diverged")
    table = aggregate.figure_table(config, "fig04", tmp_path)
    marked = table.drop_duplicates("run_id").set_index("batch_size")
    assert marked.loc[4, "status"] == "finished" and marked.loc[8, "status"] == "diverged"
    assert marked.loc[8, "diverged_epoch"] == 1 and table.loc[table["batch_size"] == 8, "epoch"].max() == 1
    assert marked.loc[8, "diverged_reason"] == "nonfinite_loss" and pd.isna(marked.loc[4, "diverged_reason"])
    config["figures"]["fig14"] = fig("fig14", model="resnet18_relu", fixed=fig("fig04")["panels"][0]["fixed"],
                                     panels=[{"fixed": {"batch_size": 8}}], early_stop_epoch=50)
    assert set(aggregate.figure_table(config, "fig14", tmp_path)["status"]) == {"diverged"}
    cmp = aggregate.bound_vs_rank(config, tmp_path, [ok.run_id, bad.run_id])
    assert set(cmp["status"]) == {"finished", "diverged"}


def test_a_missing_run_is_an_error_naming_it(tmp_path):
    config = small_config(fig04=fig("fig04", vary={"batch_size": [4]}))
    first, *rest = {fr.run.run_id: fr.run for fr in grid.figure_runs(config, "fig04")}.values()
    for cfg in rest:
        write_fake_run(tmp_path, cfg)
    with pytest.raises(FileNotFoundError, match=first.run_id):
        aggregate.figure_table(config, "fig04", tmp_path)


@pytest.mark.parametrize("name,changes", [("fig01", {"vary": {"batch_size": [4]}}), ("fig14", {}),
                                          ("fig16", {"vary": {"batch_size": [4]}, "layers": [1]}), ("fig18", {})])
def test_the_aggregate_view_holds_everything_aggregation_reads(tmp_path, name, changes):
    config = small_config(**{name: fig(name, **changes)})
    write_figure(tmp_path, config, name)
    view = views.aggregate_view(config, name)
    assert "title" not in view["figures"][name] and "bound_lambda" not in view["switches"]
    pd.testing.assert_frame_equal(aggregate.figure_table(view, name, tmp_path),
                                  aggregate.figure_table(config, name, tmp_path))
    config["comparison"]["eps"] = [0.3]
    run_ids = sorted({fr.run.run_id for fr in grid.figure_runs(config, name)})
    pd.testing.assert_frame_equal(aggregate.bound_vs_rank(views.comparison_view(config), tmp_path, run_ids),
                                  aggregate.bound_vs_rank(config, tmp_path, run_ids))


def test_tables_name_the_code_of_each_run_and_the_notes_warn_of_a_mix(tmp_path):
    config = small_config(fig14=fig("fig14", panels=[{"fixed": {"lr": 0.1}}]))
    (cfg,) = write_figure(tmp_path, config, "fig14")
    assert set(aggregate.figure_table(config, "fig14", tmp_path)["code"]) == {provenance.code_label(None)}
    summary = logs.read_summary(tmp_path / cfg.run_id)
    summary["code"] = {"commit": "0123456789abcdef" * 2 + "01234567", "dirty": True, "source_sha256": "ab" * 32}
    (tmp_path / cfg.run_id / "summary.json").write_text(json.dumps(summary))
    one = aggregate.figure_table(config, "fig14", tmp_path)
    assert set(one["code"]) == {"src abababababab (git 01234567-dirty)"}
    assert provenance.code_notes({"fig14": one}) == ["Code behind the figures: fig14: src abababababab "
                                                     "(git 01234567-dirty)."]
    mixed = pd.concat([one, one.assign(code="src cdcdcdcdcdcd")])
    notes = provenance.code_notes({"fig14": mixed, "fig15": one})
    assert len(notes) == 2 and notes[1].startswith("WARNING: fig14 mixes runs trained by 2 versions of the lowrank")
