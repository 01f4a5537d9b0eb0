"""A Snakemake job's stderr lands in its log file and still reaches the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


def test_stderr_and_a_traceback_reach_both_the_log_and_the_terminal(tmp_path):
    log = tmp_path / "job.log"
    res = run(f"import sys\nfrom lowrank.joblog import log_stderr\nlog_stderr({str(log)!r})\n"
              f"print('warning: x', file=sys.stderr)\nraise SystemExit('run r1: ranks.csv is damaged')")
    assert res.returncode == 1
    for text in (res.stderr, log.read_text()):
        assert text == "warning: x\nrun r1: ranks.csv is damaged\n"


def test_without_it_the_log_stays_empty(tmp_path):
    log = tmp_path / "job.log"
    res = run(f"import sys\nopen({str(log)!r}, 'w').close()\nprint('warning: x', file=sys.stderr)")
    assert res.stderr == "warning: x\n" and log.read_text() == ""


def test_an_input_removed_under_the_job_ends_it_in_one_sentence_and_a_bug_keeps_its_traceback(tmp_path):
    """Issue 25, case 8: under --nolock a second snakemake removes the table a render job reads (Snakemake removes a
    job's outputs before it runs it): the job ended with pandas' FileNotFoundError traceback. Now with one sentence
    naming the file and the way out, in the log and the terminal; any other error keeps its traceback."""
    log, table = tmp_path / "job.log", tmp_path / "tables" / "fig08.csv"
    res = run(f"from lowrank.joblog import log_stderr\nlog_stderr({str(log)!r})\nimport pandas\n"
              f"pandas.read_csv({str(table)!r})")
    assert res.returncode == 1
    for text in (res.stderr, log.read_text()):
        assert text == (f"error: {table}: No such file or directory; it vanished while this job ran (another "
                        f"snakemake writing the same outputs, e.g. under --nolock, or a file removed by hand): let "
                        f"the other one finish, then run it again (finished runs and checkpoints are kept).\n")
    res = run(f"from lowrank.joblog import log_stderr\nlog_stderr({str(log)!r})\n1 / 0")
    assert res.returncode == 1 and "Traceback" in res.stderr
    assert res.stderr.endswith("ZeroDivisionError: division by zero\n")
