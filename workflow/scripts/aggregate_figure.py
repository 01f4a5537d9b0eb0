"""Snakemake job: merge the logs of one figure's runs into its tidy table."""

from pathlib import Path

from lowrank.aggregate import figure_table

table = figure_table(snakemake.config, snakemake.wildcards.fig, Path(snakemake.params.runs_dir))  # noqa: F821
table.to_csv(snakemake.output[0], index=False)  # noqa: F821
