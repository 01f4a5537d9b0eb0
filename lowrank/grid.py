"""Expand the config's figures into runs: which runs each figure needs, de-duplicated, grouped into packs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from lowrank import registry
from lowrank.config import ConfigError, RunConfig

# Run settings a figure may fix or vary, and how figures label them.
SYMBOLS = {"batch_size": "B", "lr": "μ", "weight_decay": "λ", "momentum": "momentum", "dataset": "dataset",
           "epochs": "epochs", "milestones": "milestones", "gamma": "γ"}
GAMMA = {"code": 0.2, "paper": 0.1}
EVAL_EVERY = {"code": 10, "paper": 1}
PLOT_EPS = ("caption", "notebook")  # switches.plot_eps: the captions' ε or the surviving notebook's
DEFAULT_KEYS = ("momentum", "epochs", "milestones", "eps", "early_stop_epoch", "early_stop_acc",
                "early_stop_window", "test_batch_size", "dtype")


@dataclass(frozen=True)
class FigureRun:
    """One run as a figure uses it: where it is drawn (panel) and with which varied values (labels)."""

    run: RunConfig
    panel: int
    panel_label: str
    labels: dict


def merge(base: dict, override: dict) -> dict:
    """Deep-merge two config dicts the way Snakemake applies --configfile overrides (mappings merge, rest replace)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def fmt(key: str, value: object) -> str:
    """A setting as figures print it, e.g. 'B = 8' or 'λ = 5e-04'."""
    if isinstance(value, float):
        return f"{SYMBOLS.get(key, key)} = {value:g}"
    return f"{SYMBOLS.get(key, key)} = {value}"


def demo_prefix(config: dict) -> str:
    """What a demo's titles start with, naming the data it trained on ('' outside a demo)."""
    return f"DEMO ({config['demo_data']}): " if config.get("demo") else ""


def run_config(config: dict, model: str, settings: dict, seed: int) -> RunConfig:
    """The RunConfig of one grid point: defaults <- switches <- model <- figure/panel settings."""
    sw, defaults = config["switches"], config["defaults"]
    if model not in config["models"]:
        raise ConfigError(f"model={model!r} is invalid: it is not a key of `models` in the config.")
    preset = dict(config["models"][model])
    arch = preset.pop("arch")
    if arch == "resnet18" and sw["resnet_activation"] == "relu":
        preset["activation"] = "relu"
    merged = {k: defaults[k] for k in DEFAULT_KEYS}
    merged.update(dataset=defaults["dataset"], gamma=GAMMA[sw["lr_decay"]], augmentation=sw["augmentation"],
                  eval_every=EVAL_EVERY[sw["eval_cadence"]], eval_final=sw["eval_final"])
    merged.update(settings)
    if merged["early_stop_epoch"] is not None and merged["early_stop_epoch"] > merged["epochs"]:
        merged["early_stop_epoch"] = None  # a stop that cannot fire: the same run (and id) as no early stop
    dataset = merged["dataset"]
    if dataset not in config["datasets"]:
        raise ConfigError(f"dataset={dataset!r} is invalid: it is not a key of `datasets` in the config.")
    data_options = {**config["datasets"][dataset], **merged.pop("data", {})}
    return RunConfig(arch=arch, arch_options=preset, data_options=data_options, seed=seed, **merged)


def panels_of(fig: dict) -> list[dict]:
    """The figure's panels (one implicit panel when it lists none)."""
    return fig.get("panels") or [{}]


def size(config: dict, name: str) -> int:
    """How many runs figure `name` lists (before de-duplication), counted without building one."""
    fig = config["figures"][name]
    seeds = len(fig.get("seeds", config["defaults"]["seeds"]))
    return sum(seeds * math.prod(len(v) for v in {**fig.get("vary", {}), **panel.get("vary", {})}.values())
               for panel in panels_of(fig))


def figure_runs(config: dict, name: str) -> list[FigureRun]:
    """Every run figure `name` draws, with its panel and varied values."""
    if name not in config["figures"]:
        raise ConfigError(f"figure {name!r} is not in the config; known: {', '.join(config['figures'])}.")
    fig = config["figures"][name]
    seeds = fig.get("seeds", config["defaults"]["seeds"])
    out = []
    for i, panel in enumerate(panels_of(fig)):
        fixed = {**fig.get("fixed", {}), **panel.get("fixed", {}), **early_stop_override(fig, panel)}
        vary = {**fig.get("vary", {}), **panel.get("vary", {})}
        label = panel.get("label") or ", ".join(fmt(k, v) for k, v in panel.get("fixed", {}).items())
        for values in itertools.product(*vary.values()):
            point = dict(zip(vary, values))
            for seed in seeds:
                cfg = run_config(config, fig["model"], {**fixed, **point}, seed)
                refuse_batches_of_one(name, cfg)
                out.append(FigureRun(cfg, i, label, {**point, "seed": seed}))
        eps = plot_eps(config, name, i)
        if out and eps not in out[-1].run.eps:
            raise ConfigError(f"figures.{name} plots eps={eps:g} but runs log only eps in {list(out[-1].run.eps)}: "
                              f"add it to defaults.eps.")
    if not out:
        raise ConfigError(f"figures.{name} has an empty grid: give its vary lists at least one value each.")
    return out


def early_stop_override(fig: dict, panel: dict) -> dict:
    """The figure's (then the panel's) early_stop_epoch override, as the authors' runs had it; None = never."""
    return {k: v for source in (fig, panel) for k, v in source.items() if k == "early_stop_epoch"}


def refuse_batches_of_one(name: str, cfg: RunConfig) -> None:
    """Stop before any work when a BatchNorm network would train on a batch of one sample (the last batch of an
    epoch keeps the remainder, drop_last=False as in the authors' loader): BatchNorm cannot train on one sample."""
    n = registry.train_size(cfg.dataset, cfg.data_options)
    if registry.has_batchnorm(cfg.arch) and (n % cfg.batch_size or cfg.batch_size) == 1:
        raise ConfigError(f"figures.{name}: dataset {cfg.dataset} has {n} training images, so batch_size="
                          f"{cfg.batch_size} leaves a batch of one sample, on which {cfg.arch}'s BatchNorm cannot "
                          f"train; choose another batch size.")


def distinct_runs(figure_runs: Iterable[FigureRun]) -> dict[str, RunConfig]:
    """The distinct runs among figure runs, keyed by run id, in a stable order."""
    return dict(sorted({fr.run.run_id: fr.run for fr in figure_runs}.items()))


def all_runs(config: dict, figures: list[str] | None = None) -> dict[str, RunConfig]:
    """The distinct runs of the given figures (all by default), keyed by run id, in a stable order."""
    return distinct_runs(fr for name in figures or list(config["figures"]) for fr in figure_runs(config, name))


def arch_pack_sizes(config: dict) -> dict[str, int]:
    """The architectures whose `resources` row sets its own pack_size (measured by bench/bench_gpu.py), and it."""
    return {arch: row["pack_size"] for arch, row in config["resources"].items()
            if isinstance(row, dict) and arch != "default" and "pack_size" in row}


def packs(runs: dict[str, RunConfig], pack_size: int, users: dict[str, tuple[str, ...]] | None = None,
          arch_sizes: dict[str, int] | None = None) -> list[list[RunConfig]]:
    """Group fusable runs (same pack key) into packs of at most pack_size (arch_sizes: per architecture, over
    pack_size), deterministically.

    With `users` (run id -> the figures drawing it), a pack only holds runs drawn by the same set of figures, so
    building one figure never trains a run that only another figure needs.
    """
    groups: dict[tuple, list[RunConfig]] = {}
    for rid in sorted(runs):
        groups.setdefault((runs[rid].pack_key, (users or {}).get(rid, ())), []).append(runs[rid])
    out = []
    for key in sorted(groups):
        members = groups[key]
        size = (arch_sizes or {}).get(members[0].arch, pack_size)
        out.extend(members[i:i + size] for i in range(0, len(members), size))
    return out


def plot_eps(config: dict, name: str, panel: int = 0) -> float:
    """The ε a figure panel's rank curves use: per the plot_eps switch, panel over figure, else the caption's."""
    fig = config["figures"][name]
    choice = config["switches"]["plot_eps"]
    for source in (panels_of(fig)[panel].get("eps", {}), fig.get("eps", {})):
        if choice in source:
            return float(source[choice])
    return float(fig.get("eps", {}).get("caption", config["defaults"]["eps"][0]))


def with_plot_eps(config: dict, choice: str) -> dict:
    """The config with switches.plot_eps = choice: only where figures are drawn moves, no run changes."""
    return merge(config, {"switches": {"plot_eps": choice}})


def second_plot_eps(config: dict, name: str) -> str | None:
    """The other plot_eps choice where it moves a panel of curves figure `name` (drawn a second time), else None."""
    fig = config["figures"][name]
    other = next(c for c in PLOT_EPS if c != config["switches"]["plot_eps"])
    alt = with_plot_eps(config, other)
    moved = any(plot_eps(alt, name, i) != plot_eps(config, name, i) for i in range(len(panels_of(fig))))
    return other if fig["kind"] == "curves" and moved else None
