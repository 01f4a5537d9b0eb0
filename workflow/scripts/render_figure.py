"""Snakemake job: render one figure (PNG and PDF) from its table."""

import pandas as pd

from lowrank.plots import render

render(snakemake.params.config, snakemake.params.figure, pd.read_csv(snakemake.input.table),  # noqa: F821
       snakemake.output.png, snakemake.output.pdf)  # noqa: F821
