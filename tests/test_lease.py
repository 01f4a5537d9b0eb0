"""lowrank.lease: create-exclusive leases, a live holder blocks, a stale one is taken over, release and renewal."""

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import asdict

import pytest

from lowrank import layout, lease
from lowrank.lease import Holder

HOST = lease.socket.gethostname()


def put(path, age: float = 0.0, **fields) -> Holder:
    """Write a lease for a (pretend) other holder, its heartbeat `age` seconds ago."""
    held = Holder(**{"job": "123", "host": "node7", "pid": 4242, "token": "other", "heartbeat": time.time() - age,
                     **fields})
    path.write_text(json.dumps(asdict(held)))
    return held


def acquire_in_thread(path, **kw):
    """acquire() in a thread (a fast poll); returns (thread, box with the lease once acquired, log lines)."""
    box, lines = {}, []
    kw = {"stale_after": 60, "poll": 0.05, "log": lines.append, **kw}
    t = threading.Thread(target=lambda: box.setdefault("lease", lease.acquire(path, **kw)), daemon=True)
    t.start()
    return t, box, lines


def test_acquire_creates_the_lease_exclusively(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    path = layout.lease_file(tmp_path / "ckpt", "run")
    held = lease.acquire(path, stale_after=60)
    on_disk = json.loads(path.read_text())
    assert on_disk["job"] == "77" and on_disk["pid"] == os.getpid() and on_disk["host"] == HOST
    assert on_disk["token"] == held.holder.token
    assert not lease._create(path, lease.this_process(time.time()))  # a second create fails: O_EXCL
    held.release()
    assert not path.exists()


def test_live_lease_blocks_until_released(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = tmp_path / "run.lease"
    put(path)
    t, box, lines = acquire_in_thread(path, job_active=lambda job: True)
    time.sleep(0.5)
    assert t.is_alive() and "lease" not in box
    assert lines == ["lease run.lease: held by SLURM job 123 (pid 4242 on node7), heartbeat 0 s ago; "
                     "waiting for it to finish"]
    path.unlink()  # the holder finishes and releases it
    t.join(5)
    assert not t.is_alive() and box["lease"].holder.pid == os.getpid()
    assert lease.read(path) == box["lease"].holder


@pytest.mark.parametrize("fields, active, stale_after, reason", [
    ({}, False, 60, "SLURM job 123 is no longer running"),
    ({"age": 100}, True, 50, r"no heartbeat for 10\d s \(more than 50 s\)"),
    ({"job": "", "host": HOST, "pid": None}, None, 60, "process {pid} on " + re.escape(HOST) + " is gone"),
    ({"job": "555"}, True, 60, r"SLURM job 555 restarted \(requeued\): its earlier start is gone"),
])
def test_stale_lease_is_taken_over_and_logged(tmp_path, monkeypatch, fields, active, stale_after, reason):
    monkeypatch.setenv("SLURM_JOB_ID", "555")
    if "pid" in fields:  # a process that has exited
        p = subprocess.Popen(["true"])
        p.wait()
        fields = {**fields, "pid": p.pid}
        reason = reason.format(pid=p.pid)
    path = tmp_path / "run.lease"
    held = put(path, **fields)
    lines = []
    got = lease.acquire(path, stale_after=stale_after, poll=0.05, log=lines.append, job_active=lambda job: active)
    assert lease.read(path) == got.holder != held
    assert len(lines) == 1
    assert re.fullmatch(re.escape(f"lease run.lease: took over from {held.describe()}: ") + reason, lines[0]), lines


@pytest.mark.parametrize("fields, active", [
    ({"age": 40}, True),                          # heartbeat younger than stale_after, SLURM says running
    ({"job": "", "host": HOST, "pid": os.getpid()}, None),  # a live process on this host
    ({"job": "", "host": "elsewhere", "pid": 1}, None),      # another host: only the heartbeat can tell
    ({}, None),                                    # squeue cannot tell: trust the fresh heartbeat
])
def test_live_lease_is_not_taken_over(tmp_path, monkeypatch, fields, active):
    monkeypatch.setenv("SLURM_JOB_ID", "555")
    held = put(tmp_path / "run.lease", **fields)
    me = lease.this_process(time.time())
    assert lease.stale_reason(held, me, time.time(), 50, lambda job: active) is None


def test_concurrent_takeover_has_one_winner(tmp_path):
    path = tmp_path / "run.lease"
    stale = put(path, age=1e6)
    a, b = (lease.this_process(time.time()) for _ in range(2))
    assert lease._take_over(path, stale, a, 60)
    assert not lease._take_over(path, stale, b, 60)  # b judged the same stale holder: it is gone now
    assert lease.read(path) == a
    (tmp_path / "run.lease.takeover").write_text("")  # a guard left by a job that died mid-takeover ...
    assert not lease._take_over(path, a, b, 60)      # ... blocks while fresh
    os.utime(tmp_path / "run.lease.takeover", (0, 0))
    assert not lease._take_over(path, a, b, 60) and not (tmp_path / "run.lease.takeover").exists()  # old: removed
    assert lease._take_over(path, a, b, 60) and lease.read(path) == b


def test_an_unreadable_lease_is_taken_over_at_once_saying_so(tmp_path):  # issue 25, case 4: waited stale_after
    path = tmp_path / "run.lease"
    path.write_text("")  # left by a create that crashed (disk full) before leases were created whole
    lines = []
    got = lease.acquire(path, stale_after=3600, poll=0.05, log=lines.append)
    assert lease.read(path) == got.holder
    assert lines == ["lease run.lease: took over an unreadable lease (empty or damaged: whoever created it holds "
                     "nothing)"]


def test_a_lease_is_never_seen_empty_even_when_the_disk_fills_during_its_create(tmp_path, monkeypatch):
    path = tmp_path / "run.lease"

    def disk_full(self, text):
        self.touch()  # the file is created, its content never written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lease.Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        lease.acquire(path, stale_after=3600)
    assert not path.exists() and list(tmp_path.iterdir()) == []  # no lease, no temporary file left


def test_a_requeued_job_waits_for_its_earlier_trainer_still_alive_on_this_host(monkeypatch):  # issue 25, case 5
    monkeypatch.setenv("SLURM_JOB_ID", "23")
    me = lease.this_process(time.time())
    alive = Holder("23", HOST, os.getppid(), "earlier", time.time())  # the orphaned trainer of this allocation
    assert lease.stale_reason(alive, me, time.time(), 3600) is None
    p = subprocess.Popen(["true"])
    p.wait()
    gone = Holder("23", HOST, p.pid, "earlier", time.time())
    assert (lease.stale_reason(gone, me, time.time(), 3600)
            == "SLURM job 23 restarted (requeued): its earlier start is gone")
    elsewhere = Holder("23", "node7", os.getppid(), "earlier", time.time())  # a requeue onto another node
    assert lease.stale_reason(elsewhere, me, time.time(), 3600).startswith("SLURM job 23 restarted")


def test_renew_refreshes_heartbeat_and_detects_a_takeover(tmp_path):
    path = tmp_path / "run.lease"
    held = lease.acquire(path, stale_after=60)
    before = held.holder.heartbeat
    time.sleep(0.01)
    held.renew()
    assert lease.read(path).heartbeat > before and lease.read(path).token == held.holder.token
    assert not list(tmp_path.glob("*.tmp"))
    thief = lease.this_process(time.time())
    assert lease._take_over(path, lease.read(path), thief, 60)
    with pytest.raises(lease.LeaseLost, match="was taken over by"):
        held.renew()
    held.release()  # not its lease any more: left alone
    assert lease.read(path) == thief


def test_holding_acquires_all_and_releases_on_error(tmp_path):
    paths = [tmp_path / f"{name}.lease" for name in ("b", "a", "c")]
    with pytest.raises(KeyError):
        with lease.holding(paths, stale_after=60) as leases:
            assert [lz.path.name for lz in leases] == ["a.lease", "b.lease", "c.lease"]
            assert all(p.exists() for p in paths)
            raise KeyError("crash")
    assert not any(p.exists() for p in paths)


def test_holding_renews_held_leases_while_waiting(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    first, second = tmp_path / "a.lease", tmp_path / "b.lease"
    put(second)
    beats = []

    def hold():
        with lease.holding([second, first], stale_after=60, poll=0.05, log=lambda m: None,
                           job_active=lambda job: True):
            pass

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    for _ in range(5):
        time.sleep(0.1)
        beats.append(lease.read(first).heartbeat)
    assert beats == sorted(beats) and beats[-1] > beats[0]  # a.lease held and renewed while b.lease is busy
    second.unlink()
    t.join(5)
    assert not t.is_alive() and not first.exists() and not second.exists()
