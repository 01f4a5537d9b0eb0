"""The Snakemake workflow as users drive it: dry runs of the paper grid, single-figure targets, config errors."""

import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lowrank import grid

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run snakemake in the repo (killed after `timeout` seconds so nothing can hang)."""
    return subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def planned_runs(output: str) -> set[str]:
    """Run ids whose logs a dry run plans to write."""
    return set(re.findall(r"runs/([^/\s,]+)/summary\.json", output))


def test_dry_run_of_the_whole_paper_lists_every_run_fast(tmp_path):
    start = time.perf_counter()
    res = snakemake("-n", "all", "--config", f"results={tmp_path}")
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    assert planned_runs(res.stdout + res.stderr) == set(grid.all_runs(grid.load_config(ROOT / "config.yaml")))
    assert elapsed < 20, f"dry run took {elapsed:.1f} s"


def test_one_figure_target_builds_only_its_runs(tmp_path):
    res = snakemake("-n", "fig04", "--config", f"results={tmp_path}")
    assert res.returncode == 0, res.stderr
    config = grid.load_config(ROOT / "config.yaml")
    assert planned_runs(res.stdout + res.stderr) == {fr.run.run_id for fr in grid.figure_runs(config, "fig04")}


def test_bad_config_stops_before_any_job_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"figures": {"fig02": {"fixed": {"lr": -0.1}}}}))
    res = snakemake("-n", "all", "--configfile", str(bad), "--config", f"results={tmp_path}")
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "lr" in text and "-0.1" in text and "Job stats" not in text
    assert not (tmp_path / "runs").exists()
