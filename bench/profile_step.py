"""Profile of a pack's training step: where the time of `Pack.train_epoch` goes, for one model, B and K.

Prints the wall time per pack step (timed without the profiler), the device's busy time per step (the sum of its
kernels' times, from torch.profiler; on a CPU, the operators' self time), their ratio (far below 100 %: the step
waits on Python and kernel launches, not on the device), and the operators that take the most of it; then the wall
time per step of the same pack stepped by CUDA graphs (`--step graph` profiles that one instead).
"""

from __future__ import annotations

import argparse

import torch
import yaml
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from bench.common import TINY, Epoch, configs, fused_epoch, load, preset_options, synced
from lowrank.engine.device import KERNELS, STEPS, kernel_flags


class _CountOperators(TorchDispatchMode):
    """Counts the ATen operators run under it (forward, backward and optimizer alike)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def operators_per_step(epoch: Epoch, steps: int) -> float:
    """ATen operators per pack step of an eager epoch of `steps` steps (its few per-epoch operators included): on a
    GPU each is at least one kernel launched from Python, what a CUDA graph replays in one launch."""
    with _CountOperators() as counter:
        epoch()
    return counter.count / steps


def main() -> None:
    """Parse the flags, time and profile the pack's epochs, print the summary line and the operator table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a small model (a smoke test)")
    ap.add_argument("--config", default="config.yaml", help="the model presets")
    ap.add_argument("--model", default="resnet18_leaky", help="a config.yaml model preset")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--k", type=int, default=8, help="runs in the pack")
    ap.add_argument("--steps", type=int, default=10, help="pack steps per profiled epoch")
    ap.add_argument("--rows", type=int, default=15, help="operators listed")
    ap.add_argument("--kernels", default="exact", choices=KERNELS, help="cuDNN settings")
    ap.add_argument("--step", default="eager", choices=STEPS, help="the step profiled (the other is only timed)")
    args = ap.parse_args()
    for flag, value in (("--batch", args.batch), ("--k", args.k), ("--steps", args.steps)):
        if value < 1:
            ap.error(f"{flag} must be at least 1")
    preset = yaml.safe_load(open(args.config))["models"].get(args.model)
    if preset is None:
        ap.error(f"--model {args.model!r} is not a config.yaml model preset")
    device = torch.device(args.device)
    options = {**preset_options(preset), **(TINY.get(args.model, {}) if args.tiny else {})}
    cfgs = configs(preset["arch"], options, args.k, args.batch, args.batch * args.steps, 16 if args.tiny else 32)
    cuda = device.type == "cuda"
    with kernel_flags(args.kernels):
        data = load(cfgs[0], device)
        walls = {}
        for step in (args.step, *(s for s in STEPS if s != args.step)):
            epoch = fused_epoch(cfgs, data, device, step)
            epoch()  # warm-up (a graph is captured here)
            walls[step] = min(synced(device, epoch) for _ in range(3)) * 1e3 / args.steps
        eager_operators = operators_per_step(fused_epoch(cfgs, data, device), args.steps)
        epoch = fused_epoch(cfgs, data, device, args.step)
        epoch()
        wall_ms = walls[args.step]
        activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
        with profile(activities=activities) as prof:
            synced(device, epoch)
    ops = prof.key_averages()
    if cuda:  # the kernels' own events, as the profiler's table totals them
        busy_us = sum(e.self_device_time_total for e in ops
                      if e.device_type == DeviceType.CUDA and not e.is_user_annotation)
    else:
        busy_us = sum(e.self_cpu_time_total for e in ops)
    busy_ms = busy_us / 1e3 / args.steps
    print(f"{args.model}{' (TINY)' if args.tiny else ''} B={args.batch} K={args.k} on {device.type}, kernels "
          f"{args.kernels}, {args.step} steps: {wall_ms:.2f} ms per pack step; "
          f"{'device kernels' if cuda else 'operators'} busy {busy_ms:.2f} ms per step "
          f"({busy_ms / wall_ms:.0%} of the wall time)")
    print("wall ms per pack step: " + ", ".join(f"{step} {ms:.2f}" for step, ms in walls.items())
          + ("" if cuda else " (no CUDA graphs on a CPU: both eager)")
          + f"; an eager step runs {eager_operators:.0f} ATen operators ({1e3 * walls['eager'] / eager_operators:.1f}"
          f" µs of wall time each)")
    print(ops.table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
