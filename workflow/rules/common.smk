# Helpers shared by every rule: config validation, the expanded grid, packs, and every output path.
import ast
import difflib
import hashlib
import math
import sys
from pathlib import Path

import jsonschema
import yaml

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from lowrank import grid, interrupt, layout, registry, squeue, views
from lowrank.config import ConfigError


SCHEMA = Path(workflow.basedir, "workflow", "schemas", "config.schema.yaml")


def nonfinite(node, key=""):
    """(key, value) of every non-finite number in the config (YAML .inf and .nan pass the schema's bounds)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        sub = f"{key}.{k}" if isinstance(k, str) else f"{key}[{k}]"
        if isinstance(v, float) and not math.isfinite(v):
            yield sub.lstrip("."), v
        yield from nonfinite(v, sub)


def config_error(config, schema_path):
    """The config's first non-finite number or schema violation as one line naming its key, or None. Snakemake's
    own validate (run next) prints the schema and the whole config around the one useful line."""
    for key, value in nonfinite(config):
        return f"Invalid config at {key}: {value} is not a finite number"
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    key = ".".join(str(k) for k in error.absolute_path) or "(top level)"
    hint = ""
    unknown = [k for k in config if k not in schema["properties"]]
    if unknown and not error.absolute_path:
        close = difflib.get_close_matches(unknown[0], schema["properties"], 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    message = error.message.splitlines()[0][:300]
    if error.validator == "not" and "description" in error.schema:  # a key the schema forbids here, and why
        message = f"not allowed here: {error.schema['description']}"
    return f"Invalid config at {key}: {message}{hint}"


_error = config_error(config, SCHEMA)
if _error:
    raise WorkflowError(_error)
validate(config, str(SCHEMA))

try:
    RUNS = grid.all_runs(config)
    FIGURE_RUNS = {name: sorted({fr.run.run_id for fr in grid.figure_runs(config, name)})
                   for name in config["figures"]}
    PACKS = grid.packs(RUNS, config["pack_size"],
                       grid.run_figures(config) if config["pack_scope"] == "figures" else None,
                       grid.arch_pack_sizes(config))
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}") from None

RESULTS = Path(config["results"])
RUNS_DIR = layout.runs_dir(RESULTS)
DATA_ROOT = Path(config["data_root"])
PYTHON = sys.executable  # the interpreter running Snakemake (the project's venv): shell rules call it
CODE = Path(workflow.basedir, "lowrank")  # package code that rules list as inputs, so edits re-run them


def module_path(dotted):
    """The source file of a lowrank module ("lowrank.plots.style"), or None for a name that is not one."""
    base = CODE.parent.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_files(*names):
    """The source files of lowrank modules `names` and of every lowrank module they import, at any depth."""
    todo, seen = [f"lowrank.{m}" for m in names], {}
    while todo:
        name = todo.pop()
        path = module_path(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lowrank"):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return sorted({str(p) for p in seen.values()})


AGGREGATE_CODE = module_files("aggregate")
PLOT_CODE = module_files("plots")


# --- paths: every output location is derived here, from lowrank.layout (which the package uses too) -----------
def run_dir(run_id):
    """Where one run's logs live."""
    return layout.run_dir(RUNS_DIR, run_id)


def run_files(run_id):
    """The log files one run writes (summary.json last)."""
    return [str(p) for p in layout.run_files(RUNS_DIR, run_id)]


def checkpoint_dir():
    """Checkpoints live outside every rule's outputs, so a failed job's cleanup keeps them."""
    return layout.checkpoints_dir(RESULTS)


def attempts_log(pack):
    """A training job's history of attempts (appended; the rule's own log holds the latest attempt only)."""
    return layout.attempts_file(RESULTS, pack_name(pack))


def table_path(name):
    """The tidy table behind figure `name` (or the comparison tables)."""
    return str(layout.table_file(RESULTS, name))


def figure_path(name, ext):
    """A rendered figure."""
    return str(layout.figure_file(RESULTS, name, ext))


def second_rendering(name):
    """The other plot_eps choice at which figure `name` is drawn a second time (Figs 4, 12), or None."""
    return grid.second_plot_eps(config, name) if name in config["figures"] else None


def second_name(name):
    """The file name of a figure's second rendering, e.g. fig04_notebook_eps."""
    return f"{name}_{second_rendering(name)}_eps"


def figure_outputs(name):
    """PNG and PDF of a figure, and of its second rendering where it has one."""
    names = [name] + ([second_name(name)] if second_rendering(name) else [])
    return [figure_path(n, ext) for n in names for ext in ("png", "pdf")]


def dataset_file(dataset):
    """The prepared dataset a run reads (none for the generated synthetic data)."""
    if not registry.DATASETS[dataset].prepared:
        return []
    return [str(layout.dataset_file(DATA_ROOT, dataset))]


def scorecard_path(ext):
    """The claims scorecard (md or html)."""
    return str(layout.scorecard_file(RESULTS, ext))


def provenance_path():
    """The provenance record."""
    return str(layout.provenance_file(RESULTS))


def log_path(rule, name):
    """The log of one job of `rule`."""
    return str(layout.log_file(RESULTS, rule, name))


def front_page_path():
    """The report's front page (Snakefile `report:`), written once the scorecard exists."""
    return str(layout.front_page_file(RESULTS))


def figure_targets(name):
    """A figure with its table and its runs' logs: targets, so a deleted table or run is built again even
    though the figure is still there (Snakemake does not rebuild a missing intermediate file by itself)."""
    return figure_outputs(name) + [table_path(name)] + [f for rid in FIGURE_RUNS[name] for f in run_files(rid)]


def figure_run_files(wildcards):
    """The logs of every run figure `fig` draws (an input function)."""
    return [f for rid in FIGURE_RUNS[wildcards.fig] for f in run_files(rid)]


def all_run_files(wildcards):
    """The logs of every run of the grid (an input function)."""
    return [f for rid in RUNS for f in run_files(rid)]


def runs_folder(wildcards, input):
    """The runs folder holding the run logs a job reads (their grandparent): derived from the inputs, so it follows
    them wherever they are."""
    return str(Path(input.runs[0]).parents[1])


def data_folder(wildcards, input):
    """The folder of the prepared dataset a training job reads (its input; the data root for generated data)."""
    return str(Path(input[0]).parent) if input else str(DATA_ROOT)


def all_targets():
    """Every figure (with its table and runs), the bound-vs-rank comparison, the scorecard, the report's front page
    and the provenance."""
    out = [f for name in config["figures"] for f in figure_targets(name)]
    out += figure_outputs("bound_shape") + [table_path("bound_shape"), table_path("bound_shape_fits")]
    out += figure_outputs("bound_vs_rank") + [table_path("bound_vs_rank"), table_path("bound_summary"),
                                             scorecard_path("md"), scorecard_path("html"), provenance_path(),
                                             front_page_path()]
    return list(dict.fromkeys(out))


# --- packs ------------------------------------------------------------------------------------------------------
def pack_name(pack):
    """A pack's readable, stable name (its rule's): its shared settings and a hash of its members."""
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
    steps = cfg.epochs * cfg.steps_per_epoch
    per_run = res["step_seconds_per_run"] * max(1.0, cfg.batch_size / config["resources"]["step_batch_size"])
    seconds = steps * (res["step_seconds"] + per_run * len(pack))
    base = seconds * config["resources"]["runtime_margin"] / 60 + config["resources"]["runtime_overhead_min"]

    def runtime(wildcards, attempt):
        return int(min(math.ceil(base * attempt), config["resources"]["max_runtime_min"]))

    return runtime


# --- a SLURM controller started again: the jobs its predecessor left in the queue -----------------------------
EARLIER_SLURM_JOBS = None  # ids of this workflow's jobs already queued when this controller started; None: unknown


def slurm_controller() -> bool:
    """Is this Snakemake the controller of a SLURM run (not a local run, nor a job step inside SLURM)?"""
    return workflow.executor_plugin is not None and workflow.executor_plugin.name.endswith("slurm")


def slurm_jobs_of_this_workflow():
    """This workflow's training jobs in SLURM's queue (any controller's), or None when squeue cannot tell."""
    return squeue.workflow_jobs({pack_name(p) for p in PACKS}, workflow.workdir_init)


def warn_of_earlier_slurm_jobs():
    """Before a SLURM controller submits anything, name the training jobs an earlier controller of this workflow
    left queued or running (they keep going when it dies), and how to wait for or cancel them."""
    global EARLIER_SLURM_JOBS
    jobs = slurm_jobs_of_this_workflow()
    if jobs is None:
        logger.warning("SLURM: squeue failed, so jobs of an earlier run of this workflow cannot be listed.")
        return
    EARLIER_SLURM_JOBS = {j.job for j in jobs}
    if jobs:
        logger.warning(squeue.notice(jobs))


# --- Ctrl-C: the main thread sees it at once (lowrank/interrupt.py), then nothing is left running ---------------
interrupt.forward_ctrl_c_to_main_thread()


# --- a SLURM controller stopped by Ctrl-C (or an error): the jobs the executor plugin did not cancel ------------
def cancel_slurm_jobs_left_behind() -> None:
    """After a Ctrl-C, scancel this controller's training jobs still queued or running once it has stopped: the
    executor plugin cancels only the jobs in its list, and while it asks SLURM for their status it has taken them
    all out of that list (snakemake-interface-executor-plugins 9.4, RemoteExecutor._wait_for_jobs), so a Ctrl-C at
    that moment cancels nothing (docs/slurm.md, 4a: aborting). After any other error Snakemake lets running jobs
    go on (e.g. a status query that failed while accounting was down): they are named, with the scancel line."""
    jobs = slurm_jobs_of_this_workflow()
    if jobs is None or EARLIER_SLURM_JOBS is None:
        logger.warning("SLURM: squeue failed, so the jobs this run may have left queued or running cannot be "
                       "listed: check `squeue --me` and scancel them.")
        return
    left = squeue.left_behind(jobs, EARLIER_SLURM_JOBS)
    if not left:
        return
    ids = " ".join(j.job for j in left)
    if not interrupt.ctrl_c_seen():
        logger.warning(f"SLURM: this run stopped on an error; {len(left)} job(s) it submitted are still queued or "
                       f"running and go on (they resume from their checkpoints if stopped): {ids}. To stop them: "
                       f"scancel {ids}")
    elif squeue.cancel(left):
        logger.warning(f"SLURM: cancelled {len(left)} job(s) of this run still queued or running: {ids}")
    else:
        logger.warning(f"SLURM: scancel failed for job(s) {ids} of this run still queued or running: check "
                       "`squeue --me` and scancel them.")


onstart:
    if slurm_controller():
        warn_of_earlier_slurm_jobs()


onerror:
    if slurm_controller():
        cancel_slurm_jobs_left_behind()
