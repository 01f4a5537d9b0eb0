"""Render a figure's tidy table (lowrank.aggregate) to PNG and PDF, dispatching on the figure's kind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lowrank import grid
from lowrank.plots import bound, curves, heatmap, norm_ratio, shape, spectra, style

DRAW = {"curves": curves.draw, "heatmap": heatmap.draw, "norm_ratio": norm_ratio.draw, "spectra": spectra.draw,
        "bound": bound.draw}


def render(config: dict, name: str, table: pd.DataFrame, out_png: Path, out_pdf: Path,
           plot_eps: str | None = None) -> None:
    """Draw figure `name` from its table alone (plus the config) and save it as PNG and PDF.

    With `plot_eps` (a switches.plot_eps choice) the panels are drawn at that choice's ε, which the table holds
    too (every logged ε), and the title says so: the second rendering of Figs 4 and 12.
    """
    if plot_eps is not None:
        title = f"{config['figures'][name]['title']} (at the {plot_eps} ε)"
        config = grid.merge(grid.with_plot_eps(config, plot_eps), {"figures": {name: {"title": title}}})
        eps = {p: grid.plot_eps(config, name, int(p)) for p in table["panel"].unique()}
        table = table.assign(plot_eps=table["panel"].map(eps))
    style.save(DRAW[config["figures"][name]["kind"]](config, name, table), out_png, out_pdf)


def render_bound_vs_rank(config: dict, table: pd.DataFrame, curves: pd.DataFrame, out_png: Path,
                         out_pdf: Path) -> None:
    """Draw the all-runs bound-vs-rank comparison (aggregate.bound_vs_rank, aggregate.eps_curves) as PNG and PDF."""
    style.save(bound.draw_comparison(config, table, curves), out_png, out_pdf)


def render_bound_shape(config: dict, table: pd.DataFrame, fits: pd.DataFrame, out_png: Path, out_pdf: Path) -> None:
    """Draw Theorem 3.3's shape (lowrank.shape: the runs and each panel's fit) as PNG and PDF."""
    style.save(shape.draw(config, table, fits), out_png, out_pdf)
