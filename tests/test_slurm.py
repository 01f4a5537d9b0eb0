"""The SLURM profile against a real single-node SLURM (tests/slurm/cluster.sh): the demo through SLURM equals a local
run byte for byte; a training job resumes at its step across its time limit (TIMEOUT, the table's limit too short:
the retries' limits learnt), preemption (requeue) and `scancel --signal=TERM`; a pack out of memory finishes as
sub-packs; a crash fails its job and prints its logs; a GPU request on a GPU-less cluster fails at submission; a
controller killed and restarted trains no epoch twice; a killed job's stale lease is taken over; Ctrl-C on the
controller cancels its job; a controller whose status queries fail while slurmctld is down learns its jobs' real
states once it is back.

The session fixture installs SLURM (apt, root) and starts it; where that is impossible the tests skip, unless
LOWRANK_REQUIRE_SLURM=1 (CI), where they fail. Every snakemake runs under a hard timeout that kills its process
group (and cancels the test cluster's jobs), so nothing can hang. About 15 minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lowrank import checkpoints, grid, layout, pace, plan

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SLURM_DIR = Path(os.environ.get("LOWRANK_SLURM_DIR", "/tmp/lowrank-slurm"))
DEMO = [ROOT / "config" / "demo.yaml", ROOT / "config" / "demo-synthetic.yaml"]  # the synthetic demo: quick
RESUME = ROOT / "tests" / "slurm" / "resume.yaml"
FAILURES = ROOT / "tests" / "slurm" / "failures.yaml"
FASTPOLL = ROOT / "tests" / "slurm" / "fastpoll.py"
LOG_FILES = ("evals.csv", "layers.csv", "ranks.csv", "singular_values.npz")
EPOCH_LINE = re.compile(r"\] epoch (\d+)/(\d+) ")


# --- processes with hard timeouts -------------------------------------------------------------------------------
class Proc:
    """A command in its own process group, output to a file; wait() kills the whole group at its deadline."""

    def __init__(self, cmd: list[str], log: Path, env: dict, timeout: float):
        self.cmd, self.log, self.env, self.timeout = cmd, log, env, timeout
        self.start = time.monotonic()
        with open(log, "wb") as fh:
            self.popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def poll(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self) -> int:
        left = self.timeout - (time.monotonic() - self.start)
        try:
            return self.popen.wait(timeout=max(left, 0.1))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"timed out after {self.timeout:.0f} s: {' '.join(map(str, self.cmd))}\n"
                        f"--- output tail ---\n{self.output()[-6000:]}")

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()
        cancel_all_jobs(self.env)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def slurm(env: dict, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=30, check=check)


def cancel_all_jobs(env: dict) -> None:
    """Cancel every job of the private test cluster (after a killed snakemake, so the next test starts clean)."""
    if env.get("SLURM_CONF"):
        ids = slurm(env, "squeue", "-h", "-o", "%i").stdout.split()
        if ids:
            slurm(env, "scancel", *ids)


def snakemake(args: list, env: dict, log: Path, timeout: float) -> Proc:
    """snakemake ARGS through tests/slurm/fastpoll.py (the SLURM executor's status polls capped at 2 s)."""
    return Proc([sys.executable, str(FASTPOLL), *map(str, args)], log, env, timeout)


# --- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cluster():
    """A running single-node SLURM; yields the environment that reaches it. Stops it unless it was running before."""

    def unavailable(msg: str):
        if os.environ.get("LOWRANK_REQUIRE_SLURM") == "1":
            pytest.fail(f"LOWRANK_REQUIRE_SLURM=1 but {msg}")
        pytest.skip(msg)

    if shutil.which("bash") is None:
        unavailable("no bash")
    was_running = subprocess.run([str(CLUSTER), "status"], capture_output=True, timeout=60).returncode == 0
    for step, timeout in (("install", 900), ("start", 120)):
        try:
            r = subprocess.run([str(CLUSTER), step], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            unavailable(f"cluster.sh {step} timed out")
        if r.returncode != 0:
            unavailable(f"cluster.sh {step} failed: {r.stderr.strip()[-2000:]}")
    env = dict(os.environ, SLURM_CONF=str(SLURM_DIR / "slurm.conf"),
               PATH=f"{SLURM_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("SLURM_JOB_ID", None)  # pytest itself may run inside a SLURM job
    cancel_all_jobs(env)
    yield env
    cancel_all_jobs(env)
    if not was_running:
        subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def profile(tmp_path_factory) -> Path:
    """profiles/slurm with tests/slurm/profile-overrides.yaml merged over it (mappings merged key by key)."""
    base = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    over = yaml.safe_load((ROOT / "tests" / "slurm" / "profile-overrides.yaml").read_text())
    merged = grid.merge(base, over)
    out = tmp_path_factory.mktemp("profile")
    (out / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return out


def demo_config(*extra: Path, results: Path) -> dict:
    return {**plan.load(ROOT / "config.yaml", *DEMO, *extra), "results": str(results)}


def run_ids(config: dict, figure: str) -> list[str]:
    return sorted({fr.run.run_id for fr in grid.figure_runs(config, figure)})


def assert_same_runs(a: Path, b: Path, ids: list[str]) -> None:
    """Each run's logs byte-identical in results dirs a and b; summary.json equal but for `runtime`."""
    for rid in ids:
        for name in LOG_FILES:
            assert (a / "runs" / rid / name).read_bytes() == (b / "runs" / rid / name).read_bytes(), \
                f"{rid}/{name} differs between {a} and {b}"
        sa, sb = (json.loads((d / "runs" / rid / "summary.json").read_text()) for d in (a, b))
        sa.pop("runtime"), sb.pop("runtime")
        assert sa == sb, f"{rid}/summary.json differs (beyond runtime)"


# --- the dry run: what a user sees before submitting -------------------------------------------------------------
def test_dry_run_prints_resources_of_every_training_job(tmp_path):
    """`snakemake --profile profiles/slurm -n all` on the paper's config lists each training job's GPU, time, memory."""
    config = plan.load(ROOT / "config.yaml")
    table = config["resources"]
    proc = snakemake(["--profile", "profiles/slurm", "-n", "all", "--config", f"results={tmp_path}/results",
                      f"data_root={tmp_path}/data"], dict(os.environ), tmp_path / "dry.log", timeout=180)
    assert proc.wait() == 0, proc.output()[-4000:]
    out = proc.output()
    blocks = re.findall(r"^rule (train_\w+):\n(.*?)(?=^\S)", out, flags=re.M | re.S)
    n_packs = len(plan.build(config).packs)
    assert len(blocks) == n_packs, f"{len(blocks)} training jobs in the dry run, {n_packs} packs in the grid"
    archs = sorted((k for k in table if isinstance(table[k], dict) and k != "default"), key=len, reverse=True)
    for name, body in blocks:
        arch = next(a for a in archs if name.startswith(f"train_{a}_"))
        want = {**table["default"], **table[arch]}
        res = dict(kv.split("=", 1) for kv in re.search(r"resources: (.*)", body).group(1).split(", "))
        assert int(res["gpu"]) == want["gpus"], (name, res)
        assert int(res["mem_mb"]) == want["mem_mb"], (name, res)
        assert table["runtime_overhead_min"] < int(res["runtime"]) <= table["max_runtime_min"], (name, res)


# --- (a) the whole demo workflow through SLURM equals a local run -----------------------------------------------
def test_demo_workflow_through_slurm_matches_local_run(cluster, profile, tmp_path):
    """The demo's whole DAG (every training pack on SLURM; aggregation, renders, comparison, scorecard and
    provenance as local rules on the submit host) completes, and every run's logs, every table and the scorecard
    are byte-identical to a local run of the same config (summary.json but `runtime`)."""
    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(results=slurm_res)
    ids = sorted(grid.all_runs(config))
    local = Proc([sys.executable, "-m", "snakemake", "all", "--profile", "profiles/local", "--cores", "1",
                  "--configfile", *map(str, DEMO), "--config", f"results={local_res}"], tmp_path / "local.log", cluster,
                 timeout=1200)
    remote = snakemake(["all", "--profile", profile, "--configfile", *DEMO, "--slurm-logdir", slurm_res / "slurm_logs",
                        "--config", f"results={slurm_res}"], cluster, tmp_path / "slurm.log", timeout=1200)
    assert remote.wait() == 0, remote.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]
    out = remote.output()
    # every training job went through sbatch and finished there; everything else ran on the submit host
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    train_rules = set(re.findall(r"^rule (train_\w+):", out, flags=re.M))
    assert train_rules and len(submitted) == len(train_rules), out[-4000:]
    for jobid in submitted:
        (log,) = (slurm_res / "slurm_logs").glob(f"rule_train_*/{jobid}.log")
        assert "1 of 1 steps (100%) done" in log.read_text()
        assert settled_state(cluster, jobid) in ("COMPLETED", "")  # "": squeue forgets a job MinJobAge after its end
    for rule in ("aggregate_figure", "bound_vs_rank", "render_bound_vs_rank", "scorecard", "provenance"):
        assert re.search(rf"^localrule {rule}:", out, flags=re.M), rule
    assert len(set(re.findall(r"^localrule render_(fig\d+):", out, flags=re.M))) == len(config["figures"])
    assert_same_runs(slurm_res, local_res, ids)
    tables = [f"tables/{name}.csv" for name in (*config["figures"], "bound_vs_rank", "bound_summary")]
    for name in (*tables, "scorecard.md"):
        assert (slurm_res / name).read_bytes() == (local_res / name).read_bytes(), name
    for name in (*config["figures"], "bound_vs_rank"):
        for ext in ("png", "pdf"):
            assert (slurm_res / "figures" / f"{name}.{ext}").stat().st_size > 0


# --- (b) resume across the time limit, preemption and scancel ---------------------------------------------------
def resume_epoch(ckpt_dir: Path, cfg) -> int | None:
    """The epoch a start of run `cfg` resumes from: its newest good checkpoint, as the trainer picks it (a kill
    while a checkpoint is written leaves the previous one); None when it has none."""
    ckpt = checkpoints.load_latest(ckpt_dir, cfg, pytest.fail)
    return None if ckpt is None else int(ckpt["epoch"])


def job_state(env: dict, jobid: str) -> str:
    return slurm(env, "squeue", "-h", "-t", "all", "-j", jobid, "-o", "%T").stdout.strip()


def settled_state(env: dict, jobid: str, timeout: float = 60) -> str:
    """The job's state once SLURM has finished winding it down (COMPLETING is the step between a scancel and
    CANCELLED, or between the script's end and COMPLETED)."""
    deadline = time.monotonic() + timeout
    while (state := job_state(env, jobid)) == "COMPLETING" and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def slurm_job_ids(logdir: Path) -> list[str]:
    return sorted((p.stem for p in logdir.glob("rule_train_*/*.log")), key=int)


def job_of(logdir: Path, batch_size: int) -> str | None:
    """The SLURM job id of the (first) job submitted for fig08's pack of batch size `batch_size`; None before."""
    found = sorted((p.stem for p in logdir.glob(f"rule_train_*_b{batch_size}_*/*.log")), key=int)
    return found[0] if found else None


class TrainLog:
    """Follows a pack's training log. Snakemake deletes a job's log when an attempt starts (and SLURM restarts a
    requeued job from the top), so each attempt's log begins afresh: record (first, last) epoch of each one."""

    def __init__(self, logs_dir: Path):
        self.dir, self.attempts = logs_dir, []

    def update(self) -> None:
        files = list(self.dir.glob("*.log"))
        epochs = [int(m.group(1)) for m in EPOCH_LINE.finditer(files[0].read_text(errors="replace"))] if files else []
        if not epochs:
            return
        if self.attempts and self.attempts[-1][0] == epochs[0]:
            self.attempts[-1][1] = max(self.attempts[-1][1], epochs[-1])
        else:
            self.attempts.append([epochs[0], epochs[-1]])

    def reached(self, epoch: int, attempt: int) -> bool:
        """Has the `attempt`-th start (1-based) logged `epoch`? (Its checkpoint of epoch - 1 is then on disk.)"""
        return len(self.attempts) >= attempt and self.attempts[attempt - 1][1] >= epoch


def wait_for(what: str, cond, proc: Proc, timeout: float, follow: TrainLog | None = None, step: float = 1.0):
    """Poll cond() until it returns a truthy value; fail (and kill proc) when proc exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if follow:
            follow.update()
        value = cond()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited (rc={proc.poll()}) while waiting for {what}\n{proc.output()[-6000:]}")
        time.sleep(step)
    proc.kill()
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{proc.output()[-6000:]}")


def seconds_per_epoch(cfg, tmp: Path) -> float:
    """This machine's time for one epoch of `cfg` on one CPU thread (fastest of 3), measured outside SLURM."""
    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"config": {**cfg.to_dict(), "epochs": 4}, "out": str(tmp / "out")}))
    r = subprocess.run([sys.executable, "-m", "lowrank.train", "--spec", str(spec), "--ckpt-dir", str(tmp / "ckpt"),
                        "--device", "cpu"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    times = sorted(float(t) for t in re.findall(r"epoch [2-4]/4 ([0-9.]+)s", r.stdout + r.stderr))
    assert len(times) == 3, r.stdout + r.stderr
    return times[0]  # the fastest: a conservative (larger) epoch count if the machine is busy right now


STOPPED = re.compile(r"^stopped (?:run|pack) .* at epoch (\d+) step (\d+) of \d+: checkpointed there$", re.M)
RESUMED = re.compile(r"^resumed (?:run|pack) .* at epoch (\d+) step (\d+) of \d+$", re.M)


def position(ckpt_dir: Path, cfg) -> tuple[int, int]:
    """(epoch in progress, steps of it trained) where a start of run `cfg` resumes: its newest good checkpoint."""
    ckpt = checkpoints.load_latest(ckpt_dir, cfg, pytest.fail)
    return int(ckpt["epoch"]) + 1, int(ckpt.get("step", 0))


def limit(env: dict, jobid: str) -> str:
    """A job's SLURM time limit as squeue prints it (M:SS)."""
    return slurm(env, "squeue", "-h", "-t", "all", "-j", jobid, "-o", "%l").stdout.strip()


def test_training_resumes_at_its_step_across_timeout_requeue_and_scancel(cluster, profile, tmp_path):
    """fig08's B = 4 run as one training job whose table step time is a tenth of the real one, so that attempt 1's
    time limit (from the table) is too short: SLURM's SIGTERM at the limit stops it mid-epoch, checkpointed (TIMEOUT),
    and Snakemake resubmits it with a limit learnt from its measured pace (lowrank.pace). Attempt 2 is requeued by
    SLURM, as preemption with PreemptMode=REQUEUE does, and starts again as the same job; then `scancel
    --signal=TERM` stops it checkpointed (FAILED) and attempt 3, its limit learnt again, finishes. Every start
    resumes at the epoch and step of the last checkpoint (where the signal stopped it), every epoch is logged once,
    and the logs equal an uninterrupted local run byte for byte."""
    # epochs for ~150 s of training at this machine's speed (without the checkpoint and evaluation of every epoch
    # that the job makes), well over attempt 1's 1-minute limit, which SLURM enforces up to ~30 s late; the table
    # says 15 s of it (a tenth), so that limit is SLURM's shortest
    demo = demo_config(results=tmp_path)
    (base,) = [fr.run for fr in grid.figure_runs(demo, "fig08") if fr.run.batch_size == 4]
    per_epoch = seconds_per_epoch(base, tmp_path / "speed")
    epochs = min(max(int(150 / per_epoch), 100), 1500)
    resume = tmp_path / "resume.yaml"
    over = yaml.safe_load(RESUME.read_text())
    over["figures"]["fig08"]["fixed"]["epochs"] = epochs
    over["resources"]["res_bn"]["step_seconds"] = 15 / (epochs * base.steps_per_epoch)
    resume.write_text(yaml.safe_dump(over))

    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(resume, results=slurm_res)
    (cfg,) = [fr.run for fr in grid.figure_runs(config, "fig08") if fr.run.batch_size == 4]
    (pack,) = [p for p in plan.build(config).packs if p.runs == (cfg,)]
    assert cfg.epochs == epochs
    rid = cfg.run_id
    ckpt_dir = layout.checkpoints_dir(slurm_res)
    logdir = slurm_res / "slurm_logs"
    target = f"runs/{rid}/summary.json"
    train_log = TrainLog(slurm_res / "logs" / "train")
    # the uninterrupted reference, at low priority so the SLURM job keeps its core
    local = Proc(["nice", "-n", "19", sys.executable, "-m", "snakemake", str(local_res / target), "--profile",
                  "profiles/local", "--cores", "1", "--configfile", *map(str, DEMO), str(resume),
                  "--config", f"results={local_res}"], tmp_path / "local.log", cluster, timeout=900)
    remote = snakemake([slurm_res / target, "--profile", profile, "--configfile", *DEMO, resume,
                        "--slurm-logdir", logdir, "--config", f"results={slurm_res}"],
                       cluster, tmp_path / "slurm.log", timeout=900)

    # attempt 1 (the table's limit) runs into its time limit
    (j1,) = wait_for("the first job", lambda: slurm_job_ids(logdir), remote, 90)
    wait_for(f"job {j1} to reach its time limit", lambda: job_state(cluster, j1) == "TIMEOUT", remote, 400,
             train_log)
    timed_out_at = position(ckpt_dir, cfg)  # read once the job is gone: where the next start must resume
    # what the Snakefile asks for attempt 2: the time the steps left take at the pace attempt 1 recorded
    seconds_left = [pace.seconds_left(ckpt_dir, [rid])]
    learned = [pack.minutes(2, ckpt_dir)]
    # attempt 2: once it has trained 2 epochs, SLURM requeues it; it starts again as the same job
    j2 = wait_for("the second attempt", lambda: [j for j in slurm_job_ids(logdir) if j != j1], remote, 120,
                  train_log)[0]
    wait_for(f"job {j2} to train", lambda: train_log.reached(timed_out_at[0] + 2, attempt=2), remote, 120,
             train_log)
    slurm(cluster, "scontrol", "requeue", j2, check=True)
    wait_for(f"job {j2} to be requeued", lambda: job_state(cluster, j2) == "PENDING", remote, 60, train_log)
    requeued_at = position(ckpt_dir, cfg)
    # ... then, a third of the way through what is left, SIGTERM: it checkpoints and fails; Snakemake resubmits it
    cancel_at = requeued_at[0] + max(2, (epochs - requeued_at[0]) // 3)
    wait_for(f"job {j2} to run again", lambda: job_state(cluster, j2) == "RUNNING", remote, 90, train_log)
    wait_for(f"job {j2} to reach epoch {cancel_at}", lambda: train_log.reached(cancel_at, attempt=3), remote,
             300, train_log)
    slurm(cluster, "scancel", "--signal=TERM", j2, check=True)
    wait_for(f"job {j2} to fail", lambda: settled_state(cluster, j2) == "FAILED", remote, 60, train_log)
    cancelled_at = position(ckpt_dir, cfg)
    seconds_left.append(pace.seconds_left(ckpt_dir, [rid]))
    learned.append(pack.minutes(3, ckpt_dir))
    wait_for("snakemake to finish", lambda: remote.poll() is not None, remote, 500, train_log)
    train_log.update()

    assert remote.wait() == 0, remote.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]
    jobs = slurm_job_ids(logdir)
    assert len(jobs) == 3, f"expected 3 SLURM jobs (attempts), got {jobs}"
    assert settled_state(cluster, jobs[2]) == "COMPLETED"
    (j1_log,) = logdir.glob(f"rule_train_*/{j1}.log")
    assert "DUE TO TIME LIMIT" in j1_log.read_text()
    out = remote.output()
    assert f"SLURM-job '{j1}' failed, SLURM status is: 'TIMEOUT'" in out
    assert f"SLURM-job '{j2}' failed, SLURM status is: 'FAILED'" in out
    # attempt 1's limit from the table; attempts 2 and 3 from the pace the previous attempt measured
    limits = [limit(cluster, j) for j in jobs]
    assert limits == [f"{pack.minutes(1)}:00", *(f"{m}:00" for m in learned)], (limits, learned)
    table = config["resources"]
    assert learned == [math.ceil(s * table["runtime_margin"] / 60 + table["runtime_overhead_min"])
                       for s in seconds_left], (learned, seconds_left)

    # each start resumed where the last checkpoint left it (attempt 2 twice: before and after its requeue); a
    # signal (the time limit, scancel --signal=TERM) stopped it there, mid-epoch, and said so
    assert (1, 0) < timed_out_at < requeued_at < cancelled_at < (epochs + 1, 0), (timed_out_at, requeued_at,
                                                                                   cancelled_at)
    history = (slurm_res / "logs" / "train" / "attempts" / f"{pack.name}.log").read_text()
    lines = "\n".join(line.split(" | ", 1)[1] for line in history.splitlines())
    stopped = [tuple(map(int, m)) for m in STOPPED.findall(lines)]
    resumed = [tuple(map(int, m)) for m in RESUMED.findall(lines)]
    assert stopped[0] == timed_out_at and stopped[-1] == cancelled_at, (stopped, timed_out_at, cancelled_at)
    assert resumed == [timed_out_at, requeued_at, cancelled_at], resumed
    starts = [first for first, _ in train_log.attempts]
    assert starts == [1, timed_out_at[0], requeued_at[0], cancelled_at[0]], train_log.attempts
    assert train_log.attempts[-1][1] == epochs, train_log.attempts
    # each epoch exactly once in the logs, and the logs equal the uninterrupted local run
    layers = pd.read_csv(slurm_res / "runs" / rid / "layers.csv")
    for layer, rows in layers.groupby("layer"):
        assert rows["epoch"].tolist() == list(range(epochs + 1)), layer
    assert_same_runs(slurm_res, local_res, [rid])


def test_a_pack_out_of_memory_finishes_as_sub_packs(cluster, profile, tmp_path):
    """An MLP pack of 4 whose job runs out of memory above K = 2 (LOWRANK_TEST_OOM_ABOVE_K, the engine's stand-in
    for a GPU too small, passed to the job by sbatch's exported environment) finishes in its one SLURM job as two
    sub-packs of 2, records that size for its shape, and its runs' logs equal a local run of the pack of 4."""
    over = tmp_path / "pack4.yaml"
    over.write_text(yaml.safe_dump({"pack_size": 4}))
    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(over, results=slurm_res)
    pack = next(p for p in plan.build(config).packs if p.runs[0].arch == "mlp_bn" and len(p.runs) == 4)
    ids = [r.run_id for r in pack.runs]
    local = Proc(["nice", "-n", "19", sys.executable, "-m", "snakemake",
                  *[local_res / "runs" / rid / "summary.json" for rid in ids], "--profile", "profiles/local",
                  "--cores", "1", "--configfile", *map(str, DEMO), str(over), "--config", f"results={local_res}"],
                 tmp_path / "local.log", cluster, timeout=600)
    remote = snakemake([*[slurm_res / "runs" / rid / "summary.json" for rid in ids], "--profile", profile,
                        "--configfile", *DEMO, over, "--slurm-logdir", slurm_res / "slurm_logs",
                        "--config", f"results={slurm_res}"], {**cluster, "LOWRANK_TEST_OOM_ABOVE_K": "2"},
                       tmp_path / "slurm.log", timeout=600)
    assert remote.wait() == 0, remote.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]
    (job,) = slurm_job_ids(slurm_res / "slurm_logs")
    assert settled_state(cluster, job) in ("COMPLETED", "")
    text = (slurm_res / "logs" / "train" / f"{pack.name}.log").read_text()
    assert re.search(r"^out of memory \(LOWRANK_TEST_OOM_ABOVE_K=2: a pack of 4 runs does not fit .*\): training "
                     r"the pack as sub-packs of 2 runs", text, flags=re.M), text[-3000:]
    epochs = re.findall(r"^\[mlp_bn synthetic B=\d+ K=(\d)\] epoch", text, flags=re.M)
    assert epochs == ["2"] * (2 * pack.runs[0].epochs), text[-3000:]
    (fit,) = (layout.checkpoints_dir(slurm_res) / "fit").glob("*.json")
    assert json.loads(fit.read_text())["runs"] == 2
    assert_same_runs(slurm_res, local_res, ids)


# --- (c) failures: a crash, and a GPU request the cluster cannot satisfy ----------------------------------------
@pytest.fixture(scope="module")
def failing_run(cluster, profile, tmp_path_factory):
    """One snakemake (no retries) with two jobs: a training job whose checkpoint is another run's (it crashes at start)
    and an MLP job that requests a GPU from the GPU-less cluster."""
    tmp = tmp_path_factory.mktemp("failures")
    res = tmp / "results"
    config = demo_config(FAILURES, results=res)
    crash = next(fr.run for fr in grid.figure_runs(config, "fig08") if fr.run.batch_size == 16)
    gpu = grid.figure_runs(config, "fig07")[0].run
    assert gpu.arch == "mlp_bn"
    (res / "checkpoints").mkdir(parents=True)
    ckpt = layout.checkpoint_file(layout.checkpoints_dir(res), crash.run_id)
    checkpoints.save(ckpt, gpu, {"epoch": 1})  # another run's: refused
    proc = snakemake([res / "runs" / crash.run_id / "summary.json", res / "runs" / gpu.run_id / "summary.json",
                      "--profile", profile, "--retries", "0", "--configfile", *DEMO, FAILURES,
                      "--slurm-logdir", res / "slurm_logs", "--config", f"results={res}"],
                     cluster, tmp / "snakemake.log", timeout=180)
    rc = proc.wait()
    return {"rc": rc, "out": proc.output(), "res": res, "elapsed": proc.elapsed, "crash": crash}


def test_crash_fails_its_job_and_prints_its_logs(failing_run):
    out, res = failing_run["out"], failing_run["res"]
    assert failing_run["rc"] != 0
    assert re.search(r"Error in rule train_res_bn_\w+:\n\s+message: SLURM-job '\d+' failed, SLURM status is: "
                     r"'FAILED'", out), out[-6000:]
    (train_log,) = (res / "logs" / "train").glob("train_res_bn_*.log")
    (slurm_log,) = (res / "slurm_logs").glob("rule_train_res_bn_*/*.log")
    assert f"log: {train_log}, {slurm_log} (check log file(s) for error details)" in out
    assert "Error in rule" in slurm_log.read_text()
    assert not (res / "runs" / failing_run["crash"].run_id / "summary.json").exists()


def test_why_a_job_failed_reaches_the_training_log_in_one_sentence(failing_run):
    """Why training stopped is in the training log, which Snakemake prints (show-failed-logs): for an error the user
    acts on, as here another run's checkpoint, the sentence naming the file and the way out (lowrank.errors), no
    traceback."""
    (train_log,) = (failing_run["res"] / "logs" / "train").glob("train_res_bn_*.log")
    text, ckpt = train_log.read_text(), layout.checkpoint_file(layout.checkpoints_dir(failing_run["res"]),
                                                               failing_run["crash"].run_id)
    assert text.splitlines()[-1].startswith(f"error: checkpoint {ckpt} belongs to run "), text
    assert text.endswith(": move it away or delete it.\n") and "Traceback" not in text, text
    assert f"Logfile {train_log}:\n" in failing_run["out"] and "Traceback" not in failing_run["out"]


def test_gpu_request_on_gpu_less_cluster_fails_at_submission(failing_run):
    out = failing_run["out"]
    assert re.search(r"Error in rule train_mlp_bn_\w+:\n\s+message: SLURM sbatch failed", out), out[-6000:]
    assert "--gpus=1" in out
    assert "Requested node configuration is not available" in out or "Invalid generic resource" in out
    assert failing_run["elapsed"] < 150  # failed, not stuck pending


# --- (d) one trainer per run: a killed controller restarted, a stale lease taken over ----------------------------
HISTORY_LINE = re.compile(r"^job (\d+) pid \d+ \| (.*)$")


def epochs_per_job(history: Path) -> dict[str, list[int]]:
    """The epochs each SLURM job logged in a pack's attempt history (logs/train/attempts/<pack>.log, every line
    tagged `job <id> pid <pid> | `), in the order of the jobs' first lines."""
    per_job = {}
    for line in history.read_text(errors="replace").splitlines():
        m = HISTORY_LINE.match(line)
        assert m, f"untagged line in {history}: {line!r}"
        epochs = per_job.setdefault(m.group(1), [])
        if e := EPOCH_LINE.search(m.group(2)):
            epochs.append(int(e.group(1)))
    return per_job


def allocation_seconds(env: dict, jobs: list[str]) -> dict[str, int]:
    """Each job's time in its allocation (squeue %M, [D-][H:]M:S), while squeue still knows it (MinJobAge)."""
    out = {}
    for line in slurm(env, "squeue", "-h", "-t", "all", "-j", ",".join(jobs), "-o", "%i|%M").stdout.split():
        job, elapsed = line.split("|")
        days, _, hms = elapsed.rpartition("-")
        secs = 0
        for part in hms.split(":"):
            secs = secs * 60 + int(part)
        out[job] = secs + 86400 * int(days or 0)
    return out


def epochs_override(tmp_path: Path, figure: str, epochs: int, checkpoint_every: int) -> Path:
    path = tmp_path / "epochs.yaml"
    path.write_text(yaml.safe_dump({"checkpoint_every": checkpoint_every,
                                    "figures": {figure: {"fixed": {"epochs": epochs}}}}))
    return path


def test_killed_controller_restarted_trains_no_epoch_twice(cluster, profile, tmp_path):
    """fig08 (its B = 4 and B = 16 runs) as 2 jobs on the 2-core cluster; the controller is SIGKILLed after the B = 16
    job finished, while the B = 4 job trains (the login session dies), then restarted as docs/slurm.md says
    (--unlock, then the same command). The new controller names the running job before it submits; its own job for
    the B = 4 pack finds the run's lease live, waits, and only writes the outputs: every epoch of every run is
    logged once, by one job, and the logs equal a local run."""
    demo = demo_config(results=tmp_path)
    (base,) = [fr.run for fr in grid.figure_runs(demo, "fig08") if fr.run.batch_size == 4]
    epochs = min(max(int(50 / seconds_per_epoch(base, tmp_path / "speed")), 60), 600)  # B = 4: ~1 min on SLURM
    over = epochs_override(tmp_path, "fig08", epochs, checkpoint_every=5)
    over.write_text(yaml.safe_dump(grid.merge(yaml.safe_load(over.read_text()),
                                              {"figures": {"fig08": {"vary": {"batch_size": [4, 16]}}}})))
    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(over, results=slurm_res)
    runs = {fr.run.batch_size: fr.run.run_id for fr in grid.figure_runs(config, "fig08")}
    ids = [runs[4], runs[16]]
    history = slurm_res / "logs" / "train" / "attempts"
    logdir = slurm_res / "slurm_logs"
    local = Proc(["nice", "-n", "19", sys.executable, "-m", "snakemake",
                  *[local_res / "runs" / rid / "summary.json" for rid in ids], "--profile", "profiles/local",
                  "--cores", "1", "--configfile", *map(str, DEMO), str(over), "--config", f"results={local_res}"],
                 tmp_path / "local.log", cluster, timeout=900)
    # the figure as target: a logged run is no job's output (lowrank.plan.build), so its own files are no target
    args = ["fig08", "--profile", profile, "--configfile", *DEMO, over, "--slurm-logdir", logdir, "--config",
            f"results={slurm_res}"]
    first = snakemake(args, cluster, tmp_path / "first.log", timeout=600)
    wait_for("the B = 16 job to finish",
             lambda: job_of(logdir, 16) and job_state(cluster, job_of(logdir, 16)) == "COMPLETED", first, 180)
    os.killpg(first.popen.pid, signal.SIGKILL)  # the controller dies; the B = 4 job keeps running
    first.popen.wait()
    b4_job = job_of(logdir, 4)
    assert job_state(cluster, b4_job) == "RUNNING"
    unlock = snakemake([*args, "--unlock"], cluster, tmp_path / "unlock.log", timeout=120)
    assert unlock.wait() == 0, unlock.output()[-4000:]
    second = snakemake(args, cluster, tmp_path / "second.log", timeout=600)
    assert second.wait() == 0, second.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]

    out = second.output()
    notice = re.search(r"SLURM: 1 job\(s\) of an earlier run of this workflow are still queued or running:\n"
                       rf"\s+{b4_job}  RUNNING\s+(train_\w+)\n", out)
    assert notice, out[-6000:]
    (duplicate,) = first_jobs(second)  # only the unfinished pack is submitted again
    assert out.index(notice.group(0)) < out.index(f"submitted with SLURM jobid {duplicate}")
    b4_log = history / f"{notice.group(1)}.log"
    text = b4_log.read_text()
    tag = rf"^job {duplicate} pid \d+ \| "
    assert re.search(rf"{tag}=== attempt 1: SLURM job {duplicate} ", text, flags=re.M), text[-3000:]
    assert re.search(rf"{tag}lease \S+: held by SLURM job {b4_job} \(pid \d+ on \S+\), heartbeat "
                     r"\d+ s ago; waiting for it to finish$", text, flags=re.M), text[-3000:]
    seconds = allocation_seconds(cluster, [job_of(logdir, 16), b4_job, duplicate])
    for pack_log in sorted(history.glob("*.log")):
        per_job = epochs_per_job(pack_log)
        print(f"{pack_log.stem}: " + ", ".join(f"job {j} ({seconds.get(j)} s in its allocation): "
                                              + (f"epochs {e[0]}-{e[-1]}" if e else "no epoch")
                                              for j, e in per_job.items()))
        trained = sorted(e for es in per_job.values() for e in es)
        assert trained == list(range(1, epochs + 1)), (pack_log.name, per_job)  # every epoch once, by one job
    assert epochs_per_job(b4_log)[duplicate] == []
    assert_same_runs(slurm_res, local_res, ids)


def first_jobs(proc: Proc) -> list[str]:
    """The SLURM job ids a snakemake has submitted so far, in order."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", proc.output())


def test_stale_lease_of_a_killed_job_is_taken_over(cluster, profile, tmp_path):
    """fig08's B = 16 run as one job, checkpointing every epoch; its training process is killed outright (SIGKILL,
    as a node lost; SLURM's own kills, `scancel --signal=KILL` included, send SIGTERM first, on which the job
    checkpoints and releases its lease) mid-run, leaving its lease behind. Snakemake resubmits it; the new job finds
    the lease of a job SLURM no longer runs, takes it over (and says so), resumes from the checkpoint and ends equal
    to an uninterrupted local run."""
    demo = demo_config(results=tmp_path)
    (base,) = [fr.run for fr in grid.figure_runs(demo, "fig08") if fr.run.batch_size == 16]
    epochs = min(max(int(30 / seconds_per_epoch(base, tmp_path / "speed")), 40), 600)
    over = epochs_override(tmp_path, "fig08", epochs, checkpoint_every=1)
    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(over, results=slurm_res)
    (cfg,) = [fr.run for fr in grid.figure_runs(config, "fig08") if fr.run.batch_size == 16]
    rid, target = cfg.run_id, f"runs/{cfg.run_id}/summary.json"
    ckpt_dir = layout.checkpoints_dir(slurm_res)
    lease_file = layout.lease_file(ckpt_dir, rid)
    history = slurm_res / "logs" / "train" / "attempts"
    local = Proc(["nice", "-n", "19", sys.executable, "-m", "snakemake", str(local_res / target), "--profile",
                  "profiles/local", "--cores", "1", "--configfile", *map(str, DEMO), str(over),
                  "--config", f"results={local_res}"], tmp_path / "local.log", cluster, timeout=600)
    remote = snakemake([slurm_res / target, "--profile", profile, "--configfile", *DEMO, over,
                        "--slurm-logdir", slurm_res / "slurm_logs", "--config", f"results={slurm_res}"],
                       cluster, tmp_path / "slurm.log", timeout=600)

    def trained(n):
        logs = list(history.glob("*.log"))
        return bool(logs) and sum(map(len, epochs_per_job(logs[0]).values())) >= n

    wait_for("5 epochs", lambda: trained(5), remote, 180)
    (j1,) = slurm_job_ids(slurm_res / "slurm_logs")
    holder = json.loads(lease_file.read_text())
    assert holder["job"] == j1
    os.kill(holder["pid"], signal.SIGKILL)  # the trainer (single-node cluster: this host)
    wait_for(f"job {j1} to end", lambda: job_state(cluster, j1) not in ("RUNNING", "COMPLETING"), remote, 60)
    killed_at = resume_epoch(ckpt_dir, cfg)
    assert lease_file.exists()  # the killed job could not release it
    assert remote.wait() == 0, remote.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]

    (pack_log,) = history.glob("*.log")
    per_job = epochs_per_job(pack_log)
    (j2,) = [j for j in per_job if j != j1]
    assert per_job[j2] == list(range(killed_at + 1, epochs + 1)), per_job  # resumed from the checkpoint
    assert per_job[j1][:killed_at] == list(range(1, killed_at + 1))
    text = pack_log.read_text()
    assert re.search(rf"^job {j2} pid \d+ \| === attempt 2: SLURM job {j2} .*\njob {j2} pid \d+ \| lease "
                     rf"{re.escape(lease_file.name)}: took over from SLURM job {j1} \(pid {holder['pid']} on \S+\): "
                     rf"SLURM job {j1} is no longer running$", text, flags=re.M), text[-3000:]
    assert not lease_file.exists()  # released at the end
    print(f"job {j1} (killed, {job_state(cluster, j1)}): epochs 1-{per_job[j1][-1]}; "
          f"job {j2}: {per_job[j2][0]}-{per_job[j2][-1]}; allocation seconds "
          f"{allocation_seconds(cluster, [j1, j2])}")
    assert_same_runs(slurm_res, local_res, [rid])


def status_query_flag(env: dict, bindir: Path) -> tuple[dict, Path]:
    """env whose `squeue` is a shim that, for each of the executor's status queries (`squeue ... --name <run id>`),
    creates a flag file, holds the query 5 s, answers and removes the flag: while the flag exists, a status query is
    in flight. Other squeue calls pass straight through."""
    real = shutil.which("squeue", path=env["PATH"])
    flag = bindir / "status-query-in-flight"
    bindir.mkdir()
    (bindir / "squeue").write_text(f'#!/bin/sh\ncase " $* " in *" --name "*)\n'
                                   f'    : > {flag}; sleep 5; {real} "$@"; rc=$?; rm -f {flag}; exit $rc;;\nesac\n'
                                   f'exec {real} "$@"\n')
    (bindir / "squeue").chmod(0o755)
    return {**env, "PATH": f"{bindir}{os.pathsep}{env['PATH']}"}, flag


@pytest.mark.parametrize("during_query", [True, False], ids=["during-a-status-query", "between-status-queries"])
def test_ctrl_c_on_the_controller_cancels_its_jobs(cluster, profile, tmp_path, during_query):
    """Ctrl-C (SIGINT) on the controller while its job trains: the job is cancelled, nothing is left in the queue,
    and the run's checkpoint stays for the next start (docs/slurm.md, 4a: aborting). Between two status queries the
    executor plugin cancels the job itself; during one it cancels nothing (it has taken its jobs out of its list
    while it queries them) and the workflow's onerror hook cancels what it left, and says so. The test signals in
    each of these windows on purpose: without the hook the first case fails every time (the job keeps RUNNING).
    Without lowrank/interrupt.py, about one run in ten failed as well, the SIGINT taken by another thread than
    Snakemake's main one, which acted on it only when the job had run to COMPLETED (tests/test_interrupt.py)."""
    over = epochs_override(tmp_path, "fig08", 600, checkpoint_every=1)
    res = tmp_path / "slurm"
    config = demo_config(over, results=res)
    (cfg,) = [fr.run for fr in grid.figure_runs(config, "fig08") if fr.run.batch_size == 16]
    env, flag = status_query_flag(cluster, tmp_path / "bin")
    env["LOWRANK_SLURM_POLL"] = "2" if during_query else "10"  # fastpoll.py: the pause after each status query
    proc = snakemake([res / "runs" / cfg.run_id / "summary.json", "--profile", profile, "--configfile", *DEMO, over,
                      "--slurm-logdir", res / "slurm_logs", "--config", f"results={res}"],
                     env, tmp_path / "slurm.log", timeout=300)
    ckpt = layout.checkpoint_file(layout.checkpoints_dir(res), cfg.run_id)
    wait_for("a checkpoint", ckpt.exists, proc, 180)
    (job,) = slurm_job_ids(res / "slurm_logs")
    assert job_state(cluster, job) == "RUNNING"
    wait_for("a status query", flag.exists, proc, 60, step=0.1)
    if not during_query:
        wait_for("the status query's answer", lambda: not flag.exists(), proc, 60, step=0.1)
        time.sleep(1)  # the plugin takes its jobs back into its list (milliseconds), then pauses 10 s
    os.killpg(proc.popen.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the controller's process group
    proc.wait()  # Snakemake's exit status after Ctrl-C varies (0 or 1 seen): what it leaves behind is the test
    state, left = settled_state(cluster, job), slurm(cluster, "squeue", "-h", "-o", "%i").stdout.split()
    cancel_all_jobs(cluster)  # when this test fails, its job must not run on into the next tests
    assert state == "CANCELLED", proc.output()[-4000:]
    assert left == []
    # what the next start resumes from: the newest good checkpoint (a kill while one is written leaves the previous)
    assert 0 < (resume_epoch(layout.checkpoints_dir(res), cfg) or 0) < 600
    cancelled_by_hook = f"SLURM: cancelled 1 job(s) of this run still queued or running: {job}" in proc.output()
    assert cancelled_by_hook == during_query, proc.output()[-4000:]


# --- (e) a scheduler outage: slurmctld down while jobs run -----------------------------------------------------
OUTAGE_S = 60  # several of the executor's status rounds (each ~10 s while slurmctld is down, then a 2-s pause)


@contextmanager
def slurmctld_stopped(env: dict) -> Iterator[None]:
    """slurmctld stopped for the block (slurmd and the running jobs go on), then started again from its saved state;
    when the block fails, the cluster's jobs are cancelled once slurmctld is back."""
    subprocess.run([str(CLUSTER), "stop-slurmctld"], check=True, capture_output=True, timeout=60)
    try:
        yield
    except BaseException:
        subprocess.run([str(CLUSTER), "start-slurmctld"], check=True, capture_output=True, timeout=120)
        cancel_all_jobs(env)
        raise
    subprocess.run([str(CLUSTER), "start-slurmctld"], check=True, capture_output=True, timeout=120)


def test_controller_survives_a_slurmctld_outage(cluster, profile, tmp_path):
    """fig08's B = 16 and B = 64 runs as 2 jobs; while both train, slurmctld stops for 60 s, so every status query
    of the controller fails (as when slurmctld or slurmdbd is down), and the B = 16 trainer is killed meanwhile.
    Once slurmctld is back, the controller learns each job's real state: B = 16's FAILED (resubmitted, it resumes
    from its checkpoint), B = 64's COMPLETED; it says when SLURM stopped and started answering again, and ends
    with logs equal to a local run. Without lowrank/outage.py the executor plugin (2.8) dropped both jobs at the
    first failed status round and the controller waited forever."""
    demo = demo_config(results=tmp_path)
    (base,) = [fr.run for fr in grid.figure_runs(demo, "fig08") if fr.run.batch_size == 16]
    epochs = min(max(int(40 / seconds_per_epoch(base, tmp_path / "speed")), 100), 600)  # B = 16: ~40 s
    over = epochs_override(tmp_path, "fig08", epochs, checkpoint_every=1)
    slurm_res, local_res = tmp_path / "slurm", tmp_path / "local"
    config = demo_config(over, results=slurm_res)
    runs = {fr.run.batch_size: fr.run for fr in grid.figure_runs(config, "fig08")}
    ids = [runs[16].run_id, runs[64].run_id]
    ckpt_dir, logdir = layout.checkpoints_dir(slurm_res), slurm_res / "slurm_logs"
    local = Proc(["nice", "-n", "19", sys.executable, "-m", "snakemake",
                  *[local_res / "runs" / rid / "summary.json" for rid in ids], "--profile", "profiles/local",
                  "--cores", "1", "--configfile", *map(str, DEMO), str(over), "--config", f"results={local_res}"],
                 tmp_path / "local.log", cluster, timeout=900)
    remote = snakemake([*[slurm_res / "runs" / rid / "summary.json" for rid in ids], "--profile", profile,
                        "--configfile", *DEMO, over, "--slurm-logdir", logdir, "--config", f"results={slurm_res}"],
                       cluster, tmp_path / "slurm.log", timeout=600)
    wait_for("both jobs to train", lambda: (resume_epoch(ckpt_dir, runs[16]) or 0) >= 3 and job_of(logdir, 64),
             remote, 180)
    j16, j64 = job_of(logdir, 16), job_of(logdir, 64)
    holder = json.loads(layout.lease_file(ckpt_dir, runs[16].run_id).read_text())
    with slurmctld_stopped(cluster):
        stopped = time.monotonic()
        os.kill(holder["pid"], signal.SIGKILL)  # the B = 16 trainer dies: its job fails while SLURM cannot tell
        time.sleep(OUTAGE_S)
        assert remote.poll() is None, remote.output()[-6000:]
    killed_at = resume_epoch(ckpt_dir, runs[16])
    back = time.monotonic()
    wait_for(f"the controller to learn that job {j16} failed",
             lambda: f"SLURM-job '{j16}' failed, SLURM status is: 'FAILED'" in remote.output(), remote, 120)
    noticed = time.monotonic()
    assert remote.wait() == 0, remote.output()[-6000:]
    assert local.wait() == 0, local.output()[-6000:]

    out = remote.output()
    assert len(re.findall(r"SLURM does not answer the status queries of \d job\(s\)", out)) == 1, out[-6000:]
    assert len(re.findall(r"SLURM answers status queries again, after \d+ s", out)) == 1, out[-6000:]
    (j16b,) = [j for j in slurm_job_ids(logdir) if j not in (j16, j64)]  # the retry, submitted after the outage
    assert out.index("SLURM answers status queries again") < out.index(f"submitted with SLURM jobid {j16b}")
    assert settled_state(cluster, j16) == "FAILED"
    assert settled_state(cluster, j64) in ("COMPLETED", "")  # "": squeue forgets a job MinJobAge after its end
    assert settled_state(cluster, j16b) in ("COMPLETED", "")
    (pack_log,) = (slurm_res / "logs" / "train" / "attempts").glob("*_b16_*.log")
    per_job = epochs_per_job(pack_log)
    assert per_job[j16b] == list(range(killed_at + 1, epochs + 1)), per_job  # resumed from the checkpoint
    print(f"slurmctld down {back - stopped:.0f} s; job {j16} (killed at epoch {per_job[j16][-1]}) reported FAILED "
          f"{noticed - back:.0f} s after slurmctld was back; retry {j16b} trained epochs {killed_at + 1}-{epochs}")
    assert_same_runs(slurm_res, local_res, ids)
