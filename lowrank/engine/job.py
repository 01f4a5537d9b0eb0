"""The engine's entry: one job trains one pack of runs as their one trainer. The command line (`python -m
lowrank.train`, lowrank.engine.cli) and the Snakemake job (workflow/scripts/train_pack.py) both train through
train_pack, so a run is trained the same way from either.

The job refuses a request it cannot train before any work, then holds each run's lease (lowrank.lease;
layout.lease_file puts it next to the run's checkpoint) while it trains: a second job for the same runs (a
restarted controller resubmits the jobs it finds incomplete, or a command run twice) waits for the first to finish
and then only writes the outputs from the finished checkpoints; a lease whose holder is gone is taken over. The
training loop calls `log` once per epoch, right before it checkpoints: that call renews the leases' heartbeat.

A Snakemake job also writes each attempt to its rule's log and appends it to the pack's history (attempt_log).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from lowrank import errors, layout, lease, logs
from lowrank.config import ConfigError, RunConfig
from lowrank.engine import stop
from lowrank.engine.device import check_step, kernel_flags
from lowrank.engine.loop import Log, train_runs


@dataclass(frozen=True)
class Settings:
    """How a job trains its runs; none of it changes what a run is or what it logs."""

    data_root: Path = Path("data")  # where the prepared datasets are (lowrank.data)
    checkpoint_every: int = 10  # epochs between checkpoints: a killed job loses at most this many
    kernels: str = "exact"  # the cuDNN settings on a GPU (lowrank.engine.device.KERNELS)
    step: str = "eager"  # how a GPU issues a training step (lowrank.engine.device.STEPS)
    stale_after: float = 3600.0  # seconds without a heartbeat after which a run's lease is taken over


# The command line's defaults, stated once; the pipeline passes config.yaml's checkpoint_every, gpu_kernels,
# gpu_step and lease_stale_after_s (the schema says what each may be).
DEFAULTS = Settings()


def train_pack(runs: list[tuple[RunConfig, Path]], *, ckpt_dir: Path, data_root: Path = DEFAULTS.data_root,
               checkpoint_every: int = DEFAULTS.checkpoint_every, device: torch.device | None = None,
               kernels: str = DEFAULTS.kernels, step: str = DEFAULTS.step, stale_after: float = DEFAULTS.stale_after,
               log: Log = print, live_dir: Path | None = None) -> list[str]:
    """Train K runs (config, output dir) as one pack while holding their leases, resuming from their checkpoints in
    `ckpt_dir`; write each run's logs (and its partial logs under `live_dir` as it trains: lowrank.engine.live);
    return the statuses. kernels and step (lowrank.engine.device) say how a GPU runs the steps; neither changes
    what a run is. SIGTERM, SIGUSR1 or SIGINT stop it after the step in flight, the unfinished runs checkpointed
    where they stand and left `running` (lowrank.engine.stop): exit_status says what the job then exits with."""
    if not runs:
        return []
    check_request(runs, ckpt_dir, checkpoint_every, kernels, step)
    leases = [layout.lease_file(ckpt_dir, cfg.run_id) for cfg, _ in runs]
    with lease.holding(leases, stale_after=stale_after, log=log) as held:

        def epoch_done(msg: str) -> None:
            log(msg)
            for lz in held:
                lz.renew()

        with stop.on_signals() as request:
            statuses = train_runs(runs, data_root=data_root, ckpt_dir=ckpt_dir, checkpoint_every=checkpoint_every,
                                  device=device, kernels=kernels, step=step, log=epoch_done, live_dir=live_dir,
                                  stop=request)
        if request():
            log(f"stopped by {request.signal.name}: the runs not finished are checkpointed where they stand; exit "
                f"status {stop.RETRY_EXIT}, retry (or run the same command again) to resume them there")
        return statuses


def check_request(runs: list[tuple[RunConfig, Path]], ckpt_dir: Path, checkpoint_every: int, kernels: str,
                  step: str) -> None:
    """Refuse a pack that cannot be trained as asked before any work, with one sentence naming the setting."""
    if len({cfg.pack_key for cfg, _ in runs}) != 1:
        raise ConfigError("runs of one pack must share everything but lr, weight_decay, momentum and seed.")
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every={checkpoint_every!r} is invalid: it must be >= 1.")
    kernel_flags(kernels)
    check_step(step)
    for what, path in [*(("output directory", out) for _, out in runs), ("checkpoint directory", ckpt_dir)]:
        check_writable(what, Path(path))
    for cfg, _ in runs:
        checkpoint = layout.checkpoint_file(ckpt_dir, cfg.run_id)
        for path in (checkpoint, layout.previous_checkpoint_file(checkpoint), layout.lease_file(ckpt_dir, cfg.run_id)):
            if path.exists() and not path.is_file():
                raise ConfigError(f"{path} is not a file (a directory?) where run {cfg.run_id}'s checkpoint or "
                                  f"lease belongs: move it away or remove it, then run again.")


def check_writable(what: str, path: Path) -> None:
    """Create directory `path` and write a probe file into it: a location that cannot hold the run's files is
    refused before the first step, not after the last."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(f"{what} {path} is not a writable directory: {err.strerror or err}; make it writable or "
                          f"choose another (`results` in the config; --out or --ckpt-dir on the command line).") \
            from None


def status_line(cfg: RunConfig, out: Path, status: str) -> str:
    """What a job says of each run at its end: its status (`stopped` for one a signal left unfinished), id and
    output folder."""
    return f"{'stopped' if status == logs.RUNNING else status}: {cfg.run_id} -> {out}"


def exit_status(statuses: list[str]) -> int:
    """The job's exit status: 0 when every run finished or diverged, stop.RETRY_EXIT when a signal stopped it."""
    return stop.RETRY_EXIT if logs.RUNNING in statuses else 0


@contextmanager
def attempt_log(log_file: Path, history: Path, attempt: int) -> Iterator[Log]:
    """This attempt's log: every message goes to `log_file` (the rule's log, which Snakemake deletes when the next
    attempt starts) and is appended to the pack's `history`, where the attempt starts with a header naming its
    SLURM job, restart, host and pid, and every line starts with `job <SLURM job id> pid <pid> | ` (`pid <pid> | `
    outside SLURM): two processes of one pack may write at once (one trains, the other waits for its leases), and
    two of one SLURM job (its controller killed, the job restarted in the same allocation). Meanwhile stderr goes to
    the log; an error the user acts on (lowrank.errors) ends the attempt with its one sentence, `error: ...`, and
    exit status 1; a crash (not a divergence) logs its traceback, which Snakemake prints, before it goes on."""
    history.parent.mkdir(parents=True, exist_ok=True)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    tag = f"job {slurm_job} pid {os.getpid()} | " if slurm_job else f"pid {os.getpid()} | "
    with open(log_file, "a") as log, open(history, "a") as lines:

        def say(msg: str) -> None:
            print(msg, file=log, flush=True)
            print("".join(tag + line for line in msg.splitlines(keepends=True)), file=lines, flush=True)

        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        say(f"=== attempt {attempt}: SLURM job {slurm_job or '-'} (restart {restarts}) on {socket.gethostname()}, "
            f"pid {os.getpid()}, {datetime.now(timezone.utc).isoformat(timespec='seconds')} ===")
        stderr, sys.stderr = sys.stderr, log
        try:
            yield say
        except Exception as err:
            if (sentence := errors.sentence(err)) is None:
                say(traceback.format_exc().rstrip())
                raise
            say(f"error: {sentence}")
            raise SystemExit(1) from None
        except BaseException:
            say(traceback.format_exc().rstrip())
            raise
        finally:
            sys.stderr = stderr
