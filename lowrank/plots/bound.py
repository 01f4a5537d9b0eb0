"""Theorem 3.3's bound against measured ranks: Fig 18 (one wide MLP) and the all-runs comparison.

Both read the bound, the trivial bound, the informative flag and ε* from their tables (lowrank.aggregate);
nothing is recomputed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lowrank.aggregate import last_evaluation
from lowrank.bound import paper_lambda
from lowrank.plots import style

LINES = {"torch": ("--", "λ = wd/2 (consistent)"), "as_printed": (":", "λ = wd (the paper's, inferred)")}


def _rank_panel(ax, sub: pd.DataFrame, bound_eps: list[float], switch: str) -> None:
    """Average rank per ε (colour), that ε's bound lines (dashed: λ = wd/2, dotted: λ = wd), the trivial bound."""
    row = sub.iloc[0]
    colours = style.palette(sorted(sub["eps"].unique()))
    top = float(row.width)
    for eps, colour in colours.items():
        group = sub[np.isclose(sub["eps"], eps)]
        bounds = {c: float(group[f"bound_{c}"].iloc[0]) for c in LINES} if any(np.isclose(eps, bound_eps)) else {}
        text = "; bounds " + " | ".join(f"{b:.0f}" for b in bounds.values()) if bounds else ""
        style.seed_band(ax, group, "epoch", "avg_rank", colour, f"ε = {eps:g}{text}" + style.diverged_suffix(group))
        for convention, value in bounds.items():
            if np.isfinite(value):
                ax.axhline(value, color=colour, ls=LINES[convention][0], lw=1.6 if convention == switch else 1.0)
                top = max(top, value)
    ax.axhline(row.width, color="0.3", lw=1.0)
    ax.axhline(row.trivial, color="k", lw=2.0, alpha=0.5)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, top * 2)
    ax.set_ylabel("average rank (symlog: linear below 1)")
    first = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      title="measured average rank (bounds: λ = wd/2 | λ = wd)", title_fontsize=7)
    ax.add_artist(first)
    lam = {c: paper_lambda(row.weight_decay, c) for c in LINES}
    ax.legend(handles=[Line2D([], [], color="k", ls="-", label="measured average rank"),
                       *[Line2D([], [], color="k", ls=ls, lw=1.6 if c == switch else 1.0,
                                label=f"bound, {text}: λ = {lam[c]:g}, informative for ε > "
                                      f"{row[f'eps_star_{c}']:.2f}" + (" ← switch" if c == switch else ""))
                         for c, (ls, text) in LINES.items()],
                       Line2D([], [], color="k", lw=2.0, alpha=0.5,
                              label=f"trivial bound: largest average rank {row.trivial:.0f}"),
                       Line2D([], [], color="0.3", label=f"width = {int(row.width)}")],
              fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0))


def _eps_panel(ax, sub: pd.DataFrame, switch: str) -> None:
    """At the last evaluation: measured average rank and both bounds vs ε, crossing the trivial bound at ε*."""
    last = sub[sub["epoch"] == sub["epoch"].max()].groupby("eps").agg(
        avg_rank=("avg_rank", "mean"), informative=(f"informative_{switch}", "first"),
        **{f"bound_{c}": (f"bound_{c}", "first") for c in LINES}).reset_index()
    row = sub.iloc[0]
    ax.plot(last["eps"], last["avg_rank"], "o-", color="C0", label="measured average rank (last evaluation)")
    for c, (ls, text) in LINES.items():
        ax.plot(last["eps"], last[f"bound_{c}"], ls=ls, marker=".", color="k", lw=1.6 if c == switch else 1.0,
                label=f"bound, {text}")
        ax.axvline(row[f"eps_star_{c}"], color="C3", ls=ls, lw=1.0, label=f"ε* ({c}) = {row[f'eps_star_{c}']:.2f}")
    ax.axhline(row.trivial, color="k", lw=2.0, alpha=0.5, label=f"trivial bound {row.trivial:.0f}")
    ax.set_xscale("log")
    ax.set_xlim(right=2)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, 2 * max(row.trivial, last[[f"bound_{c}" for c in LINES]].replace(np.inf, np.nan).max().max()))
    ax.set_xlabel("ε")
    ax.set_ylabel("average rank (symlog)")
    ax.set_title(f"rank and bound vs ε: informative right of ε*, at {int(last['informative'].sum())} of "
                 f"{len(last)} plotted ε ({switch})", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=2)  # below: the data stay clear


def draw(config: dict, name: str, table: pd.DataFrame) -> Figure:
    """Per panel: average rank vs epoch with the bound lines, the trivial bound and ε*; rank and bound vs ε beside it;
    accuracy below."""
    spec, switch = config["figures"][name], config["switches"]["bound_lambda"]
    bound_eps = sorted(float(e) for e in spec["bound_eps"])
    panels = table[["panel", "panel_label"]].drop_duplicates("panel").sort_values("panel")
    rows = 2 if spec.get("accuracy") else 1
    fig = style.plt.figure(figsize=(13.5 * len(panels), 3.8 + 2.4 * (rows - 1) + 0.8))
    axes = fig.subplots(rows, 2 * len(panels), squeeze=False, height_ratios=[3, 2][:rows],
                        width_ratios=[8.5, 5] * len(panels))
    for k, p in enumerate(panels.itertuples(index=False)):
        sub, left, right = table[table["panel"] == p.panel], axes[:, 2 * k], axes[:, 2 * k + 1]
        _rank_panel(left[0], sub, bound_eps, switch)
        _eps_panel(right[0], sub, switch)
        row = sub.iloc[0]
        left[0].set_title(style.panel_title(p.panel_label, f"B = {int(row.batch_size)}, μ = {row.lr:g} (initial; "
                                                           f"bounds use it), wd = {row.weight_decay:g}; "
                                                           f"ε* = {row[f'eps_star_{switch}']:.2f}"), fontsize=8)
        if rows == 2:
            left[1].sharex(left[0])
            right[1].set_visible(False)
            at = sub[np.isclose(sub["eps"], sub["plot_eps"])]
            for ls, col in (("-", "train_acc"), ("--", "test_acc")):
                style.seed_band(left[1], at, "epoch", col, "k", col.replace("_acc", ""), ls=ls)
            left[1].set_ylabel("accuracy")
            left[1].legend(fontsize=7)
        style.epoch_axis(left[-1])
    fig.suptitle(style.figure_title(config, name))
    fig.tight_layout()
    return fig


def _eps_star_panel(ax, done: pd.DataFrame, eps_values: list[float]) -> None:
    """ε* per (run, layer) at each run's last evaluation: the bound is informative only for ε > ε*."""
    finite = done[np.isfinite(done["bound"])]
    last = last_evaluation(finite)
    stars = last.drop_duplicates(["run_id", "layer"])["eps_star"]
    if len(stars):
        ax.hist(stars, bins=np.linspace(0, 2, 41), color="0.5")
    for eps in eps_values:
        ax.axvline(eps, color="C3", lw=1)
    ax.set_xlim(0, 2)
    ax.set_xlabel("ε* (bound < min(rows, cols) for ε > ε*); red: the compared ε")
    ax.set_ylabel("(run, layer) pairs")
    ax.set_title(f"ε* at the last evaluation: {int((stars < max(eps_values, default=0)).sum())} of {len(stars)} "
                 "(run, layer) pairs\ninformative at the largest compared ε", fontsize=8)


def _eps_star_text(eps_star: float) -> str:
    """ε* for a title; close to 2 (where the bound is vacuous almost everywhere) as 2 − its distance, not '2'."""
    return f"{eps_star:.3g}" if eps_star < 1.99 else f"2 − {2 - eps_star:.1e}"


def _eps_curve_panel(ax, run: pd.DataFrame) -> None:
    """One run, every rank layer (colour: depth): rank_ε (solid) and the bound (dashed) over min(rows, cols) vs ε;
    the bound crosses 1 at the layer's ε* (triangle) and is informative right of it."""
    layers = run.drop_duplicates("layer").sort_values("layer_index")
    colours = dict(zip(layers["layer"], sns.color_palette("viridis", n_colors=len(layers))))
    for layer, part in run.groupby("layer"):
        part = part.sort_values("eps")
        ax.plot(part["eps"], (part["rank"] / part["trivial"]).where(part["rank"] > 0), color=colours[layer], lw=1.0)
        ax.plot(part["eps"], part["bound"] / part["trivial"], color=colours[layer], lw=1.0, ls="--")
    ax.scatter(layers["eps_star"], np.ones(len(layers)), c=[colours[n] for n in layers["layer"]], marker="v", s=25,
               zorder=3, edgecolors="k", linewidths=0.4)
    ax.axhline(1.0, color="k", lw=1.5, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlim(right=2)
    ax.set_yscale("log")
    ax.set_ylim(0.5 / layers["trivial"].max(), 1e3)
    ax.set_xlabel("ε")
    ax.set_ylabel("rank_ε or bound / min(rows, cols)")
    row = layers.iloc[0]
    ax.set_title(f"{row.arch}, the median run: B = {int(row.batch_size)}, μ_t = {row.lr_epoch:.3g}, "
                 f"wd = {row.weight_decay:g}, epoch {int(row.epoch)}\nε* over its {len(layers)} layers: "
                 f"{_eps_star_text(layers['eps_star'].min())} to {_eps_star_text(layers['eps_star'].max())}",
                 fontsize=8)
    ax.legend(handles=[Line2D([], [], color="0.3", label="measured rank_ε (spectra)"),
                       Line2D([], [], color="0.3", ls="--", label="bound m·B·ln(2/ε)/(2μ_t λ)"),
                       Line2D([], [], color="0.3", marker="v", ls="", label="ε*: bound = min(rows, cols)"),
                       Line2D([], [], color="k", lw=1.5, alpha=0.5, label="min(rows, cols)"),
                       Line2D([], [], ls="", label="colour: layer, first (dark) to last (light)")],
              fontsize=6, loc="lower left")


def draw_comparison(config: dict, table: pd.DataFrame, curves: pd.DataFrame) -> Figure:
    """Rank vs bound, both over min(rows, cols), per ε: right of x = 1 the bound is vacuous; ε* per run × layer;
    per architecture, its median run's rank_ε and bound as functions of ε (aggregate.eps_curves)."""
    done = table[(table["status"] == style.FINISHED)]
    eps_values = sorted(done["eps"].unique()) or sorted(float(e) for e in config["comparison"]["eps"])
    archs = sorted(done["arch"].unique())
    colours = dict(zip(archs, sns.color_palette("tab10", n_colors=max(len(archs), 1))))
    runs = sorted(curves["arch"].unique())
    fig, axes = style.grid_axes(len(eps_values) + 1 + len(runs), ncols=3, width=4.2, height=4.0)
    for ax, arch in zip(axes[len(eps_values) + 1:], runs):
        _eps_curve_panel(ax, curves[curves["arch"] == arch])
    for ax, eps in zip(axes, eps_values):
        sub = done[np.isclose(done["eps"], eps)]
        finite = sub[np.isfinite(sub["bound"])]
        shown = finite[finite["rank"] > 0]
        for arch, part in shown.groupby("arch"):
            ax.scatter(part["bound"] / part["trivial"], part["rank"] / part["trivial"], s=4, alpha=0.35,
                       color=colours[arch], label=arch, rasterized=True, lw=0)
        if len(shown):
            x = shown["bound"] / shown["trivial"]
            lo, hi = min(x.min(), (shown["rank"] / shown["trivial"]).min()), max(x.max(), 1.0)
            ax.plot([lo, hi], [lo, hi], color="k", ls="--", lw=1, label="rank = bound")
            ax.axvline(1.0, color="k", lw=1.5, alpha=0.5, label="bound = min(rows, cols)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=7, markerscale=3)
        informative = finite[finite["informative"].astype(bool)]
        held = (f"{informative['holds'].mean():.0%} of them hold" if len(informative) else "none to judge")
        ax.set_title(f"ε = {eps:g}: informative {len(informative)} of {len(finite)} ({held})\nnot shown: "
                     f"{int(np.isinf(sub['bound']).sum())} rows with wd = 0 (no bound), "
                     f"{int((finite['rank'] == 0).sum())} with rank 0", fontsize=8)
        ax.set_xlabel("bound / min(rows, cols)   (right of 1: vacuous)")
        ax.set_ylabel("measured rank / min(rows, cols)")
    _eps_star_panel(axes[len(eps_values)], done, eps_values)
    n_div = table.loc[table["status"] != style.FINISHED, "run_id"].nunique()
    convention = config["switches"]["bound_lambda"]
    fig.suptitle(style.title(config, f"Theorem 3.3's bound vs the measured rank, every run × layer × evaluation "
                                     f"({LINES[convention][1]}; {n_div} diverged run(s) left out)"))
    fig.tight_layout()
    return fig
