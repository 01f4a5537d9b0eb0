"""Singular values at the end of training (Figs 16, 17): one plot per layer, σ_i of W/‖W‖_F vs i, log y."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from lowrank.plots import style


def draw(config: dict, name: str, table: pd.DataFrame) -> Figure:
    """One subplot per selected layer, one curve per hue value (seed-mean); σ ≤ 0 is left out of the log axis."""
    hue = config["figures"][name].get("hue")
    hue_col = hue if hue in table.columns else "run_id"
    colours = style.palette(sorted(table[hue_col].unique()))
    layers = table[["layer_index", "layer", "rows", "cols"]].drop_duplicates("layer_index").sort_values(
        "layer_index")
    data = table.assign(sigma=table["sigma"].where(table["sigma"] > 0))
    fig, axes = style.grid_axes(len(layers), ncols=3)
    for ax, l in zip(axes, layers.itertuples(index=False)):
        sub = data[data["layer_index"] == l.layer_index]
        for value, colour in colours.items():
            group = sub[sub[hue_col] == value]
            if not group.empty:
                curve = group.groupby("index")["sigma"].mean()
                ax.plot(curve.index, curve.to_numpy(), color=colour, lw=1.2,
                        label=style.label(hue, value) + style.diverged_suffix(group))
        ax.set_yscale("log")
        ax.set_title(f"layer {l.layer_index}: {l.layer} ({l.rows}×{l.cols})", fontsize=8)
        ax.set_xlabel("index i")
        ax.set_ylabel("σ_i(W / ‖W‖_F)")
        ax.legend(fontsize=7)
    fig.suptitle(style.figure_title(config, name))
    fig.tight_layout()
    return fig
