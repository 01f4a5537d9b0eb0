"""The report's front page: what the runs trained on, how many there are, the scorecard, and, figure by figure,
where this config's setting differs from the paper's (config.yaml without overrides)."""

from __future__ import annotations

from collections import Counter

from lowrank import grid, registry
from lowrank.config import RunConfig

ASPECTS = ("data", "model", "epochs", "B")


def data_label(cfg: RunConfig) -> str:
    """A run's data as a reader needs it: name, channels × side², training images (e.g. 'digits (UCI) 1×16×16')."""
    info = registry.DATASETS[cfg.dataset]
    channels = cfg.data_options.get("channels", info.channels)
    side = cfg.data_options.get("size", info.size)
    return f"{info.title} {channels}×{side}×{side}, {registry.train_size(cfg.dataset, cfg.data_options):,} train"


def setting(config: dict, name: str) -> dict[str, str]:
    """Figure `name`'s data, model, epochs and batch sizes under `config`, each as one string."""
    fig = config["figures"][name]
    runs = [fr.run for fr in grid.figure_runs(config, name)]
    preset = dict(config["models"][fig["model"]])
    arch = preset.pop("arch")
    model = {**registry.arch_options(arch), **preset}  # with the defaults, so a width the paper leaves default shows
    return {
        "data": "; ".join(sorted({data_label(r) for r in runs})),
        "model": arch + "".join(f" {k}={v}" for k, v in sorted(model.items())),
        "epochs": ", ".join(str(e) for e in sorted({r.epochs for r in runs})),
        "B": ", ".join(str(b) for b in sorted({r.batch_size for r in runs})),
    }


def _differences(config: dict, paper: dict) -> list[str]:
    """An RST list-table row per figure whose setting differs from the paper's: 'paper → here' per aspect."""
    rows = []
    for name in config["figures"]:
        here = setting(config, name)
        there = setting(paper, name) if name in paper["figures"] else dict.fromkeys(ASPECTS, "—")
        if here != there:
            cells = [here[a] if here[a] == there[a] else f"{there[a]} → {here[a]}" for a in ASPECTS]
            rows += [f"   * - {name}"] + [f"     - {c}" for c in cells]
    return rows


def front_page(config: dict, paper: dict, scorecard_md: str) -> str:
    """The front page in reStructuredText: data and run counts, the paper-vs-here table, the scorecard."""
    runs = grid.all_runs(config)
    title = grid.demo_prefix(config) + "SGD and weight decay secretly minimise rank: the reproduction"
    per_data = Counter(data_label(r) for r in runs.values())
    lines = [title, "=" * len(title), ""]
    if config.get("demo"):
        lines += [f"**A demo on {config['demo_data']}: tiny models and short training, not the paper's results.** "
                  "Each figure's title says what it was trained on.", ""]
    lines += [f"**{len(runs)} distinct runs** (each trained once, shared by the figures that draw it), on:", ""]
    lines += [f"- {label}: {n} runs" for label, n in sorted(per_data.items())] + [""]
    rows = _differences(config, paper)
    lines += ["Where this setting differs from the paper's", "-" * 43, ""]
    if rows:
        lines += ["Per figure, the paper's setting (config.yaml) → this one's; unchanged aspects appear once.", "",
                  ".. list-table::", "   :header-rows: 1", "",
                  "   * - figure"] + [f"     - {a}" for a in ASPECTS] + rows + [""]
    else:
        lines += ["None: every figure is trained as config.yaml sets out the paper's grid.", ""]
    lines += ["Scorecard", "-" * 9, "", "The paper's claims against these runs (also the Scorecard category):", "",
              "::", ""] + [f"    {line}" for line in scorecard_md.splitlines()] + [""]
    return "\n".join(lines)
