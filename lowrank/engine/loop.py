"""Orchestration: train a pack of runs to the end, resuming from checkpoints (at the epoch and step where each run
stands), observing, checkpointing and writing out each run as it stops (finished or diverged); a signal's stop
request checkpoints the running runs mid-epoch (lowrank.engine.stop), a pack too large for the device trains as
sub-packs (lowrank.engine.memory). lowrank.engine.job checks the request and holds the runs' leases around it."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import torch

from lowrank import checkpoints, logs, pace
from lowrank import data as datasets
from lowrank.config import ConfigError, RunConfig
from lowrank.engine import live, memory
from lowrank.engine.device import default_device, kernel_flags
from lowrank.engine.pack import DTYPES, Pack
from lowrank.engine.records import (RunState, conclude, new_state, record_layers, restore_logs, restore_run,
                                    run_checkpoint, shrink_checkpoint, write_outputs)

Log = Callable[[str], None]
Runs = list[tuple[RunConfig, Path]]  # (config, output dir) of each run


def train_runs(runs: Runs, *, data_root: Path, ckpt_dir: Path, checkpoint_every: int,
               device: torch.device | None, kernels: str, step: str, log: Log, live_dir: Path | None,
               stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Train K runs as one pack (a request job.check_request accepted), resuming each from its checkpoint at the
    epoch and step where it stands; write each run's logs (and, with a live_dir, its partial logs as it trains:
    lowrank.engine.live); return the statuses. A pack too large for the device's memory trains as sub-packs that
    fit (lowrank.engine.memory). When stop() turns True (a signal: lowrank.engine.stop) the pack finishes its step,
    checkpoints its running runs where they stand and returns; those runs' status is still logs.RUNNING."""
    device = device or default_device()
    cfg = runs[0][0]
    data = load_data(cfg, data_root, device)

    def train(part: Runs) -> list[str]:
        return train_one_pack(part, data, device, ckpt_dir, checkpoint_every, kernels, step, log, live_dir, stop)

    def shrink(k: int, why: str) -> None:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        path = memory.record_fit(ckpt_dir, cfg, device, k)
        log(f"out of memory ({why}): training the pack as sub-packs of {k} runs, each run from its last "
            f"checkpoint; later packs of its shape on {memory.device_name(device)} start at {k} ({path})")

    size = memory.recorded_fit(ckpt_dir, cfg, device) or len(runs)
    if size < len(runs):
        log(f"packs of this shape fit {size} runs on {memory.device_name(device)} "
            f"({memory.fit_file(ckpt_dir, cfg, device)}): training the {len(runs)} runs as sub-packs of {size}")
    return train_fitting(runs, size, train, shrink)


def train_fitting(runs: Runs, size: int, train: Callable[[Runs], list[str]],
                  shrink: Callable[[int, str], None]) -> list[str]:
    """Train the runs as packs of at most `size` runs, one after another (train: one pack); a pack that runs out of
    memory is trained again as sub-packs of half its size, once shrink(half, why) has recorded and said so. A
    single run that does not fit raises."""
    statuses = []
    for i in range(0, len(runs), size):
        part = runs[i:i + size]
        try:
            statuses += train(part)
            continue
        except torch.OutOfMemoryError as err:
            if len(part) == 1:
                raise
            why = str(err).splitlines()[0] if str(err) else "torch.OutOfMemoryError"
        half = -(-len(part) // 2)  # past the except block: the failed pack's tensors are freed
        shrink(half, why)
        statuses += train_fitting(part, half, train, shrink)
    return statuses


def train_one_pack(runs: Runs, data: datasets.Data, device: torch.device, ckpt_dir: Path, checkpoint_every: int,
                   kernels: str, step: str, log: Log, live_dir: Path | None, stop: Callable[[], bool]) -> list[str]:
    """Train the runs as one pack on `data`, each resumed where its checkpoint stands; return the statuses."""
    fill = torch.tensor(data.fill, device=device)  # raw 0, as torchvision pads
    states = [new_state(cfg, out, device) for cfg, out in runs]
    pack = Pack.build(states, data, device, step)
    cuda = device.type == "cuda"
    runtime = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "kernels": kernels if cuda else "cpu",
               "step": ("graph" if pack.graphed else "eager") if cuda else "cpu", "host": socket.gethostname(),
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    resume(pack, ckpt_dir, log)
    pack = drop_stopped(pack, ckpt_dir, runtime, live_dir)
    # runs resumed at different epochs or steps: one sub-pack each, the one furthest behind first
    for where in sorted({(s.epoch, s.step) for s in pack.states}):
        if stop():  # the runs not started keep their checkpoints as they are
            break
        sub = pack.subset([(s.epoch, s.step) == where for s in pack.states])
        if where != (0, 0):
            log(f"resumed {position(sub)}")
        with kernel_flags(kernels):
            _train(sub, data, fill, ckpt_dir, checkpoint_every, runtime, log, live_dir, stop)
    return [s.status for s in states]


def position(pack: Pack) -> str:
    """Where a pack's runs stand, in words: `run <id>` (`pack of K runs <ids>`) `at epoch E step S of N`, where E is
    the epoch in progress and S the steps of it trained."""
    s = pack.states[0]
    who = f"run {s.cfg.run_id}" if len(pack.states) == 1 else \
        f"pack of {len(pack.states)} runs {', '.join(r.cfg.run_id for r in pack.states)}"
    return f"{who} at epoch {s.epoch + 1} step {s.step} of {s.cfg.steps_per_epoch}"


def load_data(cfg: RunConfig, data_root: Path, device: torch.device) -> datasets.Data:
    """The pack's dataset on the training device, refusing a batch larger than its training set."""
    data = datasets.load(cfg.dataset, data_root, device=device, dtype=DTYPES[cfg.dtype], options=cfg.data_options)
    if cfg.batch_size > data.train_x.shape[0]:
        raise ConfigError(f"batch_size={cfg.batch_size} is invalid: the {cfg.dataset} training set has only "
                          f"{data.train_x.shape[0]} samples.")
    return data


def resume(pack: Pack, ckpt_dir: Path, log: Log) -> None:
    """Restore each run of a fresh pack from its newest good checkpoint, if it has one."""
    for k, s in enumerate(pack.states):
        ckpt = checkpoints.load_latest(ckpt_dir, s.cfg, log)
        if ckpt is None:
            continue
        if "flat" in ckpt:
            pack.load_run_state(k, ckpt)
            restore_run(s, ckpt, pack.device)
        else:  # a finished run keeps only its logs: it is written out again, never trained again
            restore_logs(s, ckpt["logs"])
            s.epoch = ckpt["epoch"]


def drop_stopped(pack: Pack, ckpt_dir: Path, runtime: dict, live_dir: Path | None) -> Pack:
    """Shrink the checkpoints of the runs that stopped (finished or diverged) to their logs, then write their log
    files (in that order: a kill in between rewrites them from the checkpoint) and remove their partial logs;
    return the pack without them."""
    stopped = [s.status != logs.RUNNING for s in pack.states]
    for s in (s for s, d in zip(pack.states, stopped) if d):
        shrink_checkpoint(s, ckpt_dir)
        write_outputs(s, pack.net.layers, runtime)
        live.remove(s, live_dir)
        pace.write(ckpt_dir, s.cfg.run_id, steps_left=0)
    return pack.subset([not d for d in stopped]) if any(stopped) else pack


def _train(pack: Pack, data: datasets.Data, fill: torch.Tensor, ckpt_dir: Path, checkpoint_every: int,
           runtime: dict, log: Log, live_dir: Path | None, stop: Callable[[], bool]) -> None:
    """Train a pack whose runs all stand at the same epoch and step until every run has finished or diverged, or
    until stop() asks it to stop: then its running runs are checkpointed where they stand. The partial logs of the
    runs still running are written at every evaluation and checkpoint (lowrank.engine.live)."""
    cfg = pack.states[0].cfg
    eval_at = set(cfg.eval_epochs())
    started, done_before = time.perf_counter(), steps_done(pack.states[0])
    for s in pack.states:  # this attempt starts here (lowrank.pace.stalled compares)
        pace.write(ckpt_dir, s.cfg.run_id, steps_done=done_before, steps_done_at_start=done_before,
                   steps_left=steps_left(s), job=os.environ.get("SLURM_JOB_ID", ""))

    def save() -> None:  # checkpoint the running runs (of `pack` as it then stands), with the pace since the start
        trained = steps_done(pack.states[0]) - done_before
        save_running(pack, ckpt_dir, (time.perf_counter() - started) / trained if trained else None)

    if (pack.states[0].epoch, pack.states[0].step) == (0, 0):
        observe(pack, data, 0, eval_at)
        live.write(pack.states, pack.net.layers, runtime, live_dir)
        pack = drop_stopped(pack, ckpt_dir, runtime, live_dir)
    first = pack.states[0].epoch + 1
    while pack.states:
        epoch = pack.states[0].epoch + 1
        t0 = time.perf_counter()
        bad = pack.train_epoch(epoch, data, fill, stop)
        if bad is None:  # stopped in the middle of the epoch
            for s in pack.states:
                s.wall_time += time.perf_counter() - t0
            save()
            log(f"stopped {position(pack)}: checkpointed there")
            return
        bad = bad.tolist()
        fit = train_fit(pack)
        for s, b in zip(pack.states, bad):
            s.epoch = epoch
            if b:
                conclude(s, epoch, logs.NONFINITE_LOSS)
        pack = drop_stopped(pack, ckpt_dir, runtime, live_dir)
        if not pack.states:
            break
        observe(pack, data, epoch, eval_at)
        elapsed = time.perf_counter() - t0
        for s in pack.states:
            s.wall_time += elapsed
            conclude(s, epoch)
        per_epoch = (time.perf_counter() - started) / (epoch - first + 1)
        log(progress(pack, epoch, elapsed, per_epoch, fit))
        stopping = stop()  # asked once: a signal arriving after this is seen after the next step
        if epoch % checkpoint_every == 0 or stopping:
            save()
        if epoch in eval_at or epoch % checkpoint_every == 0 or stopping:
            live.write(pack.states, pack.net.layers, runtime, live_dir)
        pack = drop_stopped(pack, ckpt_dir, runtime, live_dir)
        if stopping and pack.states:
            log(f"stopped {position(pack)}: checkpointed there")
            return


def save_running(pack: Pack, ckpt_dir: Path, seconds_per_step: float | None) -> None:
    """Checkpoint every run of the pack that is still running, and record its pace (lowrank.pace): the pack's
    measured seconds per step (None: none measured yet), its size, the run's steps done and left."""
    for k, s in enumerate(pack.states):
        if s.status == logs.RUNNING:
            checkpoints.save(checkpoints.checkpoint_path(ckpt_dir, s.cfg), s.cfg,
                             run_checkpoint(s, pack.run_state(k), pack.device))
            pace.write(ckpt_dir, s.cfg.run_id, seconds_per_step=seconds_per_step, pack_runs=len(pack.states),
                       steps_done=steps_done(s), steps_left=steps_left(s))


def steps_done(s: RunState) -> int:
    """The steps run `s` has trained: its epochs completed and the steps of the one in progress."""
    return s.epoch * s.cfg.steps_per_epoch + s.step


def steps_left(s: RunState) -> int:
    """The steps run `s` has left to train, if it neither diverges nor stops early."""
    return s.cfg.epochs * s.cfg.steps_per_epoch - steps_done(s)


def progress(pack: Pack, epoch: int, elapsed: float, per_epoch: float, fit: str) -> str:
    """The progress line of one epoch: the pack, the epoch's seconds, the pace and ETA, the training fit."""
    cfg = pack.states[0].cfg
    eta = timedelta(seconds=round(per_epoch * (cfg.epochs - epoch)))
    return (f"[{cfg.arch} {cfg.dataset} B={cfg.batch_size} K={len(pack.states)}] epoch {epoch}/{cfg.epochs} "
            f"{elapsed:.2f}s ({per_epoch:.2f} s/epoch, ETA {eta}) {fit}")


def train_fit(pack: Pack) -> str:
    """The pack's mean training loss and accuracy over its last epoch's batches (runs that diverged left out)."""
    loss, acc = pack.epoch_loss.cpu(), pack.epoch_acc.cpu()
    ok = torch.isfinite(loss)
    if not ok.any():
        return "train loss nan"
    return f"train loss {loss[ok].mean().item():.4f} acc {acc[ok].mean().item():.3f} (mean of {int(ok.sum())} runs)"


def observe(pack: Pack, data: datasets.Data, epoch: int, eval_at: set[int]) -> None:
    """Log the layer metrics of `epoch` and, at evaluation epochs, losses, accuracies and spectra; a non-finite
    evaluation or the authors' early stop ends a run."""
    is_eval = epoch in eval_at
    for s, measured in zip(pack.states, pack.layer_metrics()):
        record_layers(s, epoch, measured, pack.net.layers, spectra=is_eval)
    if is_eval:
        for s, r in zip(pack.states, pack.evaluate(data, pack.states[0].cfg.test_batch_size)):
            s.evals.append({"epoch": epoch, "lr": s.cfg.lr_at(epoch + 1), **r})
            if not all(math.isfinite(v) for v in r.values()):
                conclude(s, epoch, logs.NONFINITE_LOSS)
    for s in pack.states:
        if early_stop(s.cfg, s.evals, epoch):
            conclude(s, epoch, logs.EARLY_STOP)


def early_stop(cfg: RunConfig, evals: list[dict], epoch: int) -> bool:
    """The authors' early stop after training `epoch`: from early_stop_epoch on (None: never), the last
    early_stop_window evaluations *before* this epoch's all have train accuracy ≤ early_stop_acc.

    Their loop evaluates at the start of an epoch and judges after training it, so after epoch 50 it judges the
    evaluations of epochs 20, 30, 40 (the one of epoch 50 is judged from epoch 51 on).
    """
    window = [e["train_acc"] for e in evals if e["epoch"] < epoch][-cfg.early_stop_window:]
    return (cfg.early_stop_epoch is not None and epoch >= cfg.early_stop_epoch
            and len(window) == cfg.early_stop_window and max(window) <= cfg.early_stop_acc)
