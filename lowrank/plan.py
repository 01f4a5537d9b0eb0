"""The plan of a build: the config loaded and checked once, then expanded into runs, packs and every target.

Torch-free and independent of Snakemake: workflow/rules/common.smk reads a Plan, and the tests build one directly.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from lowrank import grid, layout, pace, registry, schema
from lowrank.config import ConfigError, RunConfig

ROOT = Path(__file__).resolve().parents[1]  # the project: the package's parent


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice in one mapping",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict:
    """A YAML config file; a syntax error or a duplicated key is one sentence naming the file and line (Snakemake's
    message names neither, and PyYAML keeps the last of two equal keys silently)."""
    try:
        return yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where} is not valid YAML: {getattr(err, 'problem', None) or err}.") from None


def load(*paths: str | Path) -> dict:
    """config.yaml with later files merged over it (e.g. config/demo.yaml), as Snakemake would see it."""
    config: dict = {}
    for path in paths:
        config = grid.merge(config, read_yaml(path))
    return config


def check(config: dict) -> None:
    """The one validation pass before any work: the schema's types and ranges (its first violation, one sentence
    naming the key), the grid's size and the figures' texts; what needs the runs themselves (grid consistency,
    datasets' sizes) is refused by build."""
    error = schema.config_error(config)
    if error:
        raise ConfigError(error)
    sizes = {name: grid.size(config, name) for name in config["figures"]}
    if sum(sizes.values()) > config["max_runs"]:
        largest = max(sizes, key=sizes.get)
        raise ConfigError(f"Invalid config at max_runs: the figures list {sum(sizes.values()):,} runs ({largest}: "
                          f"{sizes[largest]:,}), over max_runs = {config['max_runs']:,}; shrink the grid or raise "
                          "max_runs.")
    for key, text in figure_texts(config):
        if "$" in text:
            check_drawable(key, text)


def figure_texts(config: dict) -> list[tuple[str, str]]:
    """Every text a figure draws from the config, by key: its title and its panels' labels."""
    out = []
    for name, fig in config["figures"].items():
        out.append((f"figures.{name}.title", fig["title"]))
        out += [(f"figures.{name}.panels[{i}].label", p["label"]) for i, p in enumerate(grid.panels_of(fig))
                if "label" in p]
    return out


def check_drawable(key: str, text: str) -> None:
    """Render a text with matplotlib (as the figure will, math included) so broken math text stops before any
    training, not at render time after it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    figure.text(0, 0, text)
    try:
        FigureCanvasAgg(figure).draw()
    except ValueError as err:
        raise ConfigError(f"Invalid config at {key}: {text!r} cannot be drawn: "
                          f"{str(err).strip().splitlines()[-1]}.") from None


# `from lowrank.x import a, b` (parenthesised over lines too) or `import lowrank.x`, at any indentation
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(lowrank[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)"
                    r"|import[ \t]+(lowrank[\w.]*))", re.M)


def imported(source: str) -> list[str]:
    """The lowrank modules (and `module.name` candidates) a source imports, read by IMPORT (an AST walk of every
    module costs a dry run ~0.1 s; tests/test_plan.py checks both find the same)."""
    out = []
    for module, names, plain in IMPORT.findall(source):
        if plain:
            out.append(plain)
            continue
        names = re.sub(r"#[^\n]*", "", names).strip("() \n")
        out += [module] + [f"{module}.{n.split()[0]}" for n in re.split(r"[,\s]*,[,\s]*", names) if n.strip()]
    return out


@functools.cache
def _module(name: str) -> tuple[Path | None, tuple[str, ...]]:
    """The source file of lowrank module `name` (None for a name that is not one) and the lowrank names it imports;
    each file is read once per process."""
    base = ROOT.joinpath(*name.split("."))
    path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
    return (path, tuple(imported(path.read_text()))) if path else (None, ())


def module_files(*names: str) -> list[str]:
    """The source files of lowrank modules `names` and of every lowrank module they import, at any depth: what a
    rule lists as code inputs, so an edit of that code re-runs it."""
    todo, seen = [f"lowrank.{m}" for m in names], {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path, imports = _module(name)
        if path is not None:
            seen[name] = path
            todo += imports
    return sorted({str(p) for p in seen.values()})


@dataclass(frozen=True)
class Pack:
    """Runs trained together by one job: its stable name, its runs, and its row of the resources table."""

    runs: tuple[RunConfig, ...]
    resources: dict
    table: dict  # the config's whole `resources` section (margins, limits)
    members: tuple[str, ...] = ()  # the ids of every run packed with these, logged or not (default: these runs)

    @cached_property
    def name(self) -> str:
        """A readable, stable name (its rule's): the shared settings and a hash of the members, so a run logged
        meanwhile (a diverged run is logged while its pack trains on) renames no pack."""
        cfg = self.runs[0]
        members = self.members or tuple(r.run_id for r in self.runs)
        digest = hashlib.sha1(" ".join(members).encode()).hexdigest()[:8]
        return f"train_{cfg.arch}_{cfg.dataset}_b{cfg.batch_size}_{digest}"

    def train_seconds(self) -> float:
        """The training time the resources table predicts: epochs × steps × step time for K runs (the per-run part
        of a step grows in proportion to the batch size above the table's `step_batch_size`)."""
        cfg, res = self.runs[0], self.resources
        per_run = res["step_seconds_per_run"] * max(1.0, cfg.batch_size / self.table["step_batch_size"])
        return cfg.epochs * cfg.steps_per_epoch * (res["step_seconds"] + per_run * len(self.runs))

    def minutes(self, attempt: int, ckpt_dir: Path | None = None) -> int:
        """The time limit of attempt `attempt`. Once an attempt has measured its runs' pace (lowrank.pace, recorded
        in `ckpt_dir`): the seconds the steps they have left take at that pace × margin. Before: the predicted
        training time (train_seconds) × margin plus the overhead, times the attempt."""
        table = self.table
        measured = pace.seconds_left(ckpt_dir, (r.run_id for r in self.runs)) if ckpt_dir is not None else None
        if measured is not None:
            minutes = measured * table["runtime_margin"] / 60 + table["runtime_overhead_min"]
        else:
            minutes = (self.train_seconds() * table["runtime_margin"] / 60 + table["runtime_overhead_min"]) * attempt
        return int(min(math.ceil(minutes), table["max_runtime_min"]))


@dataclass(frozen=True)
class Plan:
    """A checked config expanded: its runs, the runs of each figure, the packs and every output path."""

    config: dict
    runs: dict[str, RunConfig]
    figure_runs: dict[str, list[str]]  # figure -> the ids of the runs it draws
    run_figures: dict[str, tuple[str, ...]]  # run id -> the figures that draw it
    packs: list[Pack]

    @property
    def results(self) -> Path:
        """The results folder."""
        return Path(self.config["results"])

    @property
    def runs_dir(self) -> Path:
        """The folder of one log folder per run."""
        return layout.runs_dir(self.results)

    @property
    def data_root(self) -> Path:
        """Where prepared datasets live."""
        return Path(self.config["data_root"])

    @cached_property
    def _files(self) -> dict[str, list[str]]:
        """Each run's log files, derived once (rules and targets ask for them many times)."""
        return {rid: [str(p) for p in layout.run_files(self.runs_dir, rid)] for rid in self.runs}

    def run_files(self, *run_ids: str) -> list[str]:
        """The log files the given runs write (summary.json last in each)."""
        return [f for rid in run_ids for f in self._files[rid]]

    def retired_marks(self, pack: Pack) -> list[str]:
        """The retired marks of a pack's runs (lowrank.logs.retire): inputs of its job, newer than the damaged logs,
        so Snakemake runs it to rewrite them."""
        marks = (layout.retired_file(layout.run_dir(self.runs_dir, r.run_id)) for r in pack.runs)
        return [str(m) for m in marks if m.exists()]

    def dataset_files(self, dataset: str) -> list[str]:
        """The prepared dataset a run reads (none for the generated synthetic data)."""
        return [str(layout.dataset_file(self.data_root, dataset))] if registry.DATASETS[dataset].prepared else []

    def second_rendering(self, name: str) -> str | None:
        """The other plot_eps choice at which figure `name` is drawn a second time (Figs 4, 12), or None."""
        return grid.second_plot_eps(self.config, name) if name in self.config["figures"] else None

    def second_name(self, name: str) -> str:
        """The file name of a figure's second rendering, e.g. fig04_notebook_eps."""
        return f"{name}_{self.second_rendering(name)}_eps"

    def figure_outputs(self, name: str) -> list[str]:
        """PNG and PDF of a figure, and of its second rendering where it has one."""
        names = [name] + ([self.second_name(name)] if self.second_rendering(name) else [])
        return [str(layout.figure_file(self.results, n, ext)) for n in names for ext in ("png", "pdf")]

    def figure_targets(self, name: str) -> list[str]:
        """A figure with its table: targets, so a deleted table is built again though the figure is still there. A
        run with a log file missing is no target: it is unlogged, so packed (build), and its figure's table asks
        for it."""
        return [*self.figure_outputs(name), str(layout.table_file(self.results, name))]

    def all_targets(self) -> list[str]:
        """Every figure (with its table), the bound shape, the bound-vs-rank comparison, the scorecard, the
        report's front page and the provenance."""
        r = self.results
        out = [f for name in self.config["figures"] for f in self.figure_targets(name)]
        out += [*self.figure_outputs("bound_shape"), *self.figure_outputs("bound_vs_rank"),
                *(str(layout.table_file(r, n)) for n in ("bound_shape", "bound_shape_fits", "bound_vs_rank",
                                                         "bound_summary")),
                str(layout.scorecard_file(r, "md")), str(layout.scorecard_file(r, "html")),
                str(layout.provenance_file(r)), str(layout.front_page_file(r))]
        return list(dict.fromkeys(out))


def logged(results: str | Path) -> Callable[[str], bool]:
    """Whether a run's log files are all on disk under `results` (summary.json, written last, among them) and it
    is not retired as damaged (lowrank.logs.retire)."""
    runs = layout.runs_dir(results)
    return lambda run_id: (all(path.is_file() for path in layout.run_files(runs, run_id))
                           and not layout.retired_file(layout.run_dir(runs, run_id)).exists())


def build(config: dict, done: Callable[[str], bool] = lambda run_id: False) -> Plan:
    """Expand a checked config (check) into its Plan; an inconsistent grid raises ConfigError naming the key.

    Every run is packed, but a pack trains only its runs that are not `done` (logged), and one with none has no
    job: no job writes a logged run, so neither a config edit that re-packs the others nor a new version of the
    training script ever retrains or rewrites it, with or without its checkpoints. Their logs are the workflow's
    sources; a run whose logs go missing or are retired as damaged is packed again. Packing all runs keeps every
    pack's name whatever is logged: a SLURM job parses the workflow again when it starts, and must find its rule
    though runs of other packs were logged since its controller started."""
    try:
        expanded = {name: grid.figure_runs(config, name) for name in config["figures"]}
    except ConfigError as err:
        raise ConfigError(f"Invalid config: {err}") from None
    figure_runs = {name: sorted({fr.run.run_id for fr in frs}) for name, frs in expanded.items()}
    runs = grid.distinct_runs(fr for frs in expanded.values() for fr in frs)
    users: dict[str, tuple[str, ...]] = {}
    for name, ids in figure_runs.items():
        for rid in ids:
            users[rid] = users.get(rid, ()) + (name,)
    scope = users if config["pack_scope"] == "figures" else None
    table = config["resources"]
    packs = []
    for members in grid.packs(runs, config["pack_size"], scope, grid.arch_pack_sizes(config)):
        todo = tuple(cfg for cfg in members if not done(cfg.run_id))
        if todo:
            packs.append(Pack(todo, {**table["default"], **table.get(todo[0].arch, {})}, table,
                              tuple(cfg.run_id for cfg in members)))
    return Plan(config, runs, figure_runs, users, packs)
