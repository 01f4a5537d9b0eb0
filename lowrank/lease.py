"""One trainer per run: a lease file next to the run's checkpoint (layout.lease_file), held by the job that trains it.

A lease is created by hard-linking a fully written temporary file to its name, and rewritten only by writing a
temporary file and renaming it over the lease: both are atomic on local filesystems and on the NFS (v3+) and Lustre
filesystems clusters share (flock is not relied on), so a lease is never seen empty or half-written. It names its
holder (SLURM job id, host, pid) and a heartbeat the holder renews every epoch. A job that finds a live lease waits
until the holder releases it; a stale lease (the holder's SLURM job no longer running, its process gone from this
host, or no heartbeat for `stale_after` seconds) is taken over, and the takeover is logged.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from lowrank import errors, squeue


class LeaseLost(errors.UserError, RuntimeError):
    """Another job took this job's lease over (it judged it stale): this job must stop training."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: one acquisition by one process (token tells two acquisitions by the same job apart)."""

    job: str
    host: str
    pid: int
    token: str
    heartbeat: float

    def describe(self) -> str:
        """The holder in words, for the logs."""
        job = f"SLURM job {self.job}" if self.job else "a job outside SLURM"
        return f"{job} (pid {self.pid} on {self.host})"


def this_process(now: float) -> Holder:
    """A new holder for this process: SLURM_JOB_ID (empty outside SLURM), host name, pid and a fresh token."""
    return Holder(os.environ.get("SLURM_JOB_ID", ""), socket.gethostname(), os.getpid(), uuid.uuid4().hex, now)


def read(path: Path) -> Holder | None:
    """The lease's holder; None when there is no lease or it is being created (empty or partly written)."""
    try:
        return Holder(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _write(path: Path, holder: Holder) -> None:
    """Write `holder` to the file `path`; a failure (a full disk) names the file."""
    try:
        path.write_text(json.dumps(asdict(holder)))
    except OSError as err:
        raise errors.naming(path, err) from err


def _create(path: Path, holder: Holder) -> bool:
    """Create the lease for `holder` unless a lease exists: written whole to a temporary file, then hard-linked to
    the lease's name (atomic, fails if it exists), so a lease is never seen empty or half-written, even when its
    creator dies or the disk fills up meanwhile."""
    tmp = path.with_name(f"{path.name}.{holder.token}.tmp")
    try:
        _write(tmp, holder)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _replace(path: Path, holder: Holder) -> None:
    """Write `holder` to a temporary file next to the lease and rename it over the lease (atomic)."""
    tmp = path.with_name(f"{path.name}.{holder.token}.tmp")
    _write(tmp, holder)
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """Does process `pid` exist on this host?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(held: Holder, me: Holder, now: float, stale_after: float,
                 job_active: Callable[[str], bool | None] = squeue.job_active) -> str | None:
    """Why `held`'s lease protects no trainer any more, seen by `me`; None while its holder may be training."""
    if held.job and held.job == me.job:
        if held.host == me.host and held.pid != me.pid and pid_alive(held.pid):
            return None  # an earlier trainer of this very allocation lives on (its controller was killed)
        return f"SLURM job {held.job} restarted (requeued): its earlier start is gone"
    age = now - held.heartbeat
    if age > stale_after:
        return f"no heartbeat for {age:.0f} s (more than {stale_after:.0f} s)"
    if held.job and job_active(held.job) is False:
        return f"SLURM job {held.job} is no longer running"
    if not held.job and held.host == me.host and not pid_alive(held.pid):
        return f"process {held.pid} on {held.host} is gone"
    return None


class Lease:
    """A lease this process holds: renew() every epoch, release() when done."""

    def __init__(self, path: Path, holder: Holder):
        self.path, self.holder = path, holder

    def renew(self) -> None:
        """Refresh the heartbeat; raise LeaseLost when another job has taken the lease over."""
        held = read(self.path)
        if held is None:
            raise LeaseLost(f"lease {self.path} was removed while this job held it: this job stops; run it again to "
                            f"resume the run from its checkpoint.")
        if held.token != self.holder.token:
            raise LeaseLost(f"lease {self.path} was taken over by {held.describe()}, which trains its run now: this "
                            f"job stops without writing it (nothing to do: a controller killed while its job trained "
                            f"leaves such a job behind).")
        self.holder = replace(self.holder, heartbeat=time.time())
        _replace(self.path, self.holder)

    def release(self) -> None:
        """Remove the lease if this process still holds it."""
        held = read(self.path)
        if held is not None and held.token == self.holder.token:
            self.path.unlink(missing_ok=True)


def _take_over(path: Path, stale: Holder | None, me: Holder, stale_after: float) -> bool:
    """Replace the stale lease of `stale` (None: an unreadable one) by `me`; False when another job got there first
    (or the holder renewed).

    A create-exclusive guard file makes the check and the replace one step among jobs taking over at once; a guard
    older than `stale_after` (its job died between the two) is removed."""
    guard = path.with_name(path.name + ".takeover")
    if not _create(guard, me):
        try:
            if time.time() - guard.stat().st_mtime > stale_after:
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        if read(path) != stale:
            return False
        _replace(path, me)
        return True
    finally:
        guard.unlink(missing_ok=True)


def acquire(path: Path, *, stale_after: float, poll: float = 5.0, log: Callable[[str], None] = print,
            job_active: Callable[[str], bool | None] = squeue.job_active,
            while_waiting: Callable[[], None] = lambda: None) -> Lease:
    """Hold the lease at `path`: create it, or wait while a live holder has it (calling while_waiting every
    poll), or take a stale one over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    waiting_for = None
    while True:
        now = time.time()
        me = this_process(now)
        if _create(path, me):
            return Lease(path, me)
        held = read(path)
        if held is None:  # released just now, or damaged: leases are created whole, so no creator is writing it
            if not path.exists():
                continue
            if _take_over(path, None, me, stale_after):
                log(f"lease {path.name}: took over an unreadable lease (empty or damaged: whoever created it "
                    f"holds nothing)")
                return Lease(path, me)
            time.sleep(min(poll, 1.0))
            continue
        reason = stale_reason(held, me, now, stale_after, job_active)
        if reason is not None:
            if _take_over(path, held, me, stale_after):
                log(f"lease {path.name}: took over from {held.describe()}: {reason}")
                return Lease(path, me)
            time.sleep(min(poll, 1.0))  # another job is taking it over: see who got it
            continue
        if waiting_for != held.token:
            log(f"lease {path.name}: held by {held.describe()}, heartbeat {now - held.heartbeat:.0f} s ago; "
                f"waiting for it to finish")
            waiting_for = held.token
        while_waiting()
        time.sleep(poll)


@contextmanager
def holding(paths: list[Path], *, stale_after: float, poll: float = 5.0, log: Callable[[str], None] = print,
            job_active: Callable[[str], bool | None] = squeue.job_active) -> Iterator[list[Lease]]:
    """Hold every lease of `paths` (acquired in sorted order, so two jobs never wait on each other; those held are
    renewed while waiting for the next), release them at exit."""
    leases: list[Lease] = []

    def renew_held() -> None:
        for lease in leases:
            lease.renew()

    try:
        for path in sorted(paths):
            leases.append(acquire(path, stale_after=stale_after, poll=poll, log=log, job_active=job_active,
                                  while_waiting=renew_held))
        yield leases
    finally:
        for lease in leases:
            lease.release()
