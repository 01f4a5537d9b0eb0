"""Device check: on a GPU (or any device), a pack of 3 runs equals the 3 runs trained alone and the same pack
trained on the CPU, for every architecture, in float64 and float32; the pack stepped by CUDA graphs equals it
stepped eagerly, byte for byte; and the cost of the pack's layer metrics (batched singular values) against one
training epoch of the paper's ResNet-18.

Prints one table of max relative deviations (max |a - b| / max |b| over every weight, momentum and BatchNorm
buffer), then the graph-vs-eager table, then whether a pack killed after epoch 1, or stopped by SIGTERM in the middle
of epoch 2, and resumed writes the same bytes as an uninterrupted one (eager, and graph steps resumed against the
eager run), then the metrics-cost lines, all
under the engine's default kernels ("exact"). float64 runs 2 epochs of 2 steps; float32 one step, as
tests/test_pack.py (training amplifies float32 rounding chaotically in the tiny VGG).
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from bench.common import synced
from lowrank import data as datasets
from lowrank import layout, models
from lowrank.config import RunConfig
from lowrank.engine.device import STEPS, kernel_flags
from lowrank.engine.pack import Pack
from lowrank.engine.records import new_state
from lowrank.train import train_pack

CPU = torch.device("cpu")
SMALL = {"resnet18": dict(width=8), "vgg16_bn": dict(width=8), "mlp_bn": dict(depth=3, width=32),
         "res_bn": dict(depth=2, width=32),
         "vit": dict(dim=32, depth=2, heads=2, dim_head=8, mlp_dim=32, dropout=0.0, emb_dropout=0.0)}
VIT_DROPOUT = dict(SMALL["vit"], dropout=0.1, emb_dropout=0.1)  # draws from the CUDA generator in the step
RUNS = [dict(lr=0.05, weight_decay=5e-3, momentum=0.0, seed=0), dict(lr=0.02, weight_decay=0.0, momentum=0.9, seed=1),
        dict(lr=0.1, weight_decay=1e-2, momentum=0.5, seed=2)]


def trained(cfgs: list[RunConfig], device: torch.device, epochs: int, step: str = "eager") -> Pack:
    """The runs as one pack after `epochs` epochs on `device`, its steps issued by `step`."""
    data = datasets.load("synthetic", "data", device=device, dtype=getattr(torch, cfgs[0].dtype),
                         options=cfgs[0].data_options)
    pack = Pack.build([new_state(c, None, device) for c in cfgs], data, device, step)
    for epoch in range(1, epochs + 1):
        pack.train_epoch(epoch, data, None)
    return pack


def state_bytes(pack: Pack) -> list[bytes]:
    """Every byte a pack trains: each run's weights and momenta, the BatchNorm buffers, the last epoch's losses."""
    tensors = [pack.run_vector(k, momentum) for k in range(len(pack.states)) for momentum in (False, True)]
    tensors += [*pack.buffers.values(), pack.epoch_loss]
    return [t.cpu().numpy().tobytes() for t in tensors]


def deviation(a: Pack, b: Pack, rows: list[tuple[int, int]]) -> float:
    """Max relative deviation of run a[i] from run b[j] over weights, momentum and buffers, for (i, j) in rows."""
    worst = 0.0
    for i, j in rows:
        pairs = [(a.run_vector(i), b.run_vector(j)), (a.run_vector(i, momentum=True), b.run_vector(j, momentum=True))]
        pairs += [(a.buffers[n][i], b.buffers[n][j]) for n in a.net.buffer_names]
        for x, y in pairs:
            x, y = x.double().cpu(), y.double().cpu()
            scale = y.abs().max().item()
            if scale:
                worst = max(worst, (x - y).abs().max().item() / scale)
    return worst


def check(device: torch.device) -> None:
    """Print pack-vs-solo and device-vs-CPU deviations per architecture and dtype."""
    print(f"{'arch':>9} {'dtype':>8} {'pack vs solo':>13} {'device vs cpu':>14}   (3 runs, B=8)")
    for arch, options in SMALL.items():
        for dtype, n_train, epochs in (("float64", 16, 2), ("float32", 8, 1)):
            cfgs = [RunConfig(arch=arch, dataset="synthetic", batch_size=8, dtype=dtype, arch_options=options,
                              data_options={"n_train": n_train, "n_test": 16, "size": 16}, **run) for run in RUNS]
            pack = trained(cfgs, device, epochs)
            solo = max(deviation(pack, trained([c], device, epochs), [(k, 0)]) for k, c in enumerate(cfgs))
            cpu = deviation(pack, trained(cfgs, CPU, epochs), [(k, k) for k in range(len(cfgs))])
            print(f"{arch:>9} {dtype:>8} {solo:>13.2e} {cpu:>14.2e}", flush=True)


def graph_check(device: torch.device) -> None:
    """Print, per architecture (the ViT with and without dropout), whether the pack stepped by CUDA graphs holds the
    same bytes as stepped eagerly after 4 epochs of 3 full batches and a partial one (each batch shape captured
    after its warm-up steps, then replayed), float32."""
    print(f"{'arch':>13} {'graph = eager':>14} {'max deviation':>14} {'captured B':>11}   (3 runs, B=8, 4 epochs of "
          f"28 samples, float32)")
    for name, arch, options in (*((a, a, o) for a, o in SMALL.items()), ("vit+dropout", "vit", VIT_DROPOUT)):
        cfgs = [RunConfig(arch=arch, dataset="synthetic", batch_size=8, arch_options=options, epochs=4,
                          milestones=(3,), data_options={"n_train": 28, "n_test": 16, "size": 16}, **run)
                for run in RUNS]
        torch.manual_seed(0)  # dropout draws from the global generator: the same draws for both
        eager = trained(cfgs, device, 4)
        torch.manual_seed(0)
        graph = trained(cfgs, device, 4, step="graph")
        captured = sorted(graph.graphs.graphs) if graph.graphs else []
        # on a GPU both batch shapes (8, and the last 4) must have been captured and replayed, not stepped eagerly
        same = state_bytes(eager) == state_bytes(graph) and (device.type != "cuda" or captured == [4, 8])
        dev = deviation(graph, eager, [(k, k) for k in range(len(cfgs))])
        shapes = ",".join(map(str, captured)) or "none"
        note = "" if graph.graphs else "   (no CUDA graphs here)"
        print(f"{name:>13} {str(same):>14} {dev:>14.2e} {shapes:>11}{note}", flush=True)


class _Stop(Exception):
    """Raised from the training log to kill a pack mid-run."""


def _stop_at_epoch_2(message: str) -> None:
    if " epoch 2/" in message:
        raise _Stop


@contextmanager
def _sigterm_after(steps: int) -> Iterator[None]:
    """Pack steps that send this process SIGTERM after the `steps`-th, as SLURM does at a time limit."""
    step, done = Pack.step, []

    def signalling(self, x, y):
        step(self, x, y)
        done.append(1)
        if len(done) == steps:
            os.kill(os.getpid(), signal.SIGTERM)

    Pack.step = signalling
    try:
        yield
    finally:
        Pack.step = step


def resume_check(device: torch.device, step: str, name: str, arch: str, options: dict, how: str) -> None:
    """Train a pack of 3 runs of `arch` for 3 epochs eagerly; again with `step`, stopped and resumed, `how`:
    "killed" at epoch 2 (checkpoint of epoch 1), or by a "SIGTERM" after its 11th step (epoch 2 step 3 of 8: a
    mid-epoch checkpoint); print whether every log file is byte-identical."""
    cfgs = [RunConfig(arch=arch, dataset="synthetic", batch_size=8, epochs=3, eval_every=1, arch_options=options,
                      data_options={"n_train": 64, "n_test": 16, "size": 16}, **run) for run in RUNS]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref, run = ([(c, root / kind / c.run_id) for c in cfgs] for kind in ("ref", "run"))
        train_pack(ref, ckpt_dir=root / "ref.ckpt", device=device, log=lambda m: None)
        try:
            with _sigterm_after(11) if how == "SIGTERM" else nullcontext():
                statuses = train_pack(run, ckpt_dir=root / "run.ckpt", checkpoint_every=1, device=device, step=step,
                                      log=_stop_at_epoch_2 if how == "killed" else lambda m: None)
            assert statuses == ["running"] * 3, statuses
        except _Stop:
            pass
        train_pack(run, ckpt_dir=root / "run.ckpt", device=device, step=step, log=lambda m: None)
        logged = [what for what in layout.RUN_FILES if what != "summary"]  # the summary holds wall times
        same = all(layout.run_file(root / "ref" / c.run_id, w).read_bytes()
                   == layout.run_file(root / "run" / c.run_id, w).read_bytes() for c in cfgs for w in logged)
    where = "killed at epoch 2" if how == "killed" else "stopped by SIGTERM at epoch 2 step 3"
    print(f"{name} pack of 3, {step} steps, {where} and resumed: logs byte-identical to an uninterrupted eager "
          f"run: {same}", flush=True)


def metrics_cost(device: torch.device, ks: tuple[int, ...], batch: int, steps: int) -> None:
    """Seconds of one pack's layer metrics (17 batched SVDs) against its seconds per 50,000-sample epoch."""
    for k in ks:
        cfgs = [RunConfig(arch="resnet18", dataset="synthetic", batch_size=batch, lr=0.1, weight_decay=5e-4, seed=i,
                          arch_options={"activation": "leaky_relu"},
                          data_options={"n_train": batch * steps, "n_test": 16}) for i in range(k)]
        data = datasets.load("synthetic", "data", device=device, options=cfgs[0].data_options)
        pack = Pack.build([new_state(c, None, device) for c in cfgs], data, device)
        pack.train_epoch(1, data, None)
        pack.layer_metrics()
        epoch_s = min(synced(device, lambda: pack.train_epoch(1, data, None)) for _ in range(2)) / steps
        epoch_s *= -(-50_000 // batch)
        metric_s = min(synced(device, pack.layer_metrics) for _ in range(3))
        print(f"ResNet-18 B={batch} K={k}: layer metrics {metric_s * 1e3:.0f} ms, epoch {epoch_s:.1f} s "
              f"(from {steps} steps) -> metrics = {100 * metric_s / epoch_s:.2f}% of an epoch", flush=True)


def main() -> None:
    """Run both checks on --device."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32], help="pack sizes for the metrics cost")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per epoch estimate")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    with kernel_flags("exact"):
        print(f"{name}, torch {torch.__version__}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
              f"cudnn.deterministic={torch.backends.cudnn.deterministic}, "
              f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}")
        check(device)
        graph_check(device)
        for step in STEPS:
            for name, arch, options in (("ResNet-18", "resnet18", SMALL["resnet18"]),
                                        ("ViT+dropout", "vit", VIT_DROPOUT)):
                for how in ("killed", "SIGTERM"):
                    resume_check(device, step, name, arch, options, how)
        metrics_cost(device, tuple(args.ks), 16, args.steps)
    assert models.ARCHS == tuple(SMALL), "every architecture is checked"


if __name__ == "__main__":
    main()
