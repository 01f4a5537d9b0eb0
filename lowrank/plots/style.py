"""What every figure shares: Agg backend, titles (DEMO prefix), colours, seed bands, diverged-run marks, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lowrank import grid  # noqa: E402
from lowrank.logs import FINISHED  # noqa: E402

DPI = 120
sns.set_theme(style="whitegrid", context="paper", font_scale=0.9)


def title(config: dict, text: str) -> str:
    """A figure title, prefixed so a demo figure can never be mistaken for the paper's results."""
    return grid.demo_prefix(config) + text


def figure_title(config: dict, name: str) -> str:
    """The configured title of figure `name` (with the demo prefix when config.demo is true)."""
    return title(config, config["figures"][name]["title"])


def label(key: str | None, value: object) -> str:
    """A hue value as legends print it, e.g. 'B = 8' (ints read back from CSV as floats print as ints)."""
    if isinstance(value, float) and value.is_integer() and key == "batch_size":
        value = int(value)
    return grid.fmt(key, value) if key else str(value)


def panel_title(label: object, note: str = "") -> str:
    """A panel's title: its label (empty after a CSV round trip reads back as NaN) and an optional note."""
    text = "" if pd.isna(label) else str(label)
    return f"{text}  {note}".strip()


def palette(values: list) -> dict:
    """One colour per value, ordered (low → high reads dark → light in the 'viridis' map)."""
    colours = sns.color_palette("viridis", n_colors=max(len(values), 1))
    return dict(zip(values, colours))


def diverged_suffix(runs: pd.DataFrame) -> str:
    """' (diverged)' when every run of a group diverged, ' (k/n diverged)' when some did, else ''."""
    status = runs.drop_duplicates("run_id")["status"]
    bad, n = int((status != FINISHED).sum()), len(status)
    if bad == 0:
        return ""
    return " (diverged)" if bad == n else f" ({bad}/{n} diverged)"


def mark_end(ax: Axes, x: pd.Series, y: pd.Series, colour) -> None:
    """An × at the last finite point of a diverged run's curve."""
    ok = np.isfinite(y.to_numpy(dtype=float))
    if ok.any():
        ax.plot(x.to_numpy()[ok][-1], y.to_numpy(dtype=float)[ok][-1], marker="x", color=colour, ms=7, mew=2,
                ls="none")


def seed_band(ax: Axes, runs: pd.DataFrame, x: str, y: str, colour, label: str | None = None,
              ls: str = "-") -> None:
    """Mean over the finished seeds with a min–max band; each diverged run as its own line ending in ×."""
    done = runs[runs["status"] == FINISHED]
    if not done.empty:
        stats = done.groupby(x)[y].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], color=colour, ls=ls, lw=1.4, label=label)
        if done["run_id"].nunique() > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2, lw=0)
        label = None
    for _, run in runs[runs["status"] != FINISHED].groupby("run_id"):
        run = run.sort_values(x)
        ax.plot(run[x], run[y], color=colour, ls=ls, lw=1.0, alpha=0.8, label=label)
        mark_end(ax, run[x], run[y], colour)
        label = None


def epoch_axis(ax: Axes) -> None:
    """Label an x axis as epochs, with integer ticks."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def grid_axes(n: int, ncols: int, width: float = 3.6, height: float = 2.9) -> tuple[Figure, list[Axes]]:
    """n axes laid out row-major in at most ncols columns (unused cells hidden)."""
    ncols = max(1, min(n, ncols))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def save(fig: Figure, out_png: Path, out_pdf: Path) -> None:
    """PNG (dpi 120) and PDF, parent folders created; the figure is closed afterwards."""
    for path in (Path(out_png), Path(out_pdf)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
