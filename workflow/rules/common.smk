# The build's plan (lowrank.plan: the config checked once, its runs, packs and targets) and the few helpers rules
# call with Snakemake's wildcards. Every path comes from lowrank.layout through the plan.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from lowrank import layout, plan, views
from lowrank.config import ConfigError

try:
    plan.check(config)
    PLAN = plan.build(config, plan.logged(config["results"]))  # a logged run is no job's output
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = PLAN.results
PYTHON = sys.executable  # the interpreter running Snakemake (the project's venv): shell rules call it
CODE = Path(workflow.basedir, "lowrank")  # the package; code a rule lists as inputs re-runs it when edited
AGGREGATE_CODE = plan.module_files("aggregate")
PLOT_CODE = plan.module_files("plots")


def table_path(name):
    """The tidy table behind figure `name` (or a comparison table)."""
    return str(layout.table_file(RESULTS, name))


def figure_path(name, ext):
    """A rendered figure."""
    return str(layout.figure_file(RESULTS, name, ext))


def log_path(rule, name):
    """The log of one job of `rule`."""
    return str(layout.log_file(RESULTS, rule, name))


def figure_run_files(wildcards):
    """The logs of every run figure `fig` draws (an input function)."""
    return PLAN.run_files(*PLAN.figure_runs[wildcards.fig])


def all_run_files(wildcards):
    """The logs of every run of the grid (an input function)."""
    return PLAN.run_files(*PLAN.runs)


def runs_folder(wildcards, input):
    """The runs folder holding the run logs a job reads (their grandparent): derived from the inputs, so it follows
    them wherever they are."""
    return str(Path(input.runs[0]).parents[1])


def data_folder(wildcards, input):
    """The folder of the prepared dataset a training job reads (its input; the data root for generated data)."""
    return str(Path(input[0]).parent) if input else str(PLAN.data_root)
