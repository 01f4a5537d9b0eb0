"""python -m lowrank.status on hand-made result trees: every state a run can be in, the running runs' progress from
their partial logs and leases, stale leases, failed attempts and device-hours; previews drawn from partial runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lowrank import layout, plan, status
from lowrank.lease import Holder

ROOT = Path(__file__).resolve().parents[1]
NOW = float(int(time.time()))  # whole seconds, as summary.json's times
# the paper's Fig 8 (six RES-BN runs, B = 4 ... 128: a pack each) and Fig 14 (four ResNet-18 runs: one pack)
FIGURES = ("fig08", "fig14")


def when(age_s: float) -> str:
    """The time `age_s` seconds before NOW, as summary.json's runtime writes times."""
    return datetime.fromtimestamp(NOW - age_s, timezone.utc).isoformat(timespec="seconds")


def small_config(tmp_path: Path) -> dict:
    """config.yaml with only FIGURES, results under tmp_path."""
    config = plan.load(ROOT / "config.yaml")
    return {**config, "results": str(tmp_path / "results"), "figures": {f: config["figures"][f] for f in FIGURES}}


def put_summary(folder: Path, run_id: str, state: str, epoch: int, wall_s: float, started: str,
                age_s: float = 0.0) -> None:
    """A run's summary.json in `folder` (a runs or live folder) with the fields status reads, written `age_s` ago;
    in a runs folder, with its other (empty) log files, so the run counts as logged."""
    run = layout.run_dir(folder, run_id)
    run.mkdir(parents=True)
    if folder.name == "runs":
        for path in layout.run_files(folder, run_id):
            path.touch()
    layout.run_file(run, "summary").write_text(json.dumps(
        {"run_id": run_id, "status": state, "epochs_completed": epoch, "config": {"epochs": 500},
         "runtime": {"host": "node3", "started": started, "wall_time_s": wall_s, "finished": when(age_s)}}))


def put_lease(config: dict, run_id: str, job: str, host: str, age_s: float) -> Path:
    """A lease on run `run_id` held by SLURM job `job` on `host`, its heartbeat `age_s` seconds old."""
    path = layout.lease_file(layout.checkpoints_dir(config["results"]), run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(Holder(job, host, 5, "token", NOW - age_s))))
    return path


def crash_attempt(history: Path, monkeypatch) -> None:
    """One attempt of a pack, SLURM job 77, that crashed: written by the engine's own attempt log."""
    from lowrank.engine.job import attempt_log

    monkeypatch.setenv("SLURM_JOB_ID", "77")
    with pytest.raises(ZeroDivisionError), attempt_log(history.with_suffix(".rule.log"), history, 1) as say:
        say("[res_bn cifar10 B=64 K=1] epoch 1/500 2.00s")
        1 / 0


@pytest.fixture
def tree(tmp_path, monkeypatch) -> tuple[dict, dict[str, str]]:
    """A results tree holding every state: Fig 8's runs by B: 4 finished, 8 diverged, 16 running (live lease and
    partial logs), 32 with a stale lease, 64 failed (a crashed attempt), 128 pending; Fig 14: two runs finished by
    one job, two pending. Returns the config and the run ids by role."""
    config = small_config(tmp_path)
    everything = plan.build(config)
    by_b = {everything.runs[r].batch_size: r for r in everything.figure_runs["fig08"]}
    fig14 = everything.figure_runs["fig14"]
    runs, live = layout.runs_dir(config["results"]), layout.live_dir(config["results"])
    put_summary(runs, by_b[4], "finished", 500, 7200, "job1")
    put_summary(runs, by_b[8], "diverged", 37, 1800, "job2")
    put_summary(live, by_b[16], "running", 100, 1000, "job3", age_s=60)
    put_lease(config, by_b[16], "4242", "node7", age_s=30)
    put_summary(live, by_b[32], "running", 20, 100, "job4", age_s=7300)
    put_lease(config, by_b[32], "99", "node9", age_s=7200)  # lease_stale_after_s: 3600
    current = {r.run_id: p for p in plan.build(config, plan.logged(config["results"])).packs for r in p.runs}
    crash_attempt(layout.attempts_file(config["results"], current[by_b[64]].name), monkeypatch)
    put_summary(runs, fig14[0], "finished", 500, 3600, "job5")
    put_summary(runs, fig14[1], "finished", 500, 3000, "job5")  # same job: one device, one hour
    return config, {"running": by_b[16], "stale": by_b[32], "failed": by_b[64], "fig14_left": fig14[2]}


def test_status_counts_every_state_and_reports_progress_leases_and_failures(tree):
    config, ids = tree
    got = status.as_json(status.survey(config, NOW, job_active=lambda job: True))
    assert got["total"] == {"runs": 10, "finished": 3, "diverged": 1, "running": 1, "pending": 3, "failed": 2}
    assert got["figures"] == {
        "fig08": {"runs": 6, "finished": 1, "diverged": 1, "running": 1, "pending": 1, "failed": 2},
        "fig14": {"runs": 4, "finished": 2, "diverged": 0, "running": 0, "pending": 2, "failed": 0}}
    # pace 1000 s / 100 epochs; ETA 400 epochs x 10 s less the 60 s since the partial logs were written
    assert got["running"] == [{"run_id": ids["running"], "figures": ["fig08"], "epoch": 100, "epochs": 500,
                               "eta_s": 3940, "job": "4242", "host": "node7", "heartbeat_age_s": 30.0,
                               "pace_s": 10.0}]
    lease_path = layout.lease_file(layout.checkpoints_dir(config["results"]), ids["stale"])
    assert got["stale_leases"] == [{"run_id": ids["stale"], "holder": "SLURM job 99 (pid 5 on node9)",
                                    "reason": "no heartbeat for 7200 s (more than 3600 s)", "path": str(lease_path)}]
    history = next(Path(config["results"], "logs", "train", "attempts").glob("*.log"))
    assert got["failed"] == [{"pack": history.stem, "runs": 1, "attempts": 1, "job": "77",
                              "host": socket.gethostname(), "error": "ZeroDivisionError: division by zero",
                              "log": str(history)}]


def test_hours_spent_count_each_job_once_and_hours_to_go_use_the_measured_pace(tree):
    config, ids = tree
    hours = status.as_json(status.survey(config, NOW, job_active=lambda job: True))["hours"]
    # spent: 7200 + 1800 + 1000 + 100 s on Fig 8's packs; Fig 14's two runs shared one job of 3600 s (one GPU each)
    assert hours["unit"] == "GPU" and hours["spent"] == {"fig08": 2.806, "fig14": 1.0, "total": 3.806}
    # to go: B = 16 at 10 s/epoch x 400 epochs, B = 32 at 5 s/epoch x 480 (measured); B = 64 and 128 and Fig 14's
    # pack of the two runs left, from the resources table (epochs x steps x step time, plus 10 minutes)
    b64 = (500 * 782 * (0.0061 + 0.0001 * 4) + 600) / 3600
    b128 = (500 * 391 * (0.0061 + 0.0001 * 8) + 600) / 3600
    fig14 = (500 * 6250 * (0.0062 + 0.0047 * 2) + 600) / 3600
    fig08 = 4000 / 3600 + 2400 / 3600 + b64 + b128
    assert hours["to_go"] == pytest.approx({"fig08": fig08, "fig14": fig14, "total": fig08 + fig14}, abs=1e-3)
    assert (hours["measured_packs"], hours["packs"]) == (2, 5)


def test_the_command_line_reads_snakemakes_config_arguments(tree, tmp_path, monkeypatch, capsys):
    """From the project root with the paper's whole grid, results moved by --config: 283 runs, the tree's among
    them; the text report names the running run's job and the failed pack's log."""
    config, ids = tree
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(status.squeue, "job_active", lambda job: True)
    assert status.main(["--config", f"results={config['results']}", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["total"] == {"runs": 283, "finished": 3, "diverged": 1, "running": 1, "pending": 276, "failed": 2}
    assert got["figures"]["fig08"] == {"runs": 6, "finished": 1, "diverged": 1, "running": 1, "pending": 1,
                                       "failed": 2}
    assert [r["run_id"] for r in got["running"]] == [ids["running"]]
    assert status.main(["--config", f"results={config['results']}"]) == 0
    text = capsys.readouterr().out
    running = next(line for line in text.splitlines() if line.startswith(ids["running"]))
    assert running.split()[:4] == [ids["running"], "100/500", "4242", "node7"] and got["failed"][0]["log"] in text
    assert "GPU-hours: 3.81 spent" in text


def test_the_whole_paper_grid_before_any_training_is_pending_and_priced(tmp_path):
    """A fresh process, as on a login node: every run pending, the sweep's GPU-hours as the resources table
    predicts them (training time plus each job's overhead). How long it takes is bench/bench_dryrun.py's."""
    out = subprocess.run([sys.executable, "-m", "lowrank.status", "--config", f"results={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[:7] == ["total", "283", "0", "0", "0", "283", "0"]
    packs = plan.build(plan.load(ROOT / "config.yaml")).packs
    hours = sum(p.train_seconds() / 3600 + p.table["runtime_overhead_min"] / 60 for p in packs)
    assert total.split()[7:] == ["0.00", f"{hours:.2f}"] and 900 < hours < 1100
