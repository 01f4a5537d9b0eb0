"""`snakemake -n all` on the full paper config: this checkout against a baseline commit, side by side.

Each round times, in turn, Snakemake's own start-up (`--version`), the baseline's dry run and this checkout's
(alternating, so a busy machine slows both alike); the table gives the best and the median of the rounds. The
baseline is a temporary `git worktree` of --base (default 9ca3c0a: before the torch-free workflow layer), removed
afterwards. Run from the repository root:

    .venv/bin/python -m bench.bench_dryrun               # 3 rounds, about a minute on a busy 2-core machine
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

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], tree: Path) -> float:
    """Wall seconds of `python -m snakemake ARGS` run in checkout `tree` (its own package on PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def rounds(trees: dict[str, Path], n: int) -> dict[str, list[float]]:
    """Seconds per round of Snakemake's start-up and of each checkout's dry run, alternating within a round."""
    times: dict[str, list[float]] = {"snakemake --version": [], **{name: [] for name in trees}}
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-") as results:
        for i in range(n):
            times["snakemake --version"].append(timed(["--version"], ROOT))
            for name, tree in (trees.items() if i % 2 == 0 else reversed(trees.items())):
                times[name].append(timed(["-n", "all", "--quiet", "rules", "--config", f"results={results}"], tree))
    return times


def table(times: dict[str, list[float]]) -> str:
    """Best and median seconds per measured command."""
    lines = [f"{'':40s} {'best s':>8s} {'median s':>9s}"]
    lines += [f"{name:40s} {min(t):8.2f} {statistics.median(t):9.2f}" for name, t in times.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time the dry runs and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.bench_dryrun", description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="9ca3c0a", help="baseline commit (default: 9ca3c0a)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each timing every command once (default: 3)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            times = rounds({f"dry run, base {args.base}": base, "dry run, this checkout": ROOT}, args.rounds)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=True)
    print(f"snakemake -n all, full paper config ({args.rounds} rounds, alternating)\n{table(times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
