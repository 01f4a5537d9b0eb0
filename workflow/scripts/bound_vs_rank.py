"""Snakemake job: Theorem 3.3's bound against the measured rank over every run, layer and evaluation epoch."""

from pathlib import Path

from lowrank.aggregate import bound_summary, bound_vs_rank

table = bound_vs_rank(snakemake.params.config, Path(snakemake.params.runs_dir),  # noqa: F821
                      snakemake.params.run_ids)  # noqa: F821
table.to_csv(snakemake.output.table, index=False)  # noqa: F821
bound_summary(table).to_csv(snakemake.output.summary, index=False)  # noqa: F821
