"""The plan of a build: the config loaded and checked once, then expanded into runs, packs and every target.

Torch-free and independent of Snakemake: workflow/rules/common.smk reads a Plan, and the tests build one directly.
"""

from __future__ import annotations

import ast
import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from lowrank import grid, layout, pace, registry, schema
from lowrank.config import ConfigError, RunConfig

ROOT = Path(__file__).resolve().parents[1]  # the project: the package's parent


class _UniqueKeyLoader(yaml.SafeLoader):
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


def module_files(*names: str) -> list[str]:
    """The source files of lowrank modules `names` and of every lowrank module they import, at any depth: what a
    rule lists as code inputs, so an edit of that code re-runs it."""
    todo, seen = [f"lowrank.{m}" for m in names], {}
    while todo:
        name = todo.pop()
        base = ROOT.joinpath(*name.split("."))
        path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        if path is None or name in seen:
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lowrank"):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return sorted({str(p) for p in seen.values()})


@dataclass(frozen=True)
class Pack:
    """Runs trained together by one job: its stable name, its runs, and its row of the resources table."""

    runs: tuple[RunConfig, ...]
    resources: dict
    table: dict  # the config's whole `resources` section (margins, limits)

    @cached_property
    def name(self) -> str:
        """A readable, stable name (its rule's): the shared settings and a hash of the members."""
        cfg = self.runs[0]
        digest = hashlib.sha1(" ".join(r.run_id for r in self.runs).encode()).hexdigest()[:8]
        return f"train_{cfg.arch}_{cfg.dataset}_b{cfg.batch_size}_{digest}"

    def minutes(self, attempt: int, ckpt_dir: Path | None = None) -> int:
        """The time limit of attempt `attempt`. Once an attempt has measured its runs' pace (lowrank.pace, recorded
        in `ckpt_dir`): the seconds the steps they have left take at that pace × margin. Before: epochs × steps ×
        step time for K runs × margin, times the attempt (the per-run part of a step grows in proportion to the
        batch size above the table's `step_batch_size`)."""
        cfg, res, table = self.runs[0], self.resources, self.table
        measured = pace.seconds_left(ckpt_dir, (r.run_id for r in self.runs)) if ckpt_dir is not None else None
        if measured is not None:
            minutes = measured * table["runtime_margin"] / 60 + table["runtime_overhead_min"]
        else:
            per_run = res["step_seconds_per_run"] * max(1.0, cfg.batch_size / table["step_batch_size"])
            seconds = cfg.epochs * cfg.steps_per_epoch * (res["step_seconds"] + per_run * len(self.runs))
            minutes = (seconds * table["runtime_margin"] / 60 + table["runtime_overhead_min"]) * attempt
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

    def run_files(self, *run_ids: str) -> list[str]:
        """The log files the given runs write (summary.json last in each)."""
        return [str(p) for rid in run_ids for p in layout.run_files(self.runs_dir, rid)]

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
        """A figure with its table and its runs' logs: targets, so a deleted table or run is built again even
        though the figure is still there (Snakemake does not rebuild a missing intermediate file by itself)."""
        return [*self.figure_outputs(name), str(layout.table_file(self.results, name)),
                *self.run_files(*self.figure_runs[name])]

    def all_targets(self) -> list[str]:
        """Every figure (with its table and runs), the bound-vs-rank comparison, the scorecard, the report's front
        page and the provenance."""
        r = self.results
        out = [f for name in self.config["figures"] for f in self.figure_targets(name)]
        out += [*self.figure_outputs("bound_vs_rank"), *(str(layout.table_file(r, n)) for n in
                                                         ("bound_vs_rank", "bound_summary")),
                str(layout.scorecard_file(r, "md")), str(layout.scorecard_file(r, "html")),
                str(layout.provenance_file(r)), str(layout.front_page_file(r))]
        return list(dict.fromkeys(out))


def build(config: dict) -> Plan:
    """Expand a checked config (check) into its Plan; an inconsistent grid raises ConfigError naming the key."""
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
    packs = [Pack(tuple(p), {**table["default"], **table.get(p[0].arch, {})}, table)
             for p in grid.packs(runs, config["pack_size"], scope, grid.arch_pack_sizes(config))]
    return Plan(config, runs, figure_runs, users, packs)
