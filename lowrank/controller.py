"""What a SLURM controller (the Snakemake that submits this workflow's jobs) says and does around its run: at its
start, the jobs an earlier controller left queued or running; when it stops on Ctrl-C, scancel the jobs it left
(the executor plugin cancels only those in its list, and while it asks SLURM for their status it has taken them all
out of it: snakemake-interface-executor-plugins 9.4, RemoteExecutor._wait_for_jobs; docs/slurm.md, 4a: aborting);
when it stops on another error, name them with the scancel line. workflow/rules/slurm.smk calls it."""

from __future__ import annotations

from collections.abc import Callable

from lowrank import squeue


class Controller:
    """The SLURM jobs of one workflow (its training jobs, run from `workdir`), as one controller sees them."""

    def __init__(self, is_ours: Callable[[str], bool], workdir: str, warn: Callable[[str], None]) -> None:
        self.is_ours, self.workdir, self.warn = is_ours, workdir, warn
        self.earlier: set[str] | None = None  # ids of this workflow's jobs queued when it started; None: unknown

    def jobs(self) -> list[squeue.QueuedJob] | None:
        """This workflow's training jobs in SLURM's queue (any controller's), or None when squeue cannot tell."""
        return squeue.workflow_jobs(self.is_ours, self.workdir)

    def on_start(self) -> None:
        """Before submitting anything: name the jobs an earlier controller left (they keep going when it dies)."""
        jobs = self.jobs()
        if jobs is None:
            self.warn("SLURM: squeue failed, so jobs of an earlier run of this workflow cannot be listed.")
            return
        self.earlier = {j.job for j in jobs}
        if jobs:
            self.warn(squeue.notice(jobs))

    def on_error(self, ctrl_c: bool) -> None:
        """Once stopped: after a Ctrl-C scancel the jobs this controller left queued or running; after any other
        error (Snakemake lets running jobs go on) name them with the scancel line."""
        jobs = self.jobs()
        if jobs is None or self.earlier is None:
            self.warn("SLURM: squeue failed, so the jobs this run may have left queued or running cannot be "
                      "listed: check `squeue --me` and scancel them.")
            return
        left = squeue.left_behind(jobs, self.earlier)
        if not left:
            return
        ids = " ".join(j.job for j in left)
        if not ctrl_c:
            self.warn(f"SLURM: this run stopped on an error; {len(left)} job(s) it submitted are still queued or "
                      f"running and go on (they resume from their checkpoints if stopped): {ids}. To stop them: "
                      f"scancel {ids}")
        elif squeue.cancel(left):
            self.warn(f"SLURM: cancelled {len(left)} job(s) of this run still queued or running: {ids}")
        else:
            self.warn(f"SLURM: scancel failed for job(s) {ids} of this run still queued or running: check "
                      "`squeue --me` and scancel them.")
