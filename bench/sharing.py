"""N plain training processes sharing one device, the way a cluster user packs small jobs onto a GPU: each process
runs the plain per-run loop (bench.common.plain_epoch) for the same time window; their model-steps/s add up.

The worker processes are spawned once and reused for every measurement (starting a CUDA process costs seconds).
Each builds its run, trains one warm-up epoch, reports ready, and on the parent's go trains whole epochs until
the window has passed; its rate is the steps it trained over the seconds until its device work finished.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import time

import torch

from bench.common import configs, load, plain_epoch, synced
from lowrank.engine.device import kernel_flags

REPLY_TIMEOUT_S = 300.0  # a worker silent this long has died: stop rather than wait forever


def _train(index: int, device: torch.device, task: tuple, tasks: mp.Queue, results: mp.Queue) -> None:
    """One task: build the run, warm up, report ready, wait for the window, train through it, report the rate."""
    arch, options, batch, steps, size = task
    try:
        cfgs = configs(arch, options, 1, batch, batch * steps, size)
        epoch = plain_epoch(cfgs, load(cfgs[0], device), device)
        synced(device, epoch)
    except torch.cuda.OutOfMemoryError:
        results.put((index, "OOM"))
        return
    except Exception as error:  # reported to the parent, which reports it and goes on
        results.put((index, f"error: {error!r}"))
        return
    results.put((index, "ready"))
    window = tasks.get()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < window:
        epoch()
        done += steps
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    results.put((index, done / (time.perf_counter() - start) if done else 0.0))


def _worker(index: int, device: str, kernels: str, threads: int, tasks: mp.Queue, results: mp.Queue) -> None:
    """A worker process: train each task that arrives on `tasks` until it receives None."""
    torch.set_num_threads(threads)
    with kernel_flags(kernels):
        while (task := tasks.get()) is not None:
            _train(index, torch.device(device), task, tasks, results)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()


class Sharing:
    """A pool of `n_max` plain-loop worker processes on one device (a context manager: closes them on exit)."""

    def __init__(self, n_max: int, device: torch.device, kernels: str, threads: int = 1):
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in range(n_max)]
        self.workers = [ctx.Process(target=_worker, args=(i, str(device), kernels, threads, q, self.results),
                                    daemon=True) for i, q in enumerate(self.tasks)]
        for worker in self.workers:
            worker.start()

    def _replies(self, indices: list[int]) -> dict[int, object]:
        """The next reply of each of these workers."""
        replies: dict[int, object] = {}
        while len(replies) < len(indices):
            try:
                index, reply = self.results.get(timeout=REPLY_TIMEOUT_S)
            except queue.Empty:
                raise RuntimeError(f"a sharing worker sent nothing for {REPLY_TIMEOUT_S:.0f} s") from None
            replies[index] = reply
        return replies

    def measure(self, n: int, arch: str, options: dict, batch: int, steps: int, size: int,
                window_s: float) -> float | str:
        """Summed model-steps/s of n processes, each training one plain run for window_s seconds at once; 'OOM'
        when one of them does not fit, 'failed' (the error on stderr) when one raised."""
        for q in self.tasks[:n]:
            q.put((arch, options, batch, steps, size))
        setup = self._replies(list(range(n)))
        ready = [i for i, reply in setup.items() if reply == "ready"]
        failed = [reply for reply in setup.values() if reply != "ready"]
        for i in ready:
            self.tasks[i].put(0.0 if failed else window_s)  # an empty window when another worker failed
        rates = self._replies(ready)
        errors = [reply for reply in failed if reply != "OOM"]
        if errors:
            print(f"sharing: {n} processes of {arch} at B={batch} failed: {errors[0]}", file=sys.stderr)
            return "failed"
        return failed[0] if failed else sum(rates.values())

    def __enter__(self) -> Sharing:
        return self

    def __exit__(self, *exc) -> None:
        for q in self.tasks:
            q.put(None)
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
