"""The parts of the config each aggregation and rendering job reads, so a rule can declare them as params.

A job gets its view instead of the whole config: Snakemake re-runs it when its view changes (params are a
rerun trigger), and a key the job reads but its view lacks fails loudly instead of going stale unnoticed. Which
keys a view holds follows each key's role in the config schema (lowrank.schema): an edit of a drawing key
re-renders and never re-aggregates, an edit of an execution key re-runs nothing.
"""

from __future__ import annotations

from lowrank import schema

# Sections that expand a figure into its runs (lowrank.grid.run_config); read when aggregating.
GRID_SECTIONS = ("defaults", "datasets", "models")
# What titles read (lowrank.grid.demo_prefix): whether this is the demo, and on which data.
DEMO_KEYS = schema.keys_with_role("(top level)", "drawing")
# Top-level keys that say where and how jobs run, never what a result holds.
EXECUTION_KEYS = schema.keys_with_role("(top level)", "execution")
# Keys of a figure's (and a panel's) section that only its drawing reads (lowrank.plots).
DRAWING_KEYS = schema.keys_with_role("figure", "drawing")
PANEL_DRAWING_KEYS = schema.keys_with_role("panel", "drawing")
# Switches only drawings read (lowrank.plots); aggregation reads every other switch.
DRAWING_SWITCHES = schema.keys_with_role("switches", "drawing")


def _pick(section: dict, keys) -> dict:
    """The given keys of a config section (those it has)."""
    return {k: section[k] for k in keys if k in section}


def _result_part(figure: dict) -> dict:
    """A figure's section less what only its drawing reads (at the figure's and each panel's level)."""
    out = {k: v for k, v in figure.items() if k not in DRAWING_KEYS}
    if "panels" in out:
        out["panels"] = [{k: v for k, v in p.items() if k not in PANEL_DRAWING_KEYS} for p in out["panels"]]
    return out


def aggregate_view(config: dict, name: str) -> dict:
    """What aggregating figure `name` reads: its section less the drawing keys, the grid's sections and every
    switch but the drawings' own."""
    switches = {k: v for k, v in config["switches"].items() if k not in DRAWING_SWITCHES}
    return {"figures": {name: _result_part(config["figures"][name])}, "switches": switches,
            **_pick(config, GRID_SECTIONS)}


def _drawn_by(kind: str) -> tuple[str, ...]:
    """The drawing switches a figure kind reads (the schema's `x-drawn-by`)."""
    switches = schema.sections()["switches"]
    return tuple(s for s in DRAWING_SWITCHES if kind in switches[s].get("x-drawn-by", [kind]))


def render_view(config: dict, name: str, plot_eps: str | None = None) -> dict:
    """What drawing figure `name` reads: its section, the switches its kind reads, and `demo`, `demo_data` (the
    title prefix); a second rendering at another `plot_eps` choice also reads the ε it recomputes per panel."""
    figure = config["figures"][name]
    view = {"figures": {name: figure}, **_pick(config, DEMO_KEYS),
            "switches": _pick(config["switches"], _drawn_by(figure["kind"]))}
    if plot_eps is not None:  # lowrank.grid.plot_eps: the figure's ε table, the switch, the default ε
        view["switches"]["plot_eps"] = config["switches"]["plot_eps"]
        view["defaults"] = {"eps": config["defaults"]["eps"]}
    return view


def comparison_view(config: dict) -> dict:
    """What the all-runs bound comparison (table and drawing) reads: its ε, the λ convention and the demo keys."""
    return {"comparison": config["comparison"], "switches": _pick(config["switches"], ("bound_lambda",)),
            **_pick(config, DEMO_KEYS)}


def scorecard_view(config: dict) -> dict:
    """What the scorecard may read: every result-shaping key, each figure's section less its drawing keys."""
    figures = {name: _result_part(fig) for name, fig in config["figures"].items()}
    return {**{k: v for k, v in config.items() if k not in EXECUTION_KEYS}, "figures": figures}
