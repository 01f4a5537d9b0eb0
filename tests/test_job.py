"""lowrank.engine.job, the one entry the command line and the Snakemake job train through: one trainer per run (the
command line takes the leases too), the same logs from either, each attempt in the rule's log and the pack's
history, the defaults stated once."""

from __future__ import annotations

import errno
import functools
import inspect
import json
import os
import re
import runpy
import socket
import sys
import threading
import time
import types
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from lowrank import layout, lease, logs, status
from lowrank.config import ConfigError
from lowrank.engine import cli
from lowrank.engine.job import DEFAULTS, attempt_log, check_writable, train_pack
from lowrank.train import main
from conftest import outputs
from test_train import TINY, tiny_config

ROOT = Path(__file__).resolve().parents[1]
HEADER = r"=== attempt 2: SLURM job - \(restart 0\) on {host}, pid {pid}, \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ==="


def test_the_command_line_waits_for_the_lease_of_a_run_another_job_trains(tmp_path, monkeypatch, capsys):
    """A run's lease held by a live trainer (this host, a live pid, another acquisition) keeps `python -m
    lowrank.train` from training it: the command says whom it waits for, and trains once the lease is released."""
    monkeypatch.setattr(lease, "holding", functools.partial(lease.holding, poll=0.05))
    out, cfg = tmp_path / "run", tiny_config()
    held = layout.lease_file(layout.default_checkpoints_dir(out), cfg.run_id)
    held.parent.mkdir(parents=True)
    other = lease.Holder("", socket.gethostname(), os.getpid(), "another-job", time.time())
    held.write_text(json.dumps(asdict(other)))
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("code", main([*TINY, "--out", str(out)])), daemon=True)
    t.start()
    time.sleep(1.0)
    assert t.is_alive() and not (out / "summary.json").exists()
    held.unlink()  # the other trainer finishes
    t.join(timeout=60)
    assert box == {"code": 0} and (out / "summary.json").exists() and not held.exists()
    first, *epochs = capsys.readouterr().err.splitlines()
    assert re.fullmatch(re.escape(f"lease {held.name}: held by {other.describe()}, heartbeat ") + r"\d s ago; "
                        "waiting for it to finish", first), first
    assert len(epochs) == 4 and all(" epoch " in line for line in epochs)


def snakemake_job(cfgs, tmp_path: Path) -> types.SimpleNamespace:
    """What Snakemake hands workflow/scripts/train_pack.py for a pack of `cfgs` (attempt 2, config.yaml's settings)."""
    runs = [{"config": c.to_dict(), "out": str(tmp_path / "job" / c.run_id)} for c in cfgs]
    params = types.SimpleNamespace(runs=runs, ckpt_dir=str(tmp_path / "ckpt"), data_root="data",
                                   attempts_log=str(tmp_path / "logs" / "attempts" / "pack.log"),
                                   live_dir=str(tmp_path / "live"))
    return types.SimpleNamespace(params=params, log=[str(tmp_path / "logs" / "pack.log")], threads=1,
                                 resources=types.SimpleNamespace(attempt=2),
                                 config=yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_the_snakemake_job_trains_a_run_as_the_command_line_does(tmp_path, monkeypatch):
    """The Snakemake job's script and `python -m lowrank.train` write the same logs for one run; the job's attempt
    goes to the rule's log (a header, 4 epochs, the status line) and, each line tagged with its pid, to the
    pack's history; no lease is left behind, nor the partial logs it wrote while training."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    cfg = tiny_config()
    assert main([*TINY, "--out", str(tmp_path / "cli")]) == 0
    job = snakemake_job([cfg], tmp_path)
    runpy.run_path(str(ROOT / "workflow" / "scripts" / "train_pack.py"), init_globals={"snakemake": job})
    assert outputs(tmp_path / "job" / cfg.run_id) == outputs(tmp_path / "cli")
    lines = Path(job.log[0]).read_text().splitlines()
    assert len(lines) == 6 and re.fullmatch(HEADER.format(host=re.escape(socket.gethostname()), pid=os.getpid()),
                                            lines[0]), lines[0]
    assert [line.split("]")[1].split()[:2] for line in lines[1:5]] == [["epoch", f"{e}/4"] for e in range(1, 5)]
    assert lines[5] == f"finished: {cfg.run_id} -> {tmp_path / 'job' / cfg.run_id}"
    history = Path(job.params.attempts_log).read_text().splitlines()
    assert history == [f"pid {os.getpid()} | {line}" for line in lines]
    assert sorted((tmp_path / "ckpt").iterdir()) == [layout.pace_file(tmp_path / "ckpt", cfg.run_id),
                                                     layout.checkpoint_file(tmp_path / "ckpt", cfg.run_id)]  # no lease
    assert (tmp_path / "live").is_dir() and list((tmp_path / "live").iterdir()) == []


def test_a_crash_is_logged_with_its_traceback_and_goes_on(tmp_path, monkeypatch):
    """A job that crashes (not a divergence) logs its traceback to the rule's log and the history, tagged with its
    SLURM job, and raises on; stderr goes to the rule's log meanwhile and is put back after."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    log, history = tmp_path / "pack.log", tmp_path / "attempts" / "pack.log"
    before = sys.stderr
    with pytest.raises(ZeroDivisionError):
        with attempt_log(log, history, 3) as say:
            say("epoch 1")
            print("a warning", file=sys.stderr)
            1 / 0
    assert sys.stderr is before
    lines = log.read_text().splitlines()
    assert lines[0].startswith("=== attempt 3: SLURM job 77 (restart 1) on ")
    assert lines[1:3] == ["epoch 1", "a warning"] and lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: division by zero"
    tagged, tag = history.read_text().splitlines(), f"job 77 pid {os.getpid()} | "
    assert tagged[0] == f"{tag}{lines[0]}" and tagged[1] == f"{tag}epoch 1" and len(tagged) == len(lines) - 1
    assert tagged[-1] == f"{tag}ZeroDivisionError: division by zero"  # stderr goes to the rule's log only


def lost_lease(tmp_path: Path) -> lease.LeaseLost:
    """The error of a trainer whose lease another job took over (as an orphan of a killed controller meets)."""
    held = lease.acquire(tmp_path / "run.lease", stale_after=60)
    lease._replace(held.path, lease.Holder("23", "node1", 4242, "another", time.time()))
    with pytest.raises(lease.LeaseLost) as err:
        held.renew()
    return err.value


def disk_full(tmp_path: Path) -> OSError:
    """A full disk met while writing a log file (the write names no file: lowrank.logs names it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logs.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(OSError) as err:
            logs.atomic_write_bytes(tmp_path / "evals.csv", b"epoch\n")
    return err.value


def read_only(tmp_path: Path) -> ConfigError:
    """A checkpoint folder on a read-only filesystem, refused before any work (lowrank.engine.job.check_writable)."""
    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "mkdir", refuse)
        with pytest.raises(ConfigError) as err:
            check_writable("checkpoint directory", tmp_path / "ckpt")
    return err.value


@pytest.mark.parametrize("error, sentence", [
    (lost_lease, "error: lease {tmp}/run.lease was taken over by SLURM job 23 (pid 4242 on node1), which trains its "
                 "run now: this job stops without writing it (nothing to do: a controller killed while its job "
                 "trained leaves such a job behind)."),
    (disk_full, "error: {tmp}/evals.csv: No space left on device; no space is left on its filesystem: free some "
                "there, then run it again (finished runs and checkpoints are kept)."),
    (read_only, "error: checkpoint directory {tmp}/ckpt is not a writable directory: Read-only file system; make it "
                "writable or choose another (`results` in the config; --out or --ckpt-dir on the command line)."),
])
def test_an_error_the_user_acts_on_ends_the_attempt_in_one_sentence(tmp_path, monkeypatch, error, sentence):
    """Issue 25, cases 5 and 8: a lease taken over (the orphan trainer of a killed controller), a full disk, a
    read-only checkpoint folder ended the attempt with a raw traceback. Now one sentence ends the rule's log and the
    history (which `python -m lowrank.status` shows for the pack), exit status 1. The two attempts of one SLURM job
    (its controller killed, the job restarted in its allocation) are told apart by their pid."""
    monkeypatch.setenv("SLURM_JOB_ID", "23")
    log, history, err = tmp_path / "pack.log", tmp_path / "attempts" / "pack.log", error(tmp_path)
    for pid, attempt in ((1111, 1), (2222, 2)):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        with pytest.raises(SystemExit) as stop:
            with attempt_log(log, history, attempt) as say:
                say(f"epoch {attempt}")
                raise err
        assert stop.value.code == 1
    text, expected = log.read_text(), sentence.format(tmp=tmp_path)
    assert "Traceback" not in text and text.splitlines()[-1] == expected
    attempts, header, last_error = status.last_attempt(history)
    assert (attempts, header["tag"], header["pid"], last_error) == (2, "job 23 pid 2222", "2222", expected)
    assert history.read_text().count(f"job 23 pid 1111 | {expected}\n") == 1


def test_the_defaults_are_stated_once():
    """The command line's defaults and train_pack's are lowrank.engine.job.DEFAULTS: checkpoints every 10 epochs,
    exact kernels, eager steps, data in data/, a lease stale after an hour without a heartbeat."""
    assert (DEFAULTS.checkpoint_every, DEFAULTS.kernels, DEFAULTS.step, DEFAULTS.data_root, DEFAULTS.stale_after) \
        == (10, "exact", "eager", Path("data"), 3600.0)
    args = cli.parse_args(["--spec", "x.json"])
    assert (args.checkpoint_every, args.kernels, args.step, args.data_root, args.lease_stale_after) \
        == (10, "exact", "eager", Path("data"), 3600.0)
    defaults = {name: p.default for name, p in inspect.signature(train_pack).parameters.items()}
    assert {k: defaults[k] for k in asdict(DEFAULTS)} == asdict(DEFAULTS)
