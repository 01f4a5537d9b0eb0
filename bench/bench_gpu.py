"""GPU benchmark: the paper's ResNet-18, VGG-16-BN and ViT at B = 4, 8, 16 trained four ways: a plain per-run
loop, N plain processes sharing the device (N = 4, 8), fused packs of K = 1, 8, 32 runs stepped eagerly, and the
same packs stepped by CUDA graphs (`gpu_step: graph`); with images/s, model FLOPs utilisation, and the GPU-hours
the whole paper grid (config.yaml) would take each way.

The plain loop trains its runs one after another, so its model-steps/s do not depend on K: it is timed once per
model and batch size (one run). N processes sharing the device each train one plain run over the same window
(bench.sharing); their rates add up. Fused rates are K x pack steps per second. Every plain and fused timing is
the best of a few epochs after a warm-up epoch, bounded by a time budget; combinations that run out of memory or
time are shown as such. Utilisation is images/s x training FLOPs per image (3 x one image's forward FLOPs,
counted by torch.utils.flop_counter) over the device's peak (--peak-tflops). `--device cpu --tiny` runs the same
code on small models and tiny data, to show that it runs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from bench.common import TINY, best_seconds, configs, fused_epoch, load, plain_epoch, preset_options
from bench.sharing import Sharing
from lowrank import grid, models
from lowrank.config import RunConfig
from lowrank.models import packed_conv
from lowrank.engine.device import KERNELS, kernel_flags

TABLE_MODELS = ("resnet18_leaky", "vgg16_bn", "vit_small")  # config.yaml `models` entries of the table
GRID_ONLY_MODELS = ("mlp_bn_10_100", "mlp_bn_2_10000", "res_bn_5_500")  # timed at one B, for the projection
H200_FP32_TFLOPS = 67.0  # NVIDIA's H200 float32 peak without TF32 (dense)
Method = tuple[str, int]  # ("plain", 1), ("shared", N processes), ("fused" or "graph", K runs per pack)
PACKED = {"fused": "eager", "graph": "graph"}  # the pack methods and the engine's step each times
PACK_SIZE_SLACK = 0.05  # pack_size: the smallest K within 5 % of the best measured K's model-steps/s


@dataclass(frozen=True)
class Setup:
    """What one invocation measures: models, batch sizes, methods, and how much time each timing gets."""

    device: torch.device
    models: dict[str, tuple[str, dict]]  # config.yaml model name -> (arch, options it is timed with)
    batches: tuple[int, ...]
    methods: tuple[Method, ...]
    steps: int  # steps per timed epoch
    size: int  # image side
    repeats: int
    measure_s: float  # budget of one timing (the sharing window is half of it)
    total_s: float  # budget of the whole table
    peak_tflops: float  # the device's float32 peak, for utilisation


def cost_key(arch: str, options: dict) -> tuple:
    """Runs whose models differ only in activation cost the same per step."""
    return arch, tuple(sorted((k, v) for k, v in options.items() if k != "activation"))


def method_label(method: Method) -> str:
    """'plain', '4 procs', 'fused K=8', 'graph K=8'."""
    kind, n = method
    return {"plain": "plain", "shared": f"{n} procs"}.get(kind, f"{kind} K={n}")


def train_flops_per_image(arch: str, options: dict, size: int) -> float:
    """Training FLOPs of one image: 3 x its forward FLOPs (convolutions and matrix products, counted on the meta
    device by torch.utils.flop_counter), the usual estimate of forward + backward."""
    model = models.build(arch, image_size=size, **options).to("meta").eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, size, size, device="meta"))
    return 3.0 * counter.get_total_flops()


def measure(setup: Setup, sharing: Sharing, arch: str, options: dict, batch: int, method: Method) -> float | str:
    """Model-steps/s of one method at one batch size; 'OOM' when it does not fit."""
    kind, n = method
    if kind == "shared":
        return sharing.measure(n, arch, options, batch, setup.steps, setup.size, setup.measure_s / 2)
    cfgs = configs(arch, options, n, batch, batch * setup.steps, setup.size)
    if setup.device.type == "cuda":  # the peak the caching allocator reserves from here: a graph's pool included
        torch.cuda.reset_peak_memory_stats(setup.device)
    try:
        data = load(cfgs[0], setup.device)
        epoch = (fused_epoch(cfgs, data, setup.device, PACKED[kind]) if kind in PACKED
                 else plain_epoch(cfgs, data, setup.device))
        seconds = best_seconds({"epoch": epoch}, setup.device, setup.repeats, setup.measure_s)["epoch"]
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    finally:
        if setup.device.type == "cuda":
            torch.cuda.empty_cache()
    return n * setup.steps / seconds


def table(setup: Setup, sharing: Sharing) -> dict[str, dict]:
    """Measure and print every (model, B, method); return {model name: {(B, method): model-steps/s}}."""
    rates: dict[str, dict] = {}
    deadline = time.perf_counter() + setup.total_s
    print(f"{'model':>16} {'B':>4} {'method':>11} {'steps/s':>8} {'images/s':>9} {'MFU':>7} {'x plain':>8} "
          f"{'x best procs':>12}{'  peak memory' if setup.device.type == 'cuda' else ''}")
    for name, (arch, options) in setup.models.items():
        measured = rates.setdefault(name, {})
        flops = train_flops_per_image(arch, options, setup.size)
        for batch in setup.batches if name in TABLE_MODELS else setup.batches[-1:]:
            for method in setup.methods:
                over = time.perf_counter() > deadline
                measured[batch, method] = "skipped" if over else measure(setup, sharing, arch, options, batch, method)
                peak = (torch.cuda.max_memory_reserved(setup.device) / 2**30
                        if setup.device.type == "cuda" and method[0] != "shared" and not over else None)
                print(row(name, batch, method, measured, flops, setup.peak_tflops, peak), flush=True)
    return rates


def row(name: str, batch: int, method: Method, measured: dict, flops: float, peak_tflops: float,
        peak_gib: float | None = None) -> str:
    """One table row: model-steps/s, images/s, the fraction of peak, the ratio to the plain loop and (for a pack)
    to the best number of sharing processes at the same B, and the peak device memory (how large a pack fits)."""
    rate = measured[batch, method]
    if not isinstance(rate, float):
        return f"{name:>16} {batch:>4} {method_label(method):>11} {rate:>8}"
    images = rate * batch
    plain = measured.get((batch, ("plain", 1)))
    shared = [r for (b, (kind, _)), r in measured.items() if b == batch and kind == "shared" and isinstance(r, float)]
    x_plain = f"{rate / plain:8.2f}" if isinstance(plain, float) else f"{'':>8}"
    x_shared = f"{rate / max(shared):12.2f}" if method[0] in PACKED and shared else ""
    memory = f" {peak_gib:6.1f} GiB" if peak_gib is not None else ""
    return (f"{name:>16} {batch:>4} {method_label(method):>11} {rate:>8.0f} {images:>9.0f} "
            f"{images * flops / (peak_tflops * 1e12):>7.2%} {x_plain} {x_shared:>12}{memory}")


def step_seconds(rates: dict, run: RunConfig, method: Method) -> float | None:
    """Seconds per model-step of `run` by `method`: from the largest measured B <= its batch size (else the
    smallest), scaled in proportion to the batch size; None if nothing usable was measured."""
    measured = {b: r for (b, m), r in rates.get(cost_key(run.arch, run.arch_options), {}).items()
                if m == method and isinstance(r, float)}
    if not measured:
        return None
    below = [b for b in measured if b <= run.batch_size]
    b = max(below) if below else min(measured)
    return run.batch_size / b / measured[b]


def projection(rates: dict, runs: list[RunConfig], methods: tuple[Method, ...], unit: str) -> None:
    """Print the device-hours of all runs by each method: epochs x steps per epoch x seconds per model-step."""
    steps = {run.run_id: run.epochs * run.steps_per_epoch for run in runs}
    print(f"paper grid: {len(runs)} runs, {sum(steps.values()):,} model-steps "
          f"(per-step times scaled in proportion to B from the nearest measured B, CIFAR-shaped data)")
    for method in methods:
        seconds = [step_seconds(rates, run, method) for run in runs]
        missing = sum(s is None for s in seconds)
        hours = sum(steps[run.run_id] * s for run, s in zip(runs, seconds) if s is not None) / 3600
        note = f" (without {missing} runs whose model was not measured)" if missing else ""
        print(f"  {method_label(method):>11}: {hours:10.1f} {unit}{note}")


def resource_rows(rates: dict[str, dict], presets: dict, batch: int, resources: dict, method: str) -> list[str]:
    """config.yaml `resources` rows, one per architecture, for pack `method` ("fused" or "graph") measured at
    `batch`: pack_size, the smallest K whose model-steps/s are within PACK_SIZE_SLACK of the best K's (a larger
    pack gains little and schedules coarser), and the least-squares line through the seconds per pack step
    against K (step_seconds + K x step_seconds_per_run); memory, CPUs and GPUs as the config has them. Models
    sharing an architecture (MLP-BN-10-100 and MLP-BN-2-10000) share its row: the smallest pack_size and the
    largest step times of theirs."""
    fits: dict[str, list[tuple[str, int, float, float]]] = {}
    for name, measured in rates.items():
        points = {k: r for (b, (kind, k)), r in measured.items()
                  if b == batch and kind == method and isinstance(r, float)}
        if len(points) < 2:
            continue
        best = max(points.values())
        size = min(k for k, r in points.items() if r >= (1 - PACK_SIZE_SLACK) * best)
        times = [(k, k / r) for k, r in points.items()]
        mean_k = sum(k for k, _ in times) / len(times)
        mean_t = sum(t for _, t in times) / len(times)
        slope = sum((k - mean_k) * (t - mean_t) for k, t in times) / sum((k - mean_k) ** 2 for k, _ in times)
        fits.setdefault(presets[name]["arch"], []).append((name, size, mean_t - slope * mean_k, slope))
    rows = []
    for arch, models_ in fits.items():
        kept = {k: v for k, v in {**resources["default"], **resources.get(arch, {})}.items()
                if k in ("mem_mb", "cpus", "gpus")}
        fields = ", ".join(f"{k}: {v}" for k, v in kept.items())
        rows.append(f"  {arch}: {{{fields}, pack_size: {min(m[1] for m in models_)}, "
                    f"step_seconds: {max(m[2] for m in models_):.5f}, "
                    f"step_seconds_per_run: {max(m[3] for m in models_):.5f}}}   # {', '.join(m[0] for m in models_)}")
    return rows


def main() -> None:
    """Parse the flags, measure the table, print the resource fit and the projection."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small models, 3 steps per epoch (a smoke test)")
    ap.add_argument("--config", default="config.yaml", help="the paper grid and its model presets")
    ap.add_argument("--budget-s", type=float, default=360.0, help="seconds for the whole table (the rest is skipped)")
    ap.add_argument("--only", nargs="+", choices=TABLE_MODELS + GRID_ONLY_MODELS, help="time only these models")
    ap.add_argument("--kernels", default="exact", choices=KERNELS, help="cuDNN settings, every method alike")
    ap.add_argument("--procs", type=int, nargs="+", help="numbers of plain processes sharing the device "
                    "(default 4 8; --tiny: 2)")
    ap.add_argument("--ks", type=int, nargs="+", help="pack sizes K, fused and graph (default 1 8 32; --tiny: 1 2); "
                    "larger K until OOM shows where the throughput curve ends")
    ap.add_argument("--peak-tflops", type=float, default=H200_FP32_TFLOPS,
                    help="the device's float32 peak in TFLOP/s, for utilisation (default: H200 without TF32)")
    args = ap.parse_args()
    if args.procs and min(args.procs) < 1:
        ap.error("--procs: every number of processes must be at least 1")
    if args.ks and min(args.ks) < 1:
        ap.error("--ks: every pack size must be at least 1")
    if args.peak_tflops <= 0:
        ap.error("--peak-tflops must be positive")
    config = yaml.safe_load(open(args.config))
    presets = {name: config["models"][name] for name in args.only or TABLE_MODELS + GRID_ONLY_MODELS}
    models_ = {name: (p["arch"], {**preset_options(p), **(TINY[name] if args.tiny else {})})
               for name, p in presets.items()}
    procs = tuple(args.procs or ((2,) if args.tiny else (4, 8)))
    ks = tuple(args.ks or ((1, 2) if args.tiny else (1, 8, 32)))
    methods = (("plain", 1), *(("shared", n) for n in procs), *((kind, k) for kind in PACKED for k in ks))
    setup = Setup(device=torch.device(args.device), models=models_, batches=(4, 8) if args.tiny else (4, 8, 16),
                  methods=methods, steps=3 if args.tiny else 20, size=16 if args.tiny else 32,
                  repeats=2 if args.tiny else 3, measure_s=1.0 if args.tiny else 6.0, total_s=args.budget_s,
                  peak_tflops=args.peak_tflops)
    name = torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu"
    print(f"{'TINY models, ' if args.tiny else ''}{name}, torch {torch.__version__}, kernels {args.kernels}, "
          f"{setup.steps} steps per timed epoch, best of {setup.repeats}; model-steps/s = K x steps/s; "
          f"MFU against {args.peak_tflops:g} TFLOP/s; packed convolutions: "
          f"{sum(shape[0] == setup.device.type for shape in packed_conv.CHOICES)} layer shapes switched from grouped "
          f"by lowrank/models/conv_table.json"
          f"{'; graph rows step eagerly on a CPU' if setup.device.type == 'cpu' else ''}")
    with Sharing(max(procs), setup.device, args.kernels) as sharing, kernel_flags(args.kernels):
        rates = table(setup, sharing)
    for method, step in PACKED.items():
        print(f"config.yaml resources for gpu_step: {step}, measured at B={setup.batches[-1]} (seconds per pack step "
              f"= step_seconds + K x step_seconds_per_run; pack_size: the smallest K within {PACK_SIZE_SLACK:.0%} "
              f"of the best):")
        print("\n".join(resource_rows(rates, presets, setup.batches[-1], config["resources"], method)))
    by_cost = {cost_key(presets[name]["arch"], preset_options(presets[name])): r for name, r in rates.items()}
    unit = "GPU-hours" if setup.device.type == "cuda" else "CPU-hours"
    projection(by_cost, list(grid.all_runs(config).values()), methods, unit)


if __name__ == "__main__":
    main()
