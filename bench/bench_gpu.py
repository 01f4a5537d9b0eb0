"""GPU benchmark: the paper's ResNet-18, VGG-16-BN and ViT at B = 4, 8, 16 as fused packs of K = 1, 8, 32 runs
against a plain per-run loop, and the GPU-hours the whole paper grid (config.yaml) would take either way.

The plain loop trains its runs one after another, so its model-steps/s do not depend on K: it is timed once per
model and batch size (one run). Fused rates are K x pack steps per second. Every timing is the best of a few
epochs after a warm-up epoch, bounded by a time budget; combinations that run out of memory or time are shown as
such. `--device cpu --tiny` runs the same code on small models and tiny data, to show that it runs.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import torch
import yaml

from bench.common import TINY, best_seconds, configs, fused_epoch, load, plain_epoch, preset_options
from lowrank import grid
from lowrank.data import DATASETS
from lowrank.config import RunConfig
from lowrank.train import KERNELS, kernel_flags

# training-set sizes of the paper's datasets (SVHN: the 73,257-image train split, without "extra")
TABLE_MODELS = ("resnet18_leaky", "vgg16_bn", "vit_small")  # config.yaml `models` entries of the table
GRID_ONLY_MODELS = ("mlp_bn_10_100", "mlp_bn_2_10000", "res_bn_5_500")  # timed at one B, for the projection


@dataclass(frozen=True)
class Setup:
    """What one invocation measures: models, batch sizes, pack sizes, and how much time each timing gets."""

    device: torch.device
    models: dict[str, tuple[str, dict]]  # config.yaml model name -> (arch, options it is timed with)
    batches: tuple[int, ...]
    ks: tuple[int, ...]
    steps: int  # steps per timed epoch
    size: int  # image side
    repeats: int
    measure_s: float  # budget of one timing
    total_s: float  # budget of the whole table


def cost_key(arch: str, options: dict) -> tuple:
    """Runs whose models differ only in activation cost the same per step."""
    return arch, tuple(sorted((k, v) for k, v in options.items() if k != "activation"))


def measure(setup: Setup, arch: str, options: dict, batch: int, k: int | None) -> float | str:
    """Model-steps/s of the plain loop (k None) or of a fused pack of k runs; 'OOM' when it does not fit."""
    n = k or 1
    cfgs = configs(arch, options, n, batch, batch * setup.steps, setup.size)
    try:
        data = load(cfgs[0], setup.device)
        epoch = (fused_epoch if k else plain_epoch)(cfgs, data, setup.device)
        seconds = best_seconds({"epoch": epoch}, setup.device, setup.repeats, setup.measure_s)["epoch"]
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    finally:
        if setup.device.type == "cuda":
            torch.cuda.empty_cache()
    return n * setup.steps / seconds


def table(setup: Setup) -> dict[str, dict]:
    """Measure and print every (model, B, K); return {model name: {(B, K or None): model-steps/s}}."""
    rates: dict[str, dict] = {}
    deadline = time.perf_counter() + setup.total_s
    print(f"{'model':>16} {'B':>4} {'K':>4} {'plain steps/s':>14} {'fused steps/s':>14} {'ratio':>6}")
    for name, (arch, options) in setup.models.items():
        measured = rates.setdefault(name, {})
        for batch in setup.batches if name in TABLE_MODELS else setup.batches[-1:]:
            for k in (None, *setup.ks):  # None: the plain loop
                over = time.perf_counter() > deadline
                measured[batch, k] = "skipped" if over else measure(setup, arch, options, batch, k)
            plain = measured[batch, None]
            for k in setup.ks:
                fused = measured[batch, k]
                ratio = f"{fused / plain:6.2f}" if isinstance(fused, float) and isinstance(plain, float) else ""
                print(f"{name:>16} {batch:>4} {k:>4} {_fmt(plain):>14} {_fmt(fused):>14} {ratio:>6}", flush=True)
    return rates


def _fmt(rate: float | str) -> str:
    return f"{rate:.0f}" if isinstance(rate, float) else rate


def step_seconds(rates: dict, run: RunConfig, k: int | None) -> float | None:
    """Seconds per model-step of `run` (plain, or in a pack of k): from the largest measured B <= its batch size
    (else the smallest), scaled in proportion to the batch size; None if nothing usable was measured."""
    measured = {b: r for (b, kk), r in rates.get(cost_key(run.arch, run.arch_options), {}).items()
                if kk == k and isinstance(r, float)}
    if not measured:
        return None
    below = [b for b in measured if b <= run.batch_size]
    b = max(below) if below else min(measured)
    return run.batch_size / b / measured[b]


def projection(rates: dict, runs: list[RunConfig], ks: tuple[int, ...], unit: str) -> None:
    """Print the device-hours of all runs: epochs x steps per epoch x seconds per model-step, plain and fused."""
    steps = {run.run_id: run.epochs * math.ceil(DATASETS[run.dataset].train_size / run.batch_size) for run in runs}
    print(f"paper grid: {len(runs)} runs, {sum(steps.values()):,} model-steps "
          f"(per-step times scaled in proportion to B from the nearest measured B, CIFAR-shaped data)")
    for k in (None, *ks):
        seconds = [step_seconds(rates, run, k) for run in runs]
        missing = sum(s is None for s in seconds)
        hours = sum(steps[run.run_id] * s for run, s in zip(runs, seconds) if s is not None) / 3600
        label = "plain loop" if k is None else f"fused K={k}"
        note = f" (without {missing} runs whose model was not measured)" if missing else ""
        print(f"  {label:>11}: {hours:10.1f} {unit}{note}")


def resource_fit(rates: dict[str, dict], presets: dict, batch: int) -> None:
    """Print config.yaml `resources` step times per architecture: the least-squares line through the measured
    seconds per pack step at `batch` against K (step_seconds + K x step_seconds_per_run)."""
    print(f"config.yaml resources (seconds per pack step at B={batch} = step_seconds + K x step_seconds_per_run):")
    for name, measured in rates.items():
        points = [(k, k / r) for (b, k), r in measured.items() if b == batch and k and isinstance(r, float)]
        if len(points) < 2:
            continue
        mean_k = sum(k for k, _ in points) / len(points)
        mean_t = sum(t for _, t in points) / len(points)
        slope = sum((k - mean_k) * (t - mean_t) for k, t in points) / sum((k - mean_k) ** 2 for k, _ in points)
        print(f"  {presets[name]['arch']} ({name}): step_seconds: {mean_t - slope * mean_k:.5f}, "
              f"step_seconds_per_run: {slope:.5f}")


def main() -> None:
    """Parse the flags, measure the table, print the projection."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small models, 3 steps per epoch (a smoke test)")
    ap.add_argument("--config", default="config.yaml", help="the paper grid and its model presets")
    ap.add_argument("--budget-s", type=float, default=360.0, help="seconds for the whole table (the rest is skipped)")
    ap.add_argument("--only", nargs="+", choices=TABLE_MODELS + GRID_ONLY_MODELS, help="time only these models")
    ap.add_argument("--kernels", default="exact", choices=KERNELS, help="cuDNN settings, plain and fused alike")
    args = ap.parse_args()
    config = yaml.safe_load(open(args.config))
    presets = {name: config["models"][name] for name in args.only or TABLE_MODELS + GRID_ONLY_MODELS}
    models = {name: (p["arch"], {**preset_options(p), **(TINY[name] if args.tiny else {})})
              for name, p in presets.items()}
    setup = Setup(device=torch.device(args.device), models=models,
                  batches=(4, 8) if args.tiny else (4, 8, 16), ks=(1, 2) if args.tiny else (1, 8, 32),
                  steps=3 if args.tiny else 20, size=16 if args.tiny else 32, repeats=2 if args.tiny else 3,
                  measure_s=1.0 if args.tiny else 6.0, total_s=args.budget_s)
    name = torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu"
    print(f"{'TINY models, ' if args.tiny else ''}{name}, torch {torch.__version__}, {setup.steps} steps per timed "
          f"epoch, best of {setup.repeats}; model-steps/s = K x steps/s")
    with kernel_flags(args.kernels):  # plain and fused alike, as the engine trains
        rates = table(setup)
    resource_fit(rates, presets, setup.batches[-1])
    by_cost = {cost_key(presets[name]["arch"], preset_options(presets[name])): r for name, r in rates.items()}
    unit = "GPU-hours" if setup.device.type == "cuda" else "CPU-hours"
    projection(by_cost, list(grid.all_runs(config).values()), setup.ks, unit)


if __name__ == "__main__":
    main()
