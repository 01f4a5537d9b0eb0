"""`snakemake -n all`: this checkout's dry run against Snakemake's own start-up, side by side in one process.

Each round times, in turn, Snakemake's start-up (a dry run of a one-rule Snakefile in a temporary folder), this
checkout's dry run of the paper's grid, a grid ten times its size (every figure's seeds × 10: ~2,800 runs),
`python -m lowrank.status` on the paper's grid before any training (what a login node waits for: every run
pending, the sweep priced) and, with --base, a baseline commit's dry run (a temporary `git worktree`, removed afterwards), alternating the order so
a busy machine slows all alike; the table gives the best and the median of the rounds and each dry run's ratio to
the start-up. Run from the repository root:

    .venv/bin/python -m bench.bench_dryrun               # 3 rounds, about two minutes on a busy 2-core machine
    .venv/bin/python -m bench.bench_dryrun --rounds 5 --base HEAD~3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lowrank import plan

ROOT = Path(__file__).resolve().parents[1]
ONE_RULE = 'rule all:\n    output: "x.txt"\n    shell: "touch {output}"\n'


def timed(args: list[str], tree: Path) -> float:
    """Wall seconds of `python ARGS` (e.g. -m snakemake -n all) run in folder `tree` (its own package on
    PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def ten_times(folder: Path) -> Path:
    """An override giving every figure of config.yaml ten seeds for each of its own: a grid ten times the paper's."""
    config = plan.load(ROOT / "config.yaml")
    seeds = {name: {"seeds": [s * 10 + k for s in fig.get("seeds", config["defaults"]["seeds"]) for k in range(10)]}
             for name, fig in config["figures"].items()}
    path = folder / "ten_times.yaml"
    path.write_text(yaml.safe_dump({"figures": seeds}))
    return path


def rounds(commands: dict[str, tuple[list[str], Path]], n: int) -> dict[str, list[float]]:
    """Seconds per round of each command, in alternating order within a round."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(n):
        for name, (args, tree) in (commands.items() if i % 2 == 0 else reversed(commands.items())):
            times[name].append(timed(args, tree))
    return times


def table(times: dict[str, list[float]], startup: str) -> str:
    """Best and median seconds per measured command, and the ratio of its median to the start-up's."""
    base = statistics.median(times[startup])
    lines = [f"{'':44s} {'best s':>8s} {'median s':>9s} {'× start-up':>11s}"]
    lines += [f"{name:44s} {min(t):8.2f} {statistics.median(t):9.2f} {statistics.median(t) / base:11.2f}"
              for name, t in times.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time the dry runs and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.bench_dryrun", description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="also time this baseline commit's dry run")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each timing every command once (default: 3)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-") as tmp:
        tmp = Path(tmp)
        (tmp / "one").mkdir()
        (tmp / "one" / "Snakefile").write_text(ONE_RULE)
        results = ["--config", f"results={tmp / 'results'}"]
        dry = ["-m", "snakemake", "-n", "all", "--quiet", "rules", *results]
        startup = "snakemake start-up (one-rule Snakefile, -n)"
        commands = {startup: (["-m", "snakemake", "-n", "--quiet", "rules"], tmp / "one"),
                    "dry run, paper grid (this checkout)": (dry, ROOT),
                    "dry run, 10× paper grid (this checkout)": (
                        [*dry, "--configfile", str(ROOT / "config.yaml"), str(ten_times(tmp))], ROOT),
                    "lowrank.status, paper grid, untrained": (["-m", "lowrank.status", *results], ROOT)}
        if args.base:
            base = tmp / "base"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
            commands[f"dry run, paper grid (base {args.base})"] = (dry, base)
        try:
            times = rounds(commands, args.rounds)
        finally:
            if args.base:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=True)
    print(f"snakemake -n all ({args.rounds} rounds, alternating)\n{table(times, startup)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
