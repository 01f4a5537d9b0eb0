"""lowrank.squeue against a fake `squeue`/`scancel` on PATH: job liveness, this workflow's jobs, cancelling those a
stopped controller left."""

import pytest

from lowrank import squeue
from lowrank.controller import Controller


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
    jobs = squeue.workflow_jobs(rules.__contains__, "/work/flow", QUEUE)
    assert [(j.job, j.state, j.rule) for j in jobs] == [
        ("101", "RUNNING", "train_res_bn_synthetic_b4_a660f6ce"),
        ("102", "PENDING", "train_res_bn_synthetic_b8_6f075bab")]
    assert squeue.workflow_jobs(rules.__contains__, "/work/other", QUEUE) == []
    assert squeue.workflow_jobs({"train_x"}.__contains__, "/work/flow", QUEUE) == []


def test_workflow_jobs_asks_squeue_for_this_users_active_jobs(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, f'echo "$@" > {tmp_path}/args; echo "7|RUNNING|rule_train_a|{tmp_path}"')
    (job,) = squeue.workflow_jobs({"train_a"}.__contains__, str(tmp_path))
    assert job.job == "7"
    assert (tmp_path / "args").read_text().split()[:2] == ["--me", "-h"]
    fake_squeue(tmp_path, monkeypatch, "exit 1")
    assert squeue.workflow_jobs({"train_a"}.__contains__, str(tmp_path)) is None


def test_notice_lists_the_jobs_and_how_to_wait_or_cancel():
    text = squeue.notice(squeue.workflow_jobs({"train_res_bn_synthetic_b4_a660f6ce",
                                              "train_res_bn_synthetic_b8_6f075bab"}.__contains__, "/work/flow", QUEUE))
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


def test_a_controller_names_earlier_jobs_then_cancels_only_its_own_after_ctrl_c(tmp_path, monkeypatch):
    queue = tmp_path / "queue"
    fake_squeue(tmp_path, monkeypatch, f"/bin/cat {queue}")
    (tmp_path / "scancel").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/cancelled\n')
    (tmp_path / "scancel").chmod(0o755)
    said: list[str] = []
    ctl = Controller(lambda rule: rule.startswith("train_"), str(tmp_path), said.append)
    queue.write_text(f"7|RUNNING|rule_train_a|{tmp_path}\n")
    ctl.on_start()
    assert ctl.earlier == {"7"} and said[0].startswith("SLURM: 1 job(s) of an earlier run")
    queue.write_text(f"7|RUNNING|rule_train_a|{tmp_path}\n8|PENDING|rule_train_a|{tmp_path}\n"
                     f"9|RUNNING|rule_other_rule|{tmp_path}\n")
    ctl.on_error(ctrl_c=False)  # another error: named, left running
    assert said[1].endswith("To stop them: scancel 8") and not (tmp_path / "cancelled").exists()
    ctl.on_error(ctrl_c=True)
    assert said[2] == "SLURM: cancelled 1 job(s) of this run still queued or running: 8"
    assert (tmp_path / "cancelled").read_text().split() == ["8"]


def test_a_controller_that_cannot_read_the_queue_says_so(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, "exit 1")
    said: list[str] = []
    ctl = Controller(lambda rule: rule.startswith("train_"), str(tmp_path), said.append)
    ctl.on_start()
    ctl.on_error(ctrl_c=True)
    assert ctl.earlier is None and len(said) == 2 and "check `squeue --me` and scancel them" in said[1]
