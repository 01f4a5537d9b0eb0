"""The parts of the config each aggregation and rendering job reads, so a rule can declare them as params.

A job gets its view instead of the whole config: Snakemake re-runs it when its view changes (params are a
rerun trigger), and a key the job reads but its view lacks fails loudly instead of going stale unnoticed.
"""

from __future__ import annotations

# Sections that expand a figure into its runs (lowrank.grid.run_config); read when aggregating.
GRID_SECTIONS = ("defaults", "datasets", "models")
# Keys of a figure's section that only its drawing reads (lowrank.plots); an edit re-renders, never re-aggregates.
DRAWING_KEYS = ("title", "hue", "x", "accuracy")
# Switches each figure kind's drawing reads (lowrank.plots). Aggregation reads every other switch: they decide
# which runs a figure draws and at which ε (lowrank.grid), and a new one is declared there by default.
DRAWING_SWITCHES = {"bound": ("bound_lambda",)}
# What titles read (lowrank.grid.demo_prefix): whether this is the demo, and on which data.
DEMO_KEYS = ("demo", "demo_data")


def _pick(section: dict, keys) -> dict:
    """The given keys of a config section (those it has)."""
    return {k: section[k] for k in keys if k in section}


def aggregate_view(config: dict, name: str) -> dict:
    """What aggregating figure `name` reads: its section less the drawing keys, the grid's sections and every
    switch but the drawings' own."""
    figure = {k: v for k, v in config["figures"][name].items() if k not in DRAWING_KEYS}
    drawing = {s for switches in DRAWING_SWITCHES.values() for s in switches}
    switches = {k: v for k, v in config["switches"].items() if k not in drawing}
    return {"figures": {name: figure}, "switches": switches, **_pick(config, GRID_SECTIONS)}


def render_view(config: dict, name: str, plot_eps: str | None = None) -> dict:
    """What drawing figure `name` reads: its section, the switches its kind reads, and `demo`, `demo_data` (the
    title prefix); a second rendering at another `plot_eps` choice also reads the ε it recomputes per panel."""
    figure = config["figures"][name]
    view = {"figures": {name: figure}, **_pick(config, DEMO_KEYS),
            "switches": _pick(config["switches"], DRAWING_SWITCHES.get(figure["kind"], ()))}
    if plot_eps is not None:  # lowrank.grid.plot_eps: the figure's ε table, the switch, the default ε
        view["switches"]["plot_eps"] = config["switches"]["plot_eps"]
        view["defaults"] = {"eps": config["defaults"]["eps"]}
    return view


def comparison_view(config: dict) -> dict:
    """What the all-runs bound comparison (table and drawing) reads: its ε, the λ convention and the demo keys."""
    return {"comparison": config["comparison"], "switches": _pick(config["switches"], ("bound_lambda",)),
            **_pick(config, DEMO_KEYS)}


# Top-level keys that say where and how jobs run, never what a result holds.
EXECUTION_KEYS = ("results", "data_root", "pack_size", "pack_scope", "checkpoint_every", "gpu_kernels", "gpu_step",
                  "lease_stale_after_s", "resources")


def scorecard_view(config: dict) -> dict:
    """What the scorecard may read: every result-shaping key, each figure's section less its drawing keys."""
    figures = {name: {k: v for k, v in fig.items() if k not in DRAWING_KEYS} for name, fig in config["figures"].items()}
    return {**{k: v for k, v in config.items() if k not in EXECUTION_KEYS}, "figures": figures}
