"""lowrank.squeue against a fake `squeue`/`scancel` on PATH: job liveness, this workflow's jobs, cancelling those a
stopped controller left."""

import pytest

from lowrank import squeue


def fake_squeue(tmp_path, monkeypatch, script: str | None) -> None:
    """PATH holds only a `squeue` that runs `script` (none at all when None)."""
    if script is not None:
        (tmp_path / "squeue").write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.mark.parametrize("script, expect", [
    ("echo RUNNING", True),
    ("echo PENDING", False),
    ("echo TIMEOUT", False),
    ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", False),
    ("echo 'Unable to contact slurm controller' >&2; exit 1", None),
    (None, None),  # no squeue at all
])
def test_job_active_reads_squeue(tmp_path, monkeypatch, script, expect):
    fake_squeue(tmp_path, monkeypatch, script)
    assert squeue.job_active("123") is expect


QUEUE = """\
101|RUNNING|rule_train_res_bn_synthetic_b4_a660f6ce|/work/flow
102|PENDING|rule_train_res_bn_synthetic_b8_6f075bab|/work/flow
103|RUNNING|rule_train_res_bn_synthetic_b4_a660f6ce|/elsewhere
104|RUNNING|rule_other_rule|/work/flow
105|RUNNING||/work/flow
"""


def test_workflow_jobs_match_rule_and_directory():
    rules = {"train_res_bn_synthetic_b4_a660f6ce", "train_res_bn_synthetic_b8_6f075bab"}
    jobs = squeue.workflow_jobs(rules, "/work/flow", QUEUE)
    assert [(j.job, j.state, j.rule) for j in jobs] == [
        ("101", "RUNNING", "train_res_bn_synthetic_b4_a660f6ce"),
        ("102", "PENDING", "train_res_bn_synthetic_b8_6f075bab")]
    assert squeue.workflow_jobs(rules, "/work/other", QUEUE) == []
    assert squeue.workflow_jobs({"train_x"}, "/work/flow", QUEUE) == []


def test_workflow_jobs_asks_squeue_for_this_users_active_jobs(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, f'echo "$@" > {tmp_path}/args; echo "7|RUNNING|rule_train_a|{tmp_path}"')
    (job,) = squeue.workflow_jobs({"train_a"}, str(tmp_path))
    assert job.job == "7"
    assert (tmp_path / "args").read_text().split()[:2] == ["--me", "-h"]
    fake_squeue(tmp_path, monkeypatch, "exit 1")
    assert squeue.workflow_jobs({"train_a"}, str(tmp_path)) is None


def test_notice_lists_the_jobs_and_how_to_wait_or_cancel():
    text = squeue.notice(squeue.workflow_jobs({"train_res_bn_synthetic_b4_a660f6ce",
                                              "train_res_bn_synthetic_b8_6f075bab"}, "/work/flow", QUEUE))
    assert text.startswith("SLURM: 2 job(s) of an earlier run of this workflow are still queued or running:\n")
    assert "       101  RUNNING     train_res_bn_synthetic_b4_a660f6ce" in text
    assert "squeue --me -j 101,102" in text and "scancel 101 102" in text


def test_left_behind_excludes_earlier_and_completing_jobs():
    jobs = squeue.parse("7|RUNNING|rule_train_a|/w\n8|PENDING|rule_train_a|/w\n9|COMPLETING|rule_train_a|/w\n"
                        "10|RUNNING|rule_train_a|/w\n")
    assert [j.job for j in squeue.left_behind(jobs, {"7"})] == ["8", "10"]
    assert [j.job for j in squeue.left_behind(jobs, set())] == ["7", "8", "10"]
    assert squeue.left_behind(jobs, {"7", "8", "10"}) == []


@pytest.mark.parametrize("script, expect", [
    ('echo "$@" > "$ARGS"', True),
    ("echo 'scancel: error: Unable to contact slurm controller' >&2; exit 1", False),
    # job 8 ended between squeue and scancel: nothing left to cancel, not a failure
    ('echo "$@" > "$ARGS"; echo "scancel: error: Kill job error on job id 8: Job/step already completing or '
     'completed" >&2; exit 1', True),
    ('echo "$@" > "$ARGS"; echo "scancel: error: Kill job error on job id 8: Invalid job id specified" >&2; '
     'echo "scancel: error: Unable to contact slurm controller" >&2; exit 1', False),
    (None, False),  # no scancel at all
])
def test_cancel_runs_scancel_on_the_jobs(tmp_path, monkeypatch, script, expect):
    if script is not None:
        (tmp_path / "scancel").write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("ARGS", str(tmp_path / "args"))
    assert squeue.cancel(squeue.parse("8|PENDING|rule_train_a|/w\n10|RUNNING|rule_train_a|/w\n")) is expect
    if script and "ARGS" in script:
        assert (tmp_path / "args").read_text().split() == ["8", "10"]
