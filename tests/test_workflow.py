"""The Snakemake workflow as users drive it: dry runs of the paper grid, single-figure targets, config errors."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_aggregate import write_figure

from lowrank import grid, layout, logs, plan
from lowrank.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO = [ROOT / "config" / "demo.yaml", ROOT / "config" / "demo-synthetic.yaml"]  # the synthetic demo: quick


def snakemake(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run snakemake in the repo (killed after `timeout` seconds so nothing can hang)."""
    return subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def planned_runs(output: str) -> set[str]:
    """Run ids whose logs a dry run plans to write."""
    return set(re.findall(r"runs/([^/\s,]+)/summary\.json", output))


def test_dry_run_of_the_whole_paper_lists_every_run(tmp_path):  # its time: bench/bench_dryrun.py
    res = snakemake("-n", "all", "--config", f"results={tmp_path}")
    assert res.returncode == 0, res.stderr
    assert planned_runs(res.stdout + res.stderr) == set(grid.all_runs(plan.load(ROOT / "config.yaml")))


def test_one_figure_target_builds_only_its_runs(tmp_path):
    res = snakemake("-n", "fig04", "--config", f"results={tmp_path}")
    assert res.returncode == 0, res.stderr
    config = plan.load(ROOT / "config.yaml")
    assert planned_runs(res.stdout + res.stderr) == {fr.run.run_id for fr in grid.figure_runs(config, "fig04")}


def test_bad_config_stops_before_any_job_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"figures": {"fig02": {"fixed": {"lr": -0.1}}}}))
    res = snakemake("-n", "all", "--configfile", str(bad), "--config", f"results={tmp_path}")
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "lr" in text and "-0.1" in text and "Job stats" not in text
    assert not (tmp_path / "runs").exists()


def test_a_pack_size_on_the_default_resources_row_is_refused_saying_why(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"resources": {"default": {"pack_size": 4}}}))
    res = snakemake("-n", "all", "--configfile", "config.yaml", str(bad), "--config", f"results={tmp_path}")
    assert res.returncode != 0
    assert ("Invalid config at resources.default.pack_size: not allowed here: the top-level pack_size is the "
            "default") in res.stdout + res.stderr, res.stdout[-2000:]



def test_a_misspelled_top_level_key_is_a_few_lines_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("figuers: {}\n")
    res = snakemake("-n", "all", "--configfile", str(bad), "--config", f"results={tmp_path}")
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "'figuers' was unexpected); did you mean 'figures'?" in text and len(text.splitlines()) <= 6, text


def test_a_non_finite_number_in_the_config_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("comparison: {eps: [0.01, .inf]}\n")
    res = snakemake("-n", "all", "--configfile", str(bad), "--config", f"results={tmp_path}")
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "Invalid config at comparison.eps[1]: inf is not a finite number" in text, text


def test_a_batch_larger_than_the_dataset_is_refused_when_the_dag_is_built(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"figures": {"fig08": {"vary": {"batch_size": [4, 500]}}}}))
    res = snakemake("-n", "all", "--configfile", *map(str, DEMO), str(bad), "--config", f"results={tmp_path}")
    text = res.stdout + res.stderr
    assert res.returncode != 0 and "Job stats" not in text
    assert "batch_size=500 is invalid: the synthetic training set has only 384 samples" in text


def test_a_key_given_twice_in_an_override_file_stops_snakemake_naming_file_and_line(tmp_path):
    dup = tmp_path / "override.yaml"
    dup.write_text("figures:\n  fig08:\n    title: a\n  fig08:\n    title: b\n")
    res = snakemake("-n", "all", "--configfile", *map(str, DEMO), str(dup), "--config", f"results={tmp_path}")
    text = res.stdout + res.stderr
    assert res.returncode != 0 and f"{dup} line 4, column 3 is not valid YAML: key 'fig08' is given twice" in text


def test_a_yaml_syntax_error_in_an_override_file_stops_snakemake_naming_file_and_line(tmp_path):
    """Issue 25, case 7: Snakemake reads a --configfile before any workflow code and said only "Config file is not
    valid JSON or YAML"; the line `make setup` adds to the environment (lowrank/snakemake_config.py) names both."""
    bad = tmp_path / "override.yaml"
    bad.write_text("figures:\n  fig08:\n    vary: {batch_size: [4, 16}\n")
    res = snakemake("-n", "all", "--configfile", *map(str, DEMO), str(bad), "--config", f"results={tmp_path}")
    text = res.stdout + res.stderr
    assert res.returncode != 0 and text.splitlines()[-2:] == [
        "WorkflowError:", f"{bad} line 3, column 30 is not valid YAML: did not find expected ',' or ']'."], text


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("figures:\n  fig01: {title: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{bad} line 3, column 1 is not valid YAML"):
        plan.read_yaml(bad)


# --- outputs follow their inputs: a config edit re-runs exactly the jobs that read it ------------------------------
FIGURES = ("fig08", "fig18")  # a curves figure and the bound figure: four runs in all
FIGURE_RUNS = {name: {fr.run.run_id for fr in grid.figure_runs(plan.load(ROOT / "config.yaml", *DEMO), name)}
               for name in FIGURES}


def planned_jobs(output: str) -> dict[str, int]:
    """The dry run's job stats: rule -> number of jobs, less the targets and the total (empty: nothing to do)."""
    stats = output.partition("Job stats:")[2]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)
            if rule not in ("total", *FIGURES)}


@pytest.mark.slow  # one real training job (~5 s), then a dry run per setting
@pytest.mark.parametrize("setting", ["checkpoint_every=3", "lease_stale_after_s=99", "gpu_kernels=fast",
                                     "gpu_step=graph"])
def test_how_jobs_run_never_resubmits_a_trained_pack(tmp_path, setting):
    """Execution settings say how a training job runs, never what its runs are: after fig18's run is trained for
    real, switching one plans nothing (they are read from the config, not given as params, which Snakemake compares;
    as params, each of these planned the pack again)."""
    (run_id,) = FIGURE_RUNS["fig18"]
    target = str(tmp_path / "runs" / run_id / "summary.json")
    args = ["-c1", "--configfile", *map(str, DEMO), "--config", f"results={tmp_path}"]
    trained = snakemake(target, *args)
    assert trained.returncode == 0 and "train_" in trained.stderr, trained.stderr[-3000:]
    again = snakemake("-n", "fig18", *args, setting)  # a logged run is no job's output: ask for its figure
    planned = planned_jobs(again.stdout + again.stderr)
    assert again.returncode == 0 and planned and not any(r.startswith("train_") for r in planned), again.stdout[-3000:]


@pytest.mark.slow  # fig05's B = 64 panel trained for real (3 runs, seconds), then a dry run and one more run
def test_re_packing_never_retrains_or_rewrites_a_logged_run(tmp_path):
    """Issue 25, case 6: after `rm -r results/checkpoints`, an edit that re-packed fig05's runs trained finished,
    unchanged runs again (their new pack was a new job to Snakemake, which removes a job's outputs before it
    runs). A logged run is no job's output now: re-packing plans nothing, and a new run trains alone."""
    panel = {"panels": [{"fixed": {"batch_size": 64}}]}
    over = tmp_path / "fig05.yaml"
    over.write_text(yaml.safe_dump({"figures": {"fig05": panel}, "pack_size": 2}))
    args = ["-c1", "--configfile", *map(str, DEMO), str(over), "--config", f"results={tmp_path}"]
    runs = sorted(grid.all_runs(plan.load(ROOT / "config.yaml", *DEMO, over), ["fig05"]))
    trained = snakemake("fig05", *args, timeout=300)
    assert trained.returncode == 0 and trained.stderr.count("rule train_") == 2, trained.stderr[-3000:]
    logs_of = [f for rid in runs for f in layout.run_files(tmp_path / "runs", rid)]
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in logs_of}
    shutil.rmtree(tmp_path / "checkpoints")
    repacked = snakemake("-n", "fig05", *args, "pack_size=3")
    assert repacked.returncode == 0 and planned_jobs(repacked.stdout + repacked.stderr) == {}, repacked.stdout[-3000:]
    over.write_text(yaml.safe_dump({"figures": {"fig05": {**panel, "vary": {"weight_decay": [0.0, 0.02, 0.05, 0.03]}}},
                                    "pack_size": 2}))
    (new,) = set(grid.all_runs(plan.load(ROOT / "config.yaml", *DEMO, over), ["fig05"])) - set(runs)
    grown = snakemake("fig05", *args, timeout=300)
    assert grown.returncode == 0 and grown.stderr.count("rule train_") == 1, grown.stderr[-3000:]
    assert (tmp_path / "runs" / new / "summary.json").is_file()
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in logs_of} == before


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """fig08 and fig18 of the demo built for real from hand-made run logs; returns a dry-run function taking a
    config override."""
    results = tmp_path_factory.mktemp("results")
    config = plan.load(ROOT / "config.yaml", *DEMO)
    for name in FIGURES:
        write_figure(results / "runs", config, name)
    res = snakemake(*FIGURES, "-c1", "--configfile", *map(str, DEMO), "--config", f"results={results}", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]

    def dry_run(override: dict, *args: str) -> dict[str, int]:
        extra = results / "override.yaml"
        extra.write_text(yaml.safe_dump(override))
        res = snakemake("-n", *FIGURES, "--configfile", *map(str, DEMO), str(extra), "--config", f"results={results}",
                        *args)
        assert res.returncode == 0, res.stderr[-3000:]
        return planned_jobs(res.stdout + res.stderr)

    dry_run.results = results
    return dry_run


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_no_edit_reruns_nothing(built):
    assert built({}) == {}


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_every_job_that_ran_code_left_its_log(built):
    logs = built.results / "logs"
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.log")) == [
        "aggregate_figure/fig08.log", "aggregate_figure/fig18.log", "render/fig08.log", "render/fig18.log"]


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_a_title_edit_rerenders_only_that_figure(built):
    assert built({"figures": {"fig08": {"title": "Fig 8, retitled"}}}) == {"render_fig08": 1}


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_a_figure_eps_edit_reaggregates_and_rerenders_only_that_figure(built):
    assert built({"figures": {"fig08": {"eps": {"caption": 0.1}}}}) == {"aggregate_figure": 1, "render_fig08": 1}


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_a_switch_reruns_only_the_figures_that_read_it(built):
    assert built({"switches": {"bound_lambda": "as_printed"}}) == {"render_fig18": 1}
    assert built({"switches": {"plot_eps": "notebook"}}) == {"aggregate_figure": 2, "render_fig08": 1,
                                                                "render_fig18": 1}
    assert built({"demo": False}) == {"render_fig08": 1, "render_fig18": 1}


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_a_deleted_table_is_built_again(built):
    table = built.results / "tables" / "fig08.csv"
    saved = table.read_bytes()
    table.unlink()
    try:
        assert built({}) == {"aggregate_figure": 1, "render_fig08": 1}
    finally:
        table.write_bytes(saved)


@pytest.mark.slow  # one real build, then a dry run per edit: ~1 min on a busy 2-core machine
def test_a_truncated_run_log_stops_naming_it_and_the_next_run_rewrites_it(built):
    """Last in this module: it leaves fig08's first run retired."""
    run_id = sorted(FIGURE_RUNS["fig08"])[0]
    ranks = built.results / "runs" / run_id / "ranks.csv"
    ranks.write_text(ranks.read_text()[:-20])  # cut mid-line
    res = snakemake(*FIGURES, "-c1", "--configfile", *map(str, DEMO), "--config", f"results={built.results}")
    assert res.returncode != 0
    assert f"run {run_id}: {ranks} is damaged" in res.stderr and "Marked it retired" in res.stderr
    assert (ranks.parent / "retired.txt").is_file() and (ranks.parent / "summary.json").is_file()
    jobs = built({})
    assert [rule for rule in jobs if rule.startswith("train_")] and jobs["aggregate_figure"] == 1


@pytest.mark.slow  # fig09 and fig10 built from hand-made logs, then one run trained for real (seconds)
def test_a_damaged_run_two_figures_share_fails_both_in_one_sentence_and_is_rewritten_once(tmp_path):
    """Issue 25, case 8: a damaged run drawn by two figures. Its first aggregation removed its summary.json, so the
    second failed on a missing input (Snakemake's "filesystem latency" hint). Now each job names the damaged file
    in one sentence, the run is marked retired, and the next start rewrites it once, for both figures."""
    config = plan.load(ROOT / "config.yaml", *DEMO)
    for name in ("fig09", "fig10"):
        write_figure(tmp_path / "runs", config, name)
    args = ["fig09", "fig10", "-c1", "--keep-going", "--configfile", *map(str, DEMO), "--config",
            f"results={tmp_path}"]
    res = snakemake(*args, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    shared = sorted(set.intersection(*({fr.run.run_id for fr in grid.figure_runs(config, name)}
                                       for name in ("fig09", "fig10"))))[0]
    evals = tmp_path / "runs" / shared / "evals.csv"
    evals.write_text(evals.read_text()[:-20])  # the last row cut mid-line
    res = snakemake(*args, timeout=300)
    sentence = f"run {shared}: {evals} is damaged: a row has no "
    assert res.returncode != 0 and res.stderr.count(sentence) == 2, res.stderr[-3000:]  # one per figure's job
    for name in ("fig09", "fig10"):
        assert layout.log_file(tmp_path, "aggregate_figure", name).read_text().startswith(sentence)
    assert "latency" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert (evals.parent / "retired.txt").is_file()
    res = snakemake(*args, timeout=300)
    assert res.returncode == 0 and res.stderr.count("rule train_") == 1, res.stderr[-3000:]
    jobs = planned_jobs(res.stderr)
    assert {rule: n for rule, n in jobs.items() if not rule.startswith("train_")} == {
        "aggregate_figure": 2, "render_fig09": 1, "render_fig10": 1, "fig09": 1, "fig10": 1}, jobs
    assert logs.check_run(evals.parent, shared) and not (evals.parent / "retired.txt").exists()
