"""`python -m lowrank.status`: how far a sweep has come, read from its results folder while it trains (on the login
node: torch-free, seconds for the paper's grid, and it writes nothing but the preview figures it is asked for).

Run it from the project root with Snakemake's config arguments (`--configfile FILE ...` merged over config.yaml,
`--config KEY=VALUE ...`). Each run of the plan is, by the first evidence that holds:

* finished or diverged: its logs are in the runs folder (summary.json's status);
* running: its lease (lowrank.lease, next to its checkpoint) has a live holder, whose SLURM job, host and heartbeat
  the lease names; its epoch, measured pace and ETA come from its partial logs (layout.live_dir,
  lowrank.engine.live);
* failed: its lease is stale (listed with the reason), or its pack's attempt history (layout.attempts_file, the
  format of lowrank.engine.job.attempt_log) shows a training attempt that left it without logs;
* pending: no attempt yet.

Device-hours are GPU-hours (CPU-hours when the `resources` table requests no GPU). Spent: the wall time the runs'
summaries record, final or partial; the runs of one job share its device, so a job counts its longest run. To go,
per pack still to train: its measured pace (from its runs' partial logs) times its epochs left, else the resources
table's prediction (plan.Pack.train_seconds) plus its overhead. A figure's hours are those of every pack holding one
of its runs, which `snakemake <figure>` trains. `--preview` draws figures from finished and partial runs
(lowrank.preview).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import yaml

from lowrank import grid, layout, lease, logs, plan, squeue
from lowrank.config import ConfigError

STATES = (logs.FINISHED, logs.DIVERGED, "running", "pending", "failed")
COUNTS = ("runs", *STATES)
# an attempt's header in a pack's history, as lowrank.engine.job.attempt_log writes it, behind the line's tag
# (`job <id> pid <pid>`, `pid <pid>` outside SLURM; `job <id>` in histories written before the pid was added)
HEADER = re.compile(r"^(?P<tag>(?:job \S+ )?pid \d+|job \S+) \| === attempt \d+: SLURM job (?P<job>\S+) "
                    r"\(restart \d+\) on (?P<host>\S+), pid (?P<pid>\d+), \S+ ===$", re.M)
TRACEBACK = "Traceback (most recent call last):"
ERROR = "error: "  # the start of the sentence an attempt ends with (lowrank.engine.job.attempt_log)
NOT_DRAWN = "not drawn"  # a preview that failed (exit status 1); one with nothing to draw yet is no failure


@dataclass(frozen=True)
class RunStatus:
    """Where one run stands: its state, and for a run with partial logs its epoch, pace and ETA; for a running run
    the job, host and heartbeat age its lease names."""

    run_id: str
    figures: tuple[str, ...]
    state: str
    epochs: int
    epoch: int | None = None
    pace_s: float | None = None
    eta_s: float | None = None
    job: str | None = None
    host: str | None = None
    heartbeat_age_s: float | None = None


@dataclass(frozen=True)
class StaleLease:
    """A lease whose holder trains nothing any more (lowrank.lease.stale_reason): the next job takes it over."""

    run_id: str
    holder: str
    reason: str
    path: str


@dataclass(frozen=True)
class FailedPack:
    """A pack's attempt history holding failed runs: how many, its attempts, the last attempt's job and host and
    the last line of its traceback (None: killed, or out of time), and the history's path."""

    pack: str
    runs: int
    attempts: int
    job: str
    host: str
    error: str | None
    log: str


@dataclass(frozen=True)
class Sweep:
    """Every run's status, the stale leases, the failed packs and the device-hours (per figure and "total")."""

    runs: list[RunStatus]
    stale: list[StaleLease]
    failed: list[FailedPack]
    unit: str
    spent_h: dict[str, float]
    to_go_h: dict[str, float]
    measured_packs: int
    packs: int


def config_value(text: str) -> object:
    """A --config value as Snakemake reads it: YAML (numbers, booleans, lists, mappings), else the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_config(configfiles: list[str], overrides: list[str]) -> dict:
    """config.yaml, the --configfile files merged over it and the --config KEY=VALUE pairs, checked."""
    config = plan.load("config.yaml", *configfiles)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--config {item!r} is invalid: write KEY=VALUE.")
        config = grid.merge(config, {key: config_value(value)})
    plan.check(config)
    return config


def summary(run_dir: Path) -> dict | None:
    """A run folder's summary.json; None where it has none."""
    try:
        return logs.read_summary(run_dir)
    except (OSError, ValueError):
        return None


def last_attempt(history: Path) -> tuple[int, re.Match | None, str | None]:
    """A pack's history: how many attempts, the last one's header and, if it failed, its error: the sentence it ended
    with (lowrank.errors) or its traceback's last line."""
    text = history.read_text(errors="replace")
    headers = list(HEADER.finditer(text))
    if not headers:
        return 0, None, None
    prefix = headers[-1]["tag"] + " | "
    lines = [line[len(prefix):] for line in text[headers[-1].end():].splitlines() if line.startswith(prefix)]
    failed = lines and (TRACEBACK in lines or lines[-1].startswith(ERROR))
    return len(headers), headers[-1], lines[-1] if failed else None


def progress(live: dict | None, now: float) -> dict:
    """Epoch, pace (seconds per epoch) and ETA of a run from its partial logs (whose runtime's end is when they
    were written)."""
    if live is None:
        return {}
    epoch, epochs, wall = live["epochs_completed"], live["config"]["epochs"], live["runtime"]["wall_time_s"]
    written = datetime.fromisoformat(live["runtime"]["finished"]).timestamp()
    pace = wall / epoch if epoch else None
    eta = max(0.0, pace * (epochs - epoch) - (now - written)) if pace is not None else None
    return {"epoch": epoch, "pace_s": pace, "eta_s": eta}


def survey(config: dict, now: float, job_active: Callable[[str], bool | None] | None = None) -> Sweep:
    """Where every run of the config's plan stands, from the results folder (see the module's docstring);
    job_active: is a SLURM job running (squeue.job_active by default), asked once per job."""
    everything = plan.build(config)  # every run, packed as on a fresh start
    remaining = plan.build(config, plan.logged(config["results"]))  # the packs Snakemake submits now
    results, ckpts = Path(config["results"]), layout.checkpoints_dir(config["results"])
    packs = {r.run_id: p for p in everything.packs for r in p.runs}
    current = {r.run_id: p for p in remaining.packs for r in p.runs}
    me, job_active = lease.this_process(now), functools.cache(job_active or squeue.job_active)
    runs, stale, recorded, histories = [], [], {}, {}  # recorded: each run's summary, final or partial
    for rid, cfg in everything.runs.items():
        base = {"run_id": rid, "figures": everything.run_figures[rid], "epochs": cfg.epochs}
        if rid not in current:  # logged
            final = recorded[rid] = summary(layout.run_dir(everything.runs_dir, rid))
            runs.append(RunStatus(state=final["status"], epoch=final["epochs_completed"], **base))
            continue
        live_dir = layout.run_dir(layout.live_dir(results), rid)
        live = recorded[rid] = summary(live_dir)
        lease_path = layout.lease_file(ckpts, rid)
        held = lease.read(lease_path)
        reason = lease.stale_reason(held, me, now, config["lease_stale_after_s"], job_active) if held else None
        if held and reason is None:
            runs.append(RunStatus(state="running", job=held.job or None, host=held.host,
                                  heartbeat_age_s=max(0.0, now - held.heartbeat), **progress(live, now),
                                  **base))
            continue
        if held:
            stale.append(StaleLease(rid, held.describe(), reason, str(lease_path)))
        tried = [h for h in dict.fromkeys(layout.attempts_file(results, p.name) for p in (current[rid], packs[rid]))
                 if h.is_file()]  # its pack's history, packed as now or as on a fresh start
        for h in tried:
            histories.setdefault(h, []).append(rid)
        runs.append(RunStatus(state="failed" if held or tried else "pending", **progress(live, now), **base))
    return Sweep(runs, stale, failed_packs(histories, runs), *hours(everything, remaining, recorded))


def failed_packs(histories: dict[Path, list[str]], runs: list[RunStatus]) -> list[FailedPack]:
    """The attempt histories (with the runs not logged whose pack they record) holding failed runs."""
    failed = {r.run_id for r in runs if r.state == "failed"}
    out = []
    for history, rids in sorted(histories.items()):
        if failed.intersection(rids):
            attempts, header, error = last_attempt(history)
            out.append(FailedPack(history.stem, len(failed.intersection(rids)), attempts,
                                  header["job"] if header else "-", header["host"] if header else "-", error,
                                  str(history)))
    return out


def devices(pack: plan.Pack) -> int:
    """The devices one job of `pack` holds: its GPUs, or its CPU cores when it requests none."""
    return pack.resources["gpus"] or pack.resources["cpus"]


def hours(everything: plan.Plan, remaining: plan.Plan, recorded: dict[str, dict | None]
          ) -> tuple[str, dict[str, float], dict[str, float], int, int]:
    """Device-hours spent (recorded wall times, a job's runs sharing its device) and to go (measured pace, else the
    resources table), per figure and in total; the unit; how many packs to go have a measured pace, of how many."""
    unit = "GPU" if any(p.resources["gpus"] for p in everything.packs) else "CPU"
    jobs: dict[tuple, tuple[float, plan.Pack, set]] = {}  # one job of one pack -> its longest run's wall time
    for pack in everything.packs:
        for r in pack.runs:
            s = recorded.get(r.run_id)
            if s:
                key = (pack.name, s["runtime"]["host"], s["runtime"]["started"])
                wall, _, ids = jobs.get(key, (0.0, pack, set()))
                jobs[key] = (max(wall, s["runtime"]["wall_time_s"]), pack, ids | {r.run_id})
    spent = [(wall * devices(pack) / 3600, ids) for wall, pack, ids in jobs.values()]
    to_go, measured = [], 0
    for pack in remaining.packs:
        lives = [recorded.get(r.run_id) for r in pack.runs]
        paces = [s["runtime"]["wall_time_s"] / s["epochs_completed"] for s in lives if s and s["epochs_completed"]]
        if paces:
            measured += 1
            left = pack.runs[0].epochs - min(s["epochs_completed"] if s else 0 for s in lives)
            seconds = max(paces) * left
        else:
            seconds = pack.train_seconds() + pack.table["runtime_overhead_min"] * 60
        to_go.append((seconds * devices(pack) / 3600, {r.run_id for r in pack.runs}))
    figures = {name: set(ids) for name, ids in everything.figure_runs.items()}

    def per_figure(parts: list[tuple[float, set]]) -> dict[str, float]:
        out = {name: sum((h for h, ids in parts if ids & own), 0.0) for name, own in figures.items()}
        return {**out, "total": sum((h for h, _ in parts), 0.0)}

    return unit, per_figure(spent), per_figure(to_go), measured, len(remaining.packs)


def counts(runs: list[RunStatus]) -> dict[str, int]:
    """How many runs, and how many in each state."""
    return {"runs": len(runs), **{state: sum(r.state == state for r in runs) for state in STATES}}


def as_json(sweep: Sweep) -> dict:
    """The --json object: counts in total and per figure, the running runs, stale leases, failed packs, hours."""
    figures = sorted({f for r in sweep.runs for f in r.figures})
    running = [{"run_id": r.run_id, "figures": list(r.figures), "epoch": r.epoch, "epochs": r.epochs,
                "eta_s": None if r.eta_s is None else round(r.eta_s), "job": r.job, "host": r.host,
                "heartbeat_age_s": round(r.heartbeat_age_s, 1),
                "pace_s": None if r.pace_s is None else round(r.pace_s, 3)}
               for r in sweep.runs if r.state == "running"]
    return {"total": counts(sweep.runs),
            "figures": {f: counts([r for r in sweep.runs if f in r.figures]) for f in figures},
            "running": running, "stale_leases": [asdict(s) for s in sweep.stale],
            "failed": [asdict(f) for f in sweep.failed],
            "hours": {"unit": sweep.unit, "spent": {k: round(v, 3) for k, v in sweep.spent_h.items()},
                      "to_go": {k: round(v, 3) for k, v in sweep.to_go_h.items()},
                      "measured_packs": sweep.measured_packs, "packs": sweep.packs}}


def duration(seconds: float | None) -> str:
    """A duration for people: 45 s, 12 min, 3 h 05 min, 2 d 4 h; '-' when unknown."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def table(rows: list[list[str]]) -> str:
    """Rows of cells as aligned text: the first column left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in rows)


def report(sweep: Sweep, results: str) -> str:
    """The status as text: the counts table per figure and in total with device-hours, then the running runs,
    the stale leases and the failed packs."""
    h = f"{sweep.unit}-h"
    rows = [["figure", *COUNTS, f"{h} spent", f"{h} to go"]]
    figures = sorted({f for r in sweep.runs for f in r.figures})
    for name, runs in [*((f, [r for r in sweep.runs if f in r.figures]) for f in figures), ("total", sweep.runs)]:
        rows.append([name, *(str(v) for v in counts(runs).values()), f"{sweep.spent_h[name]:.2f}",
                     f"{sweep.to_go_h[name]:.2f}"])
    out = [f"results: {results}", table(rows),
           f"{sweep.unit}-hours: {sweep.spent_h['total']:.2f} spent, about {sweep.to_go_h['total']:.2f} to go "
           f"({sweep.packs} packs to train: {sweep.measured_packs} at their measured pace, the others as the "
           f"resources table predicts)"]
    running = [r for r in sweep.runs if r.state == "running"]
    if running:
        rows = [["run", "epoch", "job", "host", "heartbeat", "pace", "ETA"]]
        rows += [[r.run_id, f"{'-' if r.epoch is None else r.epoch}/{r.epochs}", r.job or "-", r.host,
                  f"{duration(r.heartbeat_age_s)} ago", "-" if r.pace_s is None else f"{r.pace_s:.2f} s/epoch",
                  duration(r.eta_s)] for r in running]
        out += ["", f"running ({len(running)}):", table(rows)]
    if sweep.stale:
        out += ["", f"stale leases ({len(sweep.stale)}; the next job for the run takes them over):"]
        out += [f"  {s.run_id}: {s.holder}: {s.reason} ({s.path})" for s in sweep.stale]
    if sweep.failed:
        out += ["", f"failed packs ({len(sweep.failed)}):"]
        for f in sweep.failed:
            how = f"crashed: {f.error}" if f.error else "ended without its logs (killed, or out of time)"
            who = f"SLURM job {f.job}" if f.job != "-" else "a job outside SLURM"
            out += [f"  {f.pack}: {f.runs} failed run(s), {f.attempts} attempt(s); the last, {who} on {f.host}, {how}",
                    f"    log: {f.log}"]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: Snakemake's config arguments, --json, --preview."""
    ap = argparse.ArgumentParser(prog="python -m lowrank.status", description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", nargs="+", default=[], metavar="FILE",
                    help="config files merged over config.yaml, as given to snakemake")
    ap.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE", help="overrides, as given to snakemake")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    ap.add_argument("--preview", nargs="+", metavar="FIGURE",
                    help="draw these figures (or 'all') from finished and partial runs into <results>/preview/")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the sweep's status (and draw the previews asked for); a bad config is one sentence, exit 2."""
    args = parse_args(argv)
    try:
        config = load_config(args.configfile, args.config)
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sweep = survey(config, time.time())
    out = as_json(sweep) if args.json else report(sweep, config["results"])
    drawn = previews(config, args.preview) if args.preview else {}
    if args.json:
        print(json.dumps({**out, **({"preview": drawn} if drawn else {})}, indent=1))
    else:
        print(out + "".join(f"\n{name}: {what}" for name, what in drawn.items()))
    return 1 if any(what.startswith(NOT_DRAWN) for what in drawn.values()) else 0


def previews(config: dict, names: list[str]) -> dict[str, str]:
    """Draw the preview of each figure named (all: every figure); per figure, what was drawn or why not."""
    from lowrank import preview  # pandas and matplotlib: imported only when a preview is asked for

    runs = plan.build(config).figure_runs
    out = {}
    for name in list(runs) if names == ["all"] else names:
        if name not in runs:
            out[name] = f"{NOT_DRAWN}: no figure {name} in the config (figures: {', '.join(runs)})"
            continue
        try:
            png, note = preview.draw(config, name, runs[name])
            out[name] = f"drew {png} ({note})"
        except preview.NothingToDraw as err:
            out[name] = f"nothing to draw yet: {err}"
        except (logs.DamagedRun, ValueError) as err:
            out[name] = f"{NOT_DRAWN}: {err}"
    return out


if __name__ == "__main__":
    sys.exit(main())
