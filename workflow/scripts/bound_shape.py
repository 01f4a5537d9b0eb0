"""Snakemake job: every run with weight decay, its final rank against s = B/(2μ_T λ), per model and dataset, from
the figure tables and the bound comparison, and each panel's Kendall τ and log-log fit (as the scorecard row)."""

import pandas as pd

from lowrank.joblog import log_stderr
from lowrank.shape import panel_fits, shape_table

log_stderr(snakemake.log[0])  # noqa: F821

tables = {name: pd.read_csv(path) for name, path in zip(snakemake.params.figures, snakemake.input.tables)}  # noqa: F821
table = shape_table(snakemake.params.config, tables, pd.read_csv(snakemake.input.comparison))  # noqa: F821
table.to_csv(snakemake.output.table, index=False)  # noqa: F821
panel_fits(table).to_csv(snakemake.output.fits, index=False)  # noqa: F821
