"""Snakemake job: merge the logs of one figure's runs into its tidy table (from the config parts it declares).
A damaged run fails the job naming the file, and is retired so the next start of the workflow rewrites its logs."""

from pathlib import Path

from lowrank import logs
from lowrank.aggregate import figure_table
from lowrank.joblog import log_stderr

log_stderr(snakemake.log[0])  # noqa: F821

try:
    table = figure_table(snakemake.params.config, snakemake.wildcards.fig,  # noqa: F821
                         Path(snakemake.params.runs_dir))  # noqa: F821
except logs.DamagedRun as err:
    raise SystemExit(logs.retire(err)) from None
table.to_csv(snakemake.output[0], index=False)  # noqa: F821
