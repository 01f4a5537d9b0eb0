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
