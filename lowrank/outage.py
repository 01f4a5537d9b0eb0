"""The SLURM controller keeps its jobs through a scheduler outage. When every status query of a round fails
(slurmctld down or restarting, sacct failing while slurmdbd is down), snakemake-executor-plugin-slurm 2.8's
check_active_jobs neither reports nor yields the jobs it was asked about, and snakemake-interface-executor-plugins
9.4's RemoteExecutor._wait_for_jobs keeps only the yielded ones: the jobs are never asked about again and Snakemake
waits for them forever (upstream issues #157, #207). keep_jobs wraps check_active_jobs so that every job a round
neither reported (report_job_success, report_job_error) nor yielded is yielded back, asked about at the next poll,
until SLURM answers with its real state; it says when SLURM stops answering, every 10 minutes while it does not,
and when it answers again. workflow/rules/slurm.smk installs it on the plugin's Executor; pyproject.toml pins both
packages to the versions it was tested against (tests/test_outage.py, tests/test_slurm.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

REMIND_S = 600  # while SLURM does not answer, say so again this often


class StatusRounds:
    """The status rounds of one controller: which jobs of the current round SLURM has answered for, and since when
    it has not answered at all."""

    def __init__(self, warn: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.warn, self.clock = warn, clock
        self.waiting: dict[int, SubmittedJobInfo] = {}  # the current round's jobs not yet reported or yielded, by id
        self.heard = False  # has the current round reported or yielded any job?
        self.silent_since: float | None = None  # when a round first got no answer; None while SLURM answers
        self.warned_at = 0.0

    def start(self, jobs: list[SubmittedJobInfo]) -> None:
        """A round begins: the plugin is asked about `jobs`."""
        self.waiting, self.heard = {id(job): job for job in jobs}, False

    def answered(self, job: SubmittedJobInfo) -> None:
        """The plugin reported or yielded `job` (a report outside the round, e.g. a failed sbatch, is not one)."""
        if self.waiting.pop(id(job), None) is None:
            return
        self.heard = True
        if self.silent_since is not None:
            self.warn(f"SLURM answers status queries again, after {self.clock() - self.silent_since:.0f} s; "
                      "the jobs' states that follow are SLURM's.")
            self.silent_since = None

    def finish(self) -> list[SubmittedJobInfo]:
        """The round is over: the jobs the plugin dropped (to be yielded back); say so when SLURM answered for none
        of them: when it just stopped answering, then every REMIND_S."""
        dropped, self.waiting = list(self.waiting.values()), {}
        now = self.clock()
        if not dropped or self.heard:
            return dropped
        if self.silent_since is None:
            self.silent_since = self.warned_at = now
            self.warn(f"SLURM does not answer the status queries of {len(dropped)} job(s) (squeue/sacct failed: "
                      "slurmctld or slurmdbd down?). They are kept and asked about again at every poll; nothing is "
                      "resubmitted or cancelled meanwhile, and running jobs go on.")
        elif now - self.warned_at >= REMIND_S:
            self.warned_at = now
            self.warn(f"SLURM has not answered status queries for {(now - self.silent_since) / 60:.0f} min; still "
                      f"asking about {len(dropped)} job(s).")
        return dropped


def keep_jobs(executor: type, warn: Callable[[str], None]) -> None:
    """Wrap `executor`'s check_active_jobs (and its reports) so that a round never drops a job; once per class."""
    if "status_rounds" in vars(executor):  # Snakemake may parse the workflow several times in one process
        return
    rounds = StatusRounds(warn)
    check, success, error = executor.check_active_jobs, executor.report_job_success, executor.report_job_error

    async def check_active_jobs(self, active_jobs: list[SubmittedJobInfo]) -> AsyncIterator[SubmittedJobInfo]:
        rounds.start(active_jobs)
        async for job in check(self, active_jobs):
            rounds.answered(job)
            yield job
        for job in rounds.finish():
            yield job

    def report_job_success(self, job_info: SubmittedJobInfo) -> None:
        rounds.answered(job_info)
        success(self, job_info)

    def report_job_error(self, job_info: SubmittedJobInfo, *args, **kwargs) -> None:
        rounds.answered(job_info)
        error(self, job_info, *args, **kwargs)

    executor.check_active_jobs, executor.report_job_success = check_active_jobs, report_job_success
    executor.report_job_error, executor.status_rounds = report_job_error, rounds
