"""Snakemake job: Theorem 3.3's bound against the measured rank over every run, layer and evaluation epoch."""

from pathlib import Path

from lowrank.aggregate import bound_summary, bound_vs_rank, eps_curves

runs_dir = Path(snakemake.params.runs_dir)  # noqa: F821
table = bound_vs_rank(snakemake.config, runs_dir, snakemake.params.run_ids)  # noqa: F821
table.to_csv(snakemake.output.table, index=False)  # noqa: F821
bound_summary(table).to_csv(snakemake.output.summary, index=False)  # noqa: F821
eps_curves(runs_dir, table).to_csv(snakemake.output.curves, index=False)  # noqa: F821
