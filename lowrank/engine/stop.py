"""A stop request: SIGTERM (SLURM's time limit, preemption and scancel), SIGUSR1 (the warning SLURM sends before a
time limit when asked: docs/slurm.md) and SIGINT (Ctrl-C) only set a flag. The training loop asks it after every
step: it finishes the step in flight, checkpoints every running run of the pack where it stands (mid-epoch), and
the job exits with RETRY_EXIT; the same command then resumes each run at that step (lowrank.engine.loop). A second
SIGINT stops at once (KeyboardInterrupt), for a user who will not wait for the checkpoint."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# The exit status of a job stopped by a signal after checkpointing: EX_TEMPFAIL of sysexits.h ("temporary failure,
# the user is invited to retry"). Any non-zero status is a failed attempt to Snakemake, which retries it.
RETRY_EXIT = 75


class StopRequest:
    """Whether a stop was asked for, and by which signal; calling it answers the first (the loop's check)."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def __call__(self) -> bool:
        """Has a signal asked training to stop?"""
        return self.signal is not None

    def handle(self, signum: int, frame: object) -> None:
        """The signal handler: record the first signal; a second SIGINT raises KeyboardInterrupt."""
        if signum == signal.SIGINT and self.signal is not None:
            raise KeyboardInterrupt
        self.signal = self.signal or signal.Signals(signum)


@contextmanager
def on_signals() -> Iterator[StopRequest]:
    """A StopRequest set by SIGNALS while the block runs (their previous handlers put back after it); off the main
    thread, where Python cannot catch signals, one that is never set."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
