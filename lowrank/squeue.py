"""What SLURM's queue says about jobs: is a lease holder's job still running, which jobs of this workflow (of an
earlier controller, or left by this one when it stopped) are still queued or running; and cancelling those left.
Every query degrades to "cannot tell" without a reachable SLURM."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

# squeue states in which a job's processes may still be running (a PENDING job, e.g. requeued, trains nothing)
ACTIVE_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT",
                 "RESIZING"}
FIELDS = "%i|%T|%k|%Z"  # job id, state, comment (the executor plugin writes rule_<rule name>), working directory


@dataclass(frozen=True)
class QueuedJob:
    """A job of this user in SLURM's queue."""

    job: str
    state: str
    rule: str
    workdir: str


def _squeue(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["squeue", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def job_active(job: str) -> bool | None:
    """Is SLURM job `job` still running, per squeue? None when squeue cannot tell (absent, controller down)."""
    r = _squeue("-h", "-j", job, "-o", "%T")
    if r is None or (r.returncode != 0 and "Invalid job id" not in r.stderr):
        return None
    return r.returncode == 0 and r.stdout.strip() in ACTIVE_STATES  # an id squeue forgot ended long ago


def parse(text: str) -> list[QueuedJob]:
    """squeue -h -o FIELDS output → jobs; the rule is the comment without the plugin's `rule_` prefix."""
    jobs = []
    for line in text.splitlines():
        job, state, comment, workdir = line.split("|", 3)
        rule = comment[len("rule_"):] if comment.startswith("rule_") else ""
        jobs.append(QueuedJob(job, state, rule, workdir))
    return jobs


def workflow_jobs(is_ours: Callable[[str], bool], workdir: str, text: str | None = None) -> list[QueuedJob] | None:
    """This user's queued or running jobs submitted from `workdir` whose rule `is_ours`: this workflow's jobs,
    whichever controller submitted them; None when squeue cannot tell. `text`: squeue's output, read from squeue
    when None."""
    if text is None:
        r = _squeue("--me", "-h", "-t", "PENDING,RUNNING,REQUEUED,SUSPENDED,CONFIGURING,COMPLETING", "-o", FIELDS)
        if r is None or r.returncode != 0:
            return None
        text = r.stdout
    here = os.path.realpath(workdir)
    return [j for j in parse(text) if is_ours(j.rule) and os.path.realpath(j.workdir) == here]


def notice(jobs: list[QueuedJob]) -> str:
    """What the user reads before this controller submits anything: the earlier jobs, and how to wait or cancel."""
    ids = " ".join(j.job for j in jobs)
    rows = "\n".join(f"    {j.job:>10}  {j.state:<11} {j.rule}" for j in jobs)
    return (f"SLURM: {len(jobs)} job(s) of an earlier run of this workflow are still queued or running:\n{rows}\n"
            "  This run submits its own job for each pack it finds incomplete. Each such job waits until the earlier\n"
            "  one has finished training (one trainer per run: the lease next to its checkpoint) and then only\n"
            "  writes the outputs, holding its allocation meanwhile. To spare those allocations, stop now (Ctrl-C)\n"
            f"  and either wait for the earlier jobs to end (watch squeue --me -j {ids.replace(' ', ',')}) or\n"
            f"  cancel them (scancel {ids}; they resume from their checkpoints), then start again.")


def left_behind(jobs: list[QueuedJob], earlier: set[str]) -> list[QueuedJob]:
    """Of this workflow's `jobs`, those a stopped controller left to run on: not among the `earlier` ids (queued
    before it started) and not already COMPLETING (being cancelled or ending by themselves)."""
    return [j for j in jobs if j.job not in earlier and j.state != "COMPLETING"]


# what scancel says of a job that ended between the squeue that listed it and the scancel: nothing left to cancel
ENDED = ("Invalid job id specified", "already completing or completed")


def cancel(jobs: list[QueuedJob]) -> bool:
    """scancel `jobs`; False when scancel is missing or fails (e.g. SLURM's controller is unreachable), not when a
    job has ended meanwhile."""
    try:
        r = subprocess.run(["scancel", *(j.job for j in jobs)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    return r.returncode == 0 or (bool(errors) and all(any(e in line for e in ENDED) for line in errors))
