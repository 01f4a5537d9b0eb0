"""Snakemake job: render one figure (PNG and PDF) from its table (params.plot_eps: at the other plot_eps choice)."""

import pandas as pd

from lowrank.joblog import log_stderr
from lowrank.plots import render

log_stderr(snakemake.log[0])  # noqa: F821

render(snakemake.params.config, snakemake.params.figure, pd.read_csv(snakemake.input.table),  # noqa: F821
       snakemake.output.png, snakemake.output.pdf, snakemake.params.plot_eps)  # noqa: F821
