"""lowrank.outage on the pinned executor plugin's own check_active_jobs (snakemake-executor-plugin-slurm 2.8), its
status queries faked: rounds whose queries all fail keep every job (the plugin alone drops them, and Snakemake then
waits forever), and the first round SLURM answers reports each job's real state; what the controller says meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import pytest
import snakemake_executor_plugin_slurm as slurm
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from lowrank import outage


class Job:
    """A Snakemake job as the executor sees it: only what an error report asks of it."""

    def __init__(self, name: str) -> None:
        self.name, self.errors = name, []

    def log_error(self, msg: str | None = None, **kwargs) -> None:
        self.errors.append(msg)


def executor(answers: list[dict | None], monkeypatch: pytest.MonkeyPatch) -> tuple[slurm.Executor, list[str], dict]:
    """A plugin Executor (a subclass, so that keep_jobs patches only it) built without SLURM, whose status
    queries (squeue) answer from `answers` in turn (None: the query fails); its warnings and the scheduler's
    finish/error callbacks are recorded."""

    class Executor(slurm.Executor):
        pass

    warnings, done = [], {"finished": [], "failed": []}
    queries = iter(answers)

    async def query_job_status(command: str, logger) -> tuple[dict | None, float | None]:
        status = next(queries)
        return (None, None) if status is None else (status, 0.01)

    monkeypatch.setattr(slurm, "query_job_status", query_job_status)
    monkeypatch.setattr(slurm, "get_min_job_age", lambda: 300)
    monkeypatch.setattr(slurm, "is_query_tool_available", lambda tool: False)  # no sacct: squeue it is
    ex = object.__new__(Executor)
    settings = SimpleNamespace(status_attempts=2, init_seconds_before_status_checks=40, status_command="squeue",
                               keep_successful_logs=True, requeue=False)
    scheduler = SimpleNamespace(finish_callback=lambda job: done["finished"].append(job.name),
                                error_callback=lambda job: done["failed"].append(job.name))
    ex.workflow = SimpleNamespace(executor_settings=settings, scheduler=scheduler,
                                  remote_execution_settings=SimpleNamespace(seconds_between_status_checks=10))
    ex.logger = SimpleNamespace(debug=lambda msg: None, info=lambda msg: None, warning=warnings.append)
    ex.status_rate_limiter, ex.run_uuid = contextlib.nullcontext(), "run"
    ex._next_seconds_between_status_checks, ex._preemption_warning, ex._failed_nodes = None, False, set()
    ex._status_query_calls = ex._status_query_failures = 0
    ex._status_query_total_seconds, ex._status_query_max_seconds = 0.0, 0.0
    ex._status_query_min_seconds, ex._status_query_cycle_rows = None, []
    outage.keep_jobs(Executor, warnings.append)
    outage.keep_jobs(Executor, warnings.append)  # the Snakefile may be read twice: wrapped once
    return ex, warnings, done


def poll(ex: slurm.Executor, jobs: list[SubmittedJobInfo]) -> list[SubmittedJobInfo]:
    """One status round as snakemake-interface-executor-plugins 9.4 runs it: the jobs yielded stay active."""

    async def run() -> list[SubmittedJobInfo]:
        return [job async for job in ex.check_active_jobs(list(jobs))]

    return asyncio.run(run())


def test_rounds_without_answer_keep_the_jobs_until_slurm_answers(monkeypatch, tmp_path):
    a, b = (SubmittedJobInfo(Job(name), jobid, {"slurm_logfile": tmp_path / f"{jobid}.log"})
            for name, jobid in (("a", "11"), ("b", "12")))
    # a running, b not yet listed (SLURM answers); then two rounds of 2 failed queries each (slurmctld down);
    # then SLURM answers again: a ran to its end, b failed
    ex, warnings, done = executor([{"11": "RUNNING"}, *[None] * 4, {"11": "COMPLETED", "12": "FAILED"}], monkeypatch)
    assert poll(ex, [a, b]) == [a, b] and warnings == []
    assert poll(ex, [a, b]) == [a, b]  # the plugin alone yields nothing here: Snakemake would never ask again
    assert poll(ex, [a, b]) == [a, b]
    assert done == {"finished": [], "failed": []}  # nothing judged while SLURM cannot tell
    assert len(warnings) == 1 and warnings[0].startswith("SLURM does not answer the status queries of 2 job(s)")
    assert poll(ex, [a, b]) == []
    assert done == {"finished": ["a"], "failed": ["b"]}  # the states SLURM reports once it answers
    assert "SLURM status is: 'FAILED'" in b.job.errors[0]
    assert len(warnings) == 2 and warnings[1].startswith("SLURM answers status queries again, after ")


def test_silence_is_reported_at_its_start_every_10_minutes_and_at_its_end():
    now, warnings = [0.0], []
    rounds = outage.StatusRounds(warnings.append, clock=lambda: now[0])
    jobs = [SubmittedJobInfo(Job("a"), "11"), SubmittedJobInfo(Job("b"), "12")]
    for t in (0, 300, 599, 600, 900, 1250):
        now[0] = t
        rounds.start(jobs)
        assert rounds.finish() == jobs
    rounds.answered(SubmittedJobInfo(Job("c"), "13"))  # a failed sbatch reported meanwhile: no answer of SLURM's
    now[0] = 1300
    rounds.start(jobs)
    rounds.answered(jobs[0])
    assert rounds.finish() == [jobs[1]]
    assert [w.split(";")[0].split(" (")[0] for w in warnings] == [
        "SLURM does not answer the status queries of 2 job(s)",
        "SLURM has not answered status queries for 10 min",
        "SLURM has not answered status queries for 21 min",
        "SLURM answers status queries again, after 1300 s"]
