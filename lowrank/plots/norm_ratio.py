"""Convergence of the weight norms (Figs 14, 15): ‖W_t‖_F/‖W_{t−1}‖_F per layer vs epoch, with y = 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import cm
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lowrank.plots import style


def _limits(ratio: pd.Series) -> tuple[float, float]:
    """y-limits holding 1 and the central 98% of the ratios, so a huge first step does not flatten the rest."""
    lo, hi = np.nanquantile(ratio, [0.01, 0.99]) if ratio.notna().any() else (1.0, 1.0)
    lo, hi = min(lo, 1.0), max(hi, 1.0)
    pad = max(hi - lo, 1e-3) * 0.08
    return lo - pad, hi + pad


def draw(config: dict, name: str, table: pd.DataFrame) -> Figure:
    """One plot per panel, one curve per layer (coloured by network depth), seeds averaged."""
    panels = table[["panel", "panel_label"]].drop_duplicates("panel").sort_values("panel")
    n_layers = int(table["layer_index"].max()) + 1 if len(table) else 1
    colour = cm.ScalarMappable(Normalize(0, max(n_layers - 1, 1)), "viridis")
    fig, axes = style.grid_axes(len(panels), ncols=3)
    for ax, p in zip(axes, panels.itertuples(index=False)):
        sub = table[table["panel"] == p.panel]
        curves = sub.groupby(["layer_index", "epoch"])["ratio"].mean().reset_index()
        for index, layer in curves.groupby("layer_index"):
            ax.plot(layer["epoch"], layer["ratio"], color=colour.to_rgba(index), lw=0.9)
        ax.axhline(1.0, color="k", ls="--", lw=0.8)
        ax.set_ylim(*_limits(sub["ratio"]))
        bad = sub.drop_duplicates("run_id").query("status != @style.FINISHED")
        note = f"(diverged at epoch {bad['diverged_epoch'].min():g})" if len(bad) else ""
        ax.set_title(style.panel_title(p.panel_label, note))
        style.epoch_axis(ax)
        ax.set_ylabel("‖W_t‖ / ‖W_t−1‖")
    fig.suptitle(style.figure_title(config, name))
    fig.tight_layout()
    bar = fig.colorbar(colour, ax=axes, label="layer index (input → output)", fraction=0.03, pad=0.02)
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    return fig
