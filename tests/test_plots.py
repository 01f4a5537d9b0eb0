"""Every figure kind renders a non-empty PNG and PDF from a hand-made table (after a CSV round trip),
including a diverged run, a single-run figure and a panel with one hue value."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.patches import Rectangle

from lowrank import aggregate, plots, views
from lowrank.bound import CONVENTIONS, informative_eps, rank_bound

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
EPOCHS = np.arange(0, 11)


def fig(name: str, **changes) -> dict:
    """A real figure of config.yaml with some keys replaced."""
    return {**copy.deepcopy(CONFIG["figures"][name]), **changes}


def make_config(demo: bool = True) -> dict:
    """config.yaml with shrunk figures of every kind (and a single-run curves figure, fig08)."""
    cfg = copy.deepcopy(CONFIG)
    cfg["demo"] = demo
    panels01 = fig("fig01")["panels"]
    for p in panels01:
        p["vary"] = {p["y"]: p["vary"][p["y"]][:2]}
    cfg["figures"] = {
        "fig01": fig("fig01", panels=panels01, vary={"batch_size": [4, 8, 16]}),
        "fig02": fig("fig02", panels=fig("fig02")["panels"][:2], vary={"lr": [0.1, 2.0]}, seeds=[0, 1]),
        "fig08": fig("fig08", vary={"batch_size": [4]}),
        "fig14": fig("fig14", panels=fig("fig14")["panels"][:2]),
        "fig16": fig("fig16", vary={"batch_size": [4, 128]}, layers=[0, 3]),
        "fig18": fig("fig18"),
    }
    return cfg


def runs(config: dict, name: str, diverged: tuple = ()) -> pd.DataFrame:
    """The figure's real (panel, run) rows, with hand-made statuses: the i-th runs listed in `diverged`."""
    frame = aggregate.figure_runs_frame(config, name)
    ids = frame["run_id"].unique()
    bad = frame["run_id"].isin(ids[list(diverged)])
    return frame.assign(status=np.where(bad, "diverged", "finished"), diverged_epoch=np.where(bad, 4.0, np.nan),
                        diverged_reason=np.where(bad, "nonfinite_loss", None))


def per(frame: pd.DataFrame, **columns) -> pd.DataFrame:
    """Cross every row of `frame` with the product of the given columns' values."""
    out = frame
    for key, values in columns.items():
        out = out.merge(pd.DataFrame({key: values}), how="cross")
    return out


def truncate_diverged(table: pd.DataFrame) -> pd.DataFrame:
    """A diverged run's logs stop at its diverged epoch, with a non-finite last value."""
    bad = table["status"] == "diverged"
    table = table[~bad | (table["epoch"] <= table["diverged_epoch"])].copy()
    value = [c for c in ("avg_rank", "ratio", "sigma") if c in table.columns][0]
    table.loc[(table["status"] == "diverged") & (table["epoch"] == table["diverged_epoch"]), value] = np.nan
    return table


def curves_table(config: dict, name: str, eps: list[float], diverged: tuple = ()) -> pd.DataFrame:
    t = per(runs(config, name, diverged), epoch=EPOCHS, eps=eps)
    scale = 1 + t["lr"] + t["batch_size"] / 16 + 0.3 * t["seed"]
    t["avg_rank"] = 100 - 50 * (1 - np.exp(-t["epoch"] / 3)) / scale
    t["train_acc"] = 1 - 0.9 * np.exp(-t["epoch"] / 2)
    t["test_acc"] = t["train_acc"] * 0.8
    return truncate_diverged(t)


def tables(config: dict) -> dict[str, pd.DataFrame]:
    """Hand-made tables of the shape aggregate.figure_table gives, one per figure of make_config."""
    heat = aggregate.final_rows(curves_table(config, "fig01", [1e-3, 0.05], diverged=(0,)))
    norms = per(runs(config, "fig14", diverged=(1,)), epoch=EPOCHS[1:], layer_index=[0, 1, 2])
    norms = truncate_diverged(norms.assign(ratio=1 + (norms["layer_index"] + 1) / norms["epoch"] ** 2,
                                           layer="layer" + norms["layer_index"].astype(str)))
    spectra = per(runs(config, "fig16", diverged=(1,)), layer_index=[0, 3], index=np.arange(1, 9))
    spectra = spectra.assign(epoch=500, layer="conv" + spectra["layer_index"].astype(str), rows=8, cols=72,
                             sigma=np.exp(-spectra["index"] * spectra["batch_size"] / 64))
    spectra.loc[spectra["index"] == 8, "sigma"] = 0.0  # σ = 0 cannot go on a log axis
    bound = curves_table(config, "fig18", [1e-3, 0.3, 0.5, 0.7, 0.9]).assign(m=1, width=10000, trivial=6536.0)
    for c in CONVENTIONS:  # the columns aggregate adds (B = 6, μ = 0.1, wd = 8e-3)
        bound[f"bound_{c}"] = [rank_bound(1, 6, 0.1, 8e-3, e, c) for e in bound["eps"]]
        bound[f"informative_{c}"] = bound[f"bound_{c}"] < bound["trivial"]
        bound[f"eps_star_{c}"] = informative_eps(1, 6, 0.1, 8e-3, 6536.0, c)
    bound.loc[bound["eps"] >= 0.3, "avg_rank"] /= 50
    return {"fig01": heat, "fig02": curves_table(config, "fig02", [1e-3, 0.05], diverged=(3,)),
            "fig08": curves_table(config, "fig08", [1e-3]), "fig14": norms, "fig16": spectra, "fig18": bound}


def comparison_table() -> pd.DataFrame:
    """A hand-made bound_vs_rank table: two archs, a wd = 0 run (no bound), a diverged run, a rank 0."""
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"run_id": [f"r{i % 6}" for i in range(n)], "arch": np.where(np.arange(n) % 2, "vgg16_bn",
                                                                                      "resnet18"),
                       "eps": np.tile([0.01, 0.05], n // 2), "rank": rng.integers(0, 60, n),
                       "bound": rng.uniform(10, 1e5, n), "status": "finished", "epoch": np.arange(n) // 12,
                       "layer": "l" + (np.arange(n) % 3).astype(str), "trivial": 64,
                       "eps_star": rng.uniform(0.001, 2, n)})
    df.loc[df["run_id"] == "r5", ["bound", "eps_star"]] = [np.inf, 2.0]
    df.loc[df["run_id"] == "r4", "status"] = "diverged"
    df["holds"], df["tightness"] = df["rank"] <= df["bound"], df["rank"] / df["bound"]
    df["informative"] = df["bound"] < df["trivial"]
    return df


def roundtrip(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Through CSV, as the pipeline stores tables (empty labels come back as NaN)."""
    table.to_csv(path, index=False)
    return pd.read_csv(path)


def assert_rendered(png: Path, pdf: Path) -> None:
    assert png.stat().st_size > 5000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("name", ["fig01", "fig02", "fig08", "fig14", "fig16", "fig18"])
def test_every_kind_renders_png_and_pdf(tmp_path, name):
    config = make_config()
    table = roundtrip(tables(config)[name], tmp_path / f"{name}.csv")
    plots.render(views.render_view(config, name), name, table, tmp_path / f"{name}.png",  # only the job's view
                 tmp_path / "pdf" / f"{name}.pdf")
    assert_rendered(tmp_path / f"{name}.png", tmp_path / "pdf" / f"{name}.pdf")


def test_titles_say_demo_only_in_demo_mode():
    from lowrank.plots import style

    assert style.figure_title(make_config(demo=True), "fig02").startswith("DEMO (synthetic data): Fig 2")
    assert style.figure_title(make_config(demo=False), "fig02").startswith("Fig 2")


def test_a_run_that_diverged_everywhere_still_renders(tmp_path):
    config = make_config()
    table = curves_table(config, "fig08", [1e-3], diverged=(0,))
    plots.render(config, "fig08", table, tmp_path / "a.png", tmp_path / "a.pdf")
    assert_rendered(tmp_path / "a.png", tmp_path / "a.pdf")


def test_heatmap_draws_an_early_stopped_run_and_hatches_a_nonfinite_one(tmp_path):
    config = make_config()
    table = tables(config)["fig01"]
    cell = lambda wd: table.index[(table["panel"] == 0) & (table["batch_size"] == 8)  # noqa: E731
                                  & (table["weight_decay"] == wd)].item()
    stop, nan = cell(0.0), cell(2e-3)
    table.loc[stop, ["status", "diverged_epoch", "diverged_reason", "avg_rank"]] = ["diverged", 50.0, "early_stop",
                                                                                    12.34]
    table.loc[nan, ["status", "diverged_epoch", "diverged_reason", "avg_rank"]] = ["diverged", 7.0,
                                                                                   "nonfinite_loss", np.nan]
    ax = plots.heatmap.draw(config, "fig01", roundtrip(table, tmp_path / "fig01.csv")).axes[0]
    cells = {(t.get_position()[0] - 0.5, round(t.get_position()[1] - 0.5, 1)): t.get_text() for t in ax.texts}
    j, i_stop, i_nan = 1, 0, 1  # B = 8 is the second column; λ = 0 the first row, 2e-3 the second
    assert cells[(j, i_stop)] == "12.3" and cells[(j, i_stop - 0.3)] == "early stop, epoch 50"
    assert cells[(j, i_nan)] == "diverged"
    boxes = {(p.get_x(), p.get_y()): p for p in ax.patches if isinstance(p, Rectangle)}
    assert boxes[(j, i_nan)].get_hatch() == "xx" and boxes[(j, i_stop)].get_linestyle() == "--"
    assert not boxes[(j, i_stop)].get_hatch()


def eps_curves_table() -> pd.DataFrame:
    """A hand-made aggregate.eps_curves table: one run of one arch, two layers, rank_ε falling with ε (0 at the top)."""
    eps = aggregate.EPS_CURVE
    rows = []
    for i, (layer, trivial) in enumerate((("l0", 16), ("l1", 64))):
        bound = [rank_bound(1, 8, 0.1, 5e-2, e) for e in eps]
        rows += [{"run_id": "r0", "arch": "mlp_bn", "batch_size": 8, "lr": 0.1, "weight_decay": 5e-2, "epoch": 10,
                  "lr_epoch": 0.1, "layer": layer, "layer_index": i, "m": 1, "trivial": trivial,
                  "eps_star": informative_eps(1, 8, 0.1, 5e-2, trivial), "convention": "torch", "eps": e,
                  "rank": int(trivial * max(0.0, 1 - e)), "bound": b} for e, b in zip(eps, bound)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("curves", [eps_curves_table(), eps_curves_table().iloc[:0]])
def test_bound_vs_rank_renders(tmp_path, curves):
    table = roundtrip(comparison_table(), tmp_path / "bvr.csv")
    curves = roundtrip(curves, tmp_path / "curves.csv")
    plots.render_bound_vs_rank(views.comparison_view(make_config()), table, curves, tmp_path / "bvr.png",
                               tmp_path / "bvr.pdf")
    assert_rendered(tmp_path / "bvr.png", tmp_path / "bvr.pdf")


def test_a_second_rendering_draws_the_other_plot_eps(tmp_path, monkeypatch):
    config = make_config()
    config["figures"] = {"fig04": fig("fig04", vary={"batch_size": [4, 8]})}
    table = curves_table(config, "fig04", [1e-3, 0.04, 0.05])
    assert table["plot_eps"].eq(1e-3).all()  # the captions' ε by default
    drawn = {}

    def spy(config: dict, name: str, table: pd.DataFrame):
        drawn.update(config=config, table=table)
        return plots.curves.draw(config, name, table)

    monkeypatch.setitem(plots.DRAW, "curves", spy)
    plots.render(config, "fig04", table, tmp_path / "b.png", tmp_path / "b.pdf", plot_eps="notebook")
    assert drawn["table"].groupby("panel")["plot_eps"].first().tolist() == [0.05, 0.05, 0.04]
    assert drawn["config"]["figures"]["fig04"]["title"].endswith("(at the notebook ε)")
    assert config["figures"]["fig04"]["title"] == CONFIG["figures"]["fig04"]["title"]  # the caller's config kept
    assert_rendered(tmp_path / "b.png", tmp_path / "b.pdf")
