"""Heat-maps of end-of-training values over a pair of hyperparameters (Fig 1): an early-stopped run drawn with its
last value and marked, a cell whose runs all ended in a non-finite loss hatched."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lowrank import grid
from lowrank.logs import EARLY_STOP
from lowrank.plots import style

VALUES = {"rank": ("avg_rank", "average rank", "viridis", ".1f"),
          "test_acc": ("test_acc", "test accuracy", "magma", ".2f"),
          "train_acc": ("train_acc", "train accuracy", "magma", ".2f")}


def _ticks(values) -> list[str]:
    """Axis tick labels of a hyperparameter's values."""
    return [f"{v:g}" for v in values]


def _panel(ax: Axes, sub: pd.DataFrame, x: str, y: str, value: str) -> None:
    """One heat-map: seed-mean of `value` over finished and early-stopped (marked) runs; all non-finite: hatched."""
    column, what, cmap, fmt = VALUES[value]
    xs, ys = sorted(sub[x].unique()), sorted(sub[y].unique())
    stopped = sub["diverged_reason"] == EARLY_STOP
    drawn = sub[(sub["status"] == style.FINISHED) | stopped]
    cells = drawn.pivot_table(index=y, columns=x, values=column, aggfunc="mean").reindex(index=ys, columns=xs)
    sns.heatmap(cells.astype(float), ax=ax, annot=True, fmt=fmt, cmap=cmap, annot_kws={"fontsize": 7},
                cbar_kws={"label": what}, xticklabels=_ticks(xs), yticklabels=_ticks(ys))
    for (yv, xv), runs in sub[stopped].groupby([y, x]):
        i, j = ys.index(yv), xs.index(xv)
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, ec="0.5", ls="--", lw=1.5))
        ax.text(j + 0.5, i + 0.2, f"early stop, epoch {runs['diverged_epoch'].min():g}", ha="center", va="center",
                fontsize=5.5, bbox={"fc": "white", "alpha": 0.7, "lw": 0, "pad": 0.5})
    diverged = sub[(sub["status"] != style.FINISHED) & ~stopped][[y, x]].drop_duplicates()
    for cell in diverged.itertuples(index=False):
        i, j = ys.index(getattr(cell, y)), xs.index(getattr(cell, x))
        if pd.isna(cells.iat[i, j]):
            ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="xx", ec="0.4", lw=0))
            ax.text(j + 0.5, i + 0.5, "diverged", ha="center", va="center", fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(grid.SYMBOLS.get(x, x))
    ax.set_ylabel(grid.SYMBOLS.get(y, y))


def draw(config: dict, name: str, table: pd.DataFrame) -> Figure:
    """One heat-map per panel: x = the figure's `x`, y = the panel's `y`, colour = the panel's `value`."""
    spec = config["figures"][name]
    panels = grid.panels_of(spec)
    fig, axes = style.grid_axes(len(panels), ncols=2, width=5.0, height=3.6)
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        sub = table[table["panel"] == i]
        _panel(ax, sub, spec["x"], panel["y"], panel.get("value", "rank"))
        eps = f"(ε = {sub['plot_eps'].iloc[0]:g})" if panel.get("value", "rank") == "rank" else ""
        ax.set_title(style.panel_title(panel.get("label"), eps))
    fig.suptitle(style.figure_title(config, name))
    fig.tight_layout()
    return fig
