"""Snakemake job: plot the measured rank against Theorem 3.3's bound over every run, and as functions of ε."""

import pandas as pd

from lowrank.joblog import log_stderr
from lowrank.plots import render_bound_vs_rank

log_stderr(snakemake.log[0])  # noqa: F821

render_bound_vs_rank(snakemake.params.config, pd.read_csv(snakemake.input.table),  # noqa: F821
                     pd.read_csv(snakemake.input.curves), snakemake.output.png, snakemake.output.pdf)  # noqa: F821
