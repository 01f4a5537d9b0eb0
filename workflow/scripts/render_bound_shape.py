"""Snakemake job: plot every run's final rank against B/(2μ_T λ), one panel per model, dataset and plot ε."""

import pandas as pd

from lowrank.joblog import log_stderr
from lowrank.plots import render_bound_shape

log_stderr(snakemake.log[0])  # noqa: F821

render_bound_shape(snakemake.params.config, pd.read_csv(snakemake.input.table),  # noqa: F821
                   pd.read_csv(snakemake.input.fits), snakemake.output.png, snakemake.output.pdf)  # noqa: F821
