"""Fixtures and helpers shared by the test files: one torch thread per test module, and the kill-and-resume
helpers of the engine's tests (test_train, test_pack)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lowrank import layout


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: on a busy 2-core machine OpenMP barriers make tiny ops 10-20x slower with two. Only
    in modules that imported torch: the workflow layer's tests run without it."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Interrupt(Exception):
    """Stands in for a kill: raised from the progress log after an epoch, before that epoch's checkpoint."""


def interrupt_at(epoch: int):
    """A train_pack `log` callback that stops training when it reports `epoch`."""
    def log(msg: str) -> None:
        if f" epoch {epoch}/" in msg:
            raise Interrupt(msg)
    return log


def outputs(run_dir: Path) -> dict[str, bytes]:
    """A run's log files as bytes; summary.json without `runtime` (host, wall time and dates)."""
    files = {name: (run_dir / name).read_bytes() for name in layout.RUN_FILES.values()}
    summary = json.loads(files["summary.json"])
    del summary["runtime"]
    files["summary.json"] = json.dumps(summary, sort_keys=True).encode()
    return files
