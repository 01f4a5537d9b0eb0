"""Snakemake job: Theorem 3.3's bound against the measured rank over every run, layer and evaluation epoch, and
rank_ε against the bound as functions of ε for one median run per architecture.
A damaged run fails the job naming the file, and is retired so the next start of the workflow rewrites its logs."""

from pathlib import Path

from lowrank import logs
from lowrank.aggregate import bound_summary, bound_vs_rank, eps_curves
from lowrank.joblog import log_stderr

log_stderr(snakemake.log[0])  # noqa: F821

runs_dir = Path(snakemake.params.runs_dir)  # noqa: F821
try:
    table = bound_vs_rank(snakemake.params.config, runs_dir, snakemake.params.run_ids)  # noqa: F821
except logs.DamagedRun as err:
    raise SystemExit(logs.retire(err)) from None
table.to_csv(snakemake.output.table, index=False)  # noqa: F821
bound_summary(table).to_csv(snakemake.output.summary, index=False)  # noqa: F821
eps_curves(runs_dir, table).to_csv(snakemake.output.curves, index=False)  # noqa: F821
