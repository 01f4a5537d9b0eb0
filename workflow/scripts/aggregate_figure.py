"""Snakemake job: merge the logs of one figure's runs into its tidy table (from the config parts it declares)."""

from pathlib import Path

from lowrank.aggregate import figure_table

table = figure_table(snakemake.params.config, snakemake.wildcards.fig,  # noqa: F821
                     Path(snakemake.params.runs_dir))  # noqa: F821
table.to_csv(snakemake.output[0], index=False)  # noqa: F821
