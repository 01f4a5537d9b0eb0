"""Theorem 3.3's shape: the final rank of every run with weight decay against s = B/(2μ_T λ), one panel per model,
dataset and plot ε, with each panel's Kendall τ and log-log fit, all read from lowrank.shape's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lowrank.plots import style
from lowrank.plots.bound import LINES


def _title(fit) -> str:
    """A panel's label, its runs and τ, and why it does not count towards the scorecard row if it does not."""
    left = [f"{n} {what} left out" for n, what in ((fit.diverged, "diverged"), (fit.rank_zero, "rank-0 (log axis)"))
            if n]
    counted = "" if fit.counted else " (too few runs or s: not counted in the scorecard)"
    tau = f"Kendall τ = {fit.tau:+.2f}" if np.isfinite(fit.tau) else "no τ (one s)"
    return (f"{fit.panel_label}\n{fit.runs} runs, {fit.distinct_s} distinct s: {tau}{counted}"
            + (f"\n{'; '.join(left)}" if left else ""))


def draw(config: dict, table: pd.DataFrame, fits: pd.DataFrame) -> Figure:
    """Per panel (shape.shape_table's runs, shape.panel_fits's fit): final average rank / average min(rows, cols) vs
    s (log-log), colour: which of B, μ, λ the run's figures vary; the fitted line with its slope's 95% interval."""
    done = table[table["status"] == style.FINISHED]
    kinds = sorted(done["varies"].unique())
    colours = dict(zip(kinds, sns.color_palette("tab10", n_colors=max(len(kinds), 1))))
    fig, axes = style.grid_axes(max(len(fits), 1), ncols=3, width=4.6, height=4.0)
    if fits.empty:
        axes[0].text(0.5, 0.5, "no run with weight decay", ha="center", va="center", transform=axes[0].transAxes)
    for ax, fit in zip(axes, fits.itertuples(index=False)):
        sub = done[(done["panel"] == fit.panel) & (done["rank_norm"] > 0)]
        for kind, part in sub.groupby("varies", sort=False):
            ax.scatter(part["s"], part["rank_norm"], s=22, alpha=0.75, color=colours[kind], label=f"varies: {kind}",
                       edgecolors="k", linewidths=0.3)
        if np.isfinite(fit.slope):
            xs = np.geomspace(sub["s"].min(), sub["s"].max(), 50)
            ax.plot(xs, np.exp(fit.intercept) * xs ** fit.slope, color="k", ls="--", lw=1.2,
                    label=f"log-log fit: slope {fit.slope:.2f} [{fit.slope_lo:.2f}, {fit.slope_hi:.2f}]")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("s = B/(2μ_T λ)  (μ_T: learning rate at the last epoch)")
        ax.set_ylabel("final average rank / average min(rows, cols)")
        ax.set_title(_title(fit), fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(style.title(config, f"Theorem 3.3's shape: the final rank against B/(2μ_T λ), "
                                     f"{LINES[config['switches']['bound_lambda']][1]}: every finished run with "
                                     "weight decay"))
    fig.tight_layout()
    return fig
