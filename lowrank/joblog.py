"""A Snakemake job's log: what the job writes to stderr (warnings, errors, tracebacks) also lands in its `log:`
file, and the terminal keeps it, so a failed job's message reads the same with or without --show-failed-logs."""

from __future__ import annotations

import sys
from typing import TextIO

from lowrank import errors


class Tee:
    """A text stream writing to every one of `streams`, flushing each (a log is read while the job runs)."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        """Write `text` to every stream."""
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        """Flush every stream."""
        for stream in self.streams:
            stream.flush()


def log_stderr(path: str) -> None:
    """Copy the rest of this process's stderr into the log file `path` (truncated first); an error the user acts
    on ends the job with its one sentence (lowrank.errors), not a traceback."""
    sys.stderr = Tee(sys.stderr, open(path, "w", encoding="utf-8"))  # noqa: SIM115 (open until the job exits)
    sys.excepthook = errors.excepthook
