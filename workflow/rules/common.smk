# Helpers shared by every rule: config validation, the expanded grid, packs, and every output path.
import hashlib
import math
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from lowrank import data as lowrank_data
from lowrank import grid, logs, squeue
from lowrank.config import ConfigError


validate(config, "../schemas/config.schema.yaml")

try:
    RUNS = grid.all_runs(config)
    FIGURE_RUNS = {name: sorted({fr.run.run_id for fr in grid.figure_runs(config, name)})
                   for name in config["figures"]}
    PACKS = grid.packs(RUNS, config["pack_size"],
                       grid.run_figures(config) if config["pack_scope"] == "figures" else None)
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None

RESULTS = Path(config["results"])
DATA_ROOT = Path(config["data_root"])
CODE = Path(workflow.basedir, "lowrank")  # package code that rules list as inputs, so edits re-run them
PLOT_CODE = sorted(str(p) for p in (CODE / "plots").glob("*.py"))


# --- paths: every output location is derived here -------------------------------------------------------------
def run_dir(run_id):
    """Where one run's logs live."""
    return RESULTS / "runs" / run_id


def run_files(run_id):
    """The log files one run writes (summary.json last)."""
    return [str(run_dir(run_id) / name) for name in logs.FILES]


def checkpoint_dir():
    """Checkpoints live outside every rule's outputs, so a failed job's cleanup keeps them."""
    return RESULTS / "checkpoints"


def attempts_log(pack):
    """A training job's history: every attempt's log behind a header, appended (Snakemake deletes the rule's
    declared log when an attempt starts, so that log holds the latest attempt only)."""
    return RESULTS / "logs" / "train" / "attempts" / f"{pack_name(pack)}.log"


def table_path(name):
    """The tidy table behind figure `name` (or the comparison tables)."""
    return str(RESULTS / "tables" / f"{name}.csv")


def figure_path(name, ext):
    """A rendered figure."""
    return str(RESULTS / "figures" / f"{name}.{ext}")


def figure_outputs(name):
    """PNG and PDF of a figure."""
    return [figure_path(name, "png"), figure_path(name, "pdf")]


def dataset_file(dataset):
    """The prepared dataset a run reads (none for the generated synthetic data)."""
    if lowrank_data.DATASETS[dataset].torchvision is None:
        return []
    return [str(DATA_ROOT / f"{dataset}.pt")]


def all_targets():
    """Every figure, the bound-vs-rank comparison, the scorecard and the provenance record."""
    out = [f for name in config["figures"] for f in figure_outputs(name)]
    out += figure_outputs("bound_vs_rank") + [table_path("bound_summary"), str(RESULTS / "scorecard.md"),
                                             str(RESULTS / "scorecard.html"), str(RESULTS / "provenance.md")]
    return out


# --- packs ------------------------------------------------------------------------------------------------------
def pack_name(pack):
    """A readable, stable rule name for a pack: its shared settings and a hash of its members."""
    cfg = pack[0]
    digest = hashlib.sha1(" ".join(r.run_id for r in pack).encode()).hexdigest()[:8]
    return f"train_{cfg.arch}_{cfg.dataset}_b{cfg.batch_size}_{digest}"


def pack_resources(pack):
    """A pack's row of the resources table: GPUs, CPUs, memory and step times of its architecture."""
    table = config["resources"]
    return {**table["default"], **table.get(pack[0].arch, {})}


def pack_runtime(pack):
    """A resource function: minutes = epochs × steps × step time for K runs × margin, growing with attempt (the
    per-run part of a step grows in proportion to the batch size above the table's `step_batch_size`)."""
    cfg, res = pack[0], pack_resources(pack)
    n_train = config["datasets"][cfg.dataset].get("n_train") or lowrank_data.DATASETS[cfg.dataset].train_size
    steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    per_run = res["step_seconds_per_run"] * max(1.0, cfg.batch_size / config["resources"]["step_batch_size"])
    seconds = steps * (res["step_seconds"] + per_run * len(pack))
    base = seconds * config["resources"]["runtime_margin"] / 60 + config["resources"]["runtime_overhead_min"]

    def runtime(wildcards, attempt):
        return int(min(math.ceil(base * attempt), config["resources"]["max_runtime_min"]))

    return runtime


# --- a SLURM controller started again: the jobs its predecessor left in the queue -----------------------------
def warn_of_earlier_slurm_jobs():
    """Before a SLURM controller submits anything, name the training jobs an earlier controller of this workflow
    left queued or running (they keep going when it dies), and how to wait for or cancel them."""
    jobs = squeue.earlier_jobs({pack_name(p) for p in PACKS}, workflow.workdir_init)
    if jobs is None:
        logger.warning("SLURM: squeue failed, so jobs of an earlier run of this workflow cannot be listed.")
    elif jobs:
        logger.warning(squeue.notice(jobs))


onstart:
    if workflow.executor_plugin is not None and workflow.executor_plugin.name.endswith("slurm"):
        warn_of_earlier_slurm_jobs()
