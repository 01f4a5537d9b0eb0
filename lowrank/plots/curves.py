"""Rank and accuracy curves (Figs 2–13): top row average rank vs epoch, bottom row train/test accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lowrank.plots import style


def draw(config: dict, name: str, table: pd.DataFrame) -> Figure:
    """One column per panel, one colour per hue value, seeds as mean ± min–max band, diverged runs marked ×."""
    spec = config["figures"][name]
    hue, rows = spec.get("hue"), 2 if spec.get("accuracy") else 1
    at = table[np.isclose(table["eps"], table["plot_eps"])]
    hue_col = hue if hue in at.columns else "run_id"
    colours = style.palette(sorted(at[hue_col].unique()))
    panels = at[["panel", "panel_label", "plot_eps"]].drop_duplicates("panel").sort_values("panel")
    fig = style.plt.figure(figsize=(3.6 * len(panels), 2.8 * rows + 0.7))
    axes = fig.subplots(rows, len(panels), squeeze=False, sharex="col")
    for j, p in enumerate(panels.itertuples(index=False)):
        sub = at[at["panel"] == p.panel]
        top = axes[0, j]
        for value, colour in colours.items():
            group = sub[sub[hue_col] == value]
            if group.empty:
                continue
            style.seed_band(top, group, "epoch", "avg_rank", colour, style.label(hue, value)
                            + style.diverged_suffix(group))
            if rows == 2:
                style.seed_band(axes[1, j], group, "epoch", "train_acc", colour, ls="-")
                style.seed_band(axes[1, j], group, "epoch", "test_acc", colour, ls="--")
        top.set_title(style.panel_title(p.panel_label, f"(ε = {p.plot_eps:g})"))
        top.legend(fontsize=7, loc="best")
        style.epoch_axis(axes[-1, j])
    axes[0, 0].set_ylabel("average rank")
    if rows == 2:
        axes[1, 0].set_ylabel("accuracy")
        axes[1, 0].legend(handles=[Line2D([], [], color="k", ls="-", label="train"),
                                   Line2D([], [], color="k", ls="--", label="test")], fontsize=7, loc="lower right")
    fig.suptitle(style.figure_title(config, name))
    fig.tight_layout()
    return fig
