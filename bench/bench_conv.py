"""Packed convolution benchmark: every candidate of lowrank.models.packed_conv, forward and backward, for the
paper's ResNet-18 and VGG-16 layer shapes at B = 4, 8, 16 and K = 8, 32, side by side in one process under the
engine's `exact` kernels; prints a table and, with --write, the fastest correct candidate per shape into
lowrank/models/conv_table.json (the table PackedConv2d dispatches on: data, outside the source hash).

Before it is timed, each candidate is checked at the layer's own shape on the device: its float32 output and
gradients against the per-run convolutions in float64 (max relative deviation), and twice the same bytes. A
candidate that fails either (or runs out of memory) is not chosen, nor one less than 5 % faster than the grouped
convolution. Timings are the best of a few rounds, each
candidate timed in turn within a round (so all see the same load), of `--iters` forward + backward passes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from bench.common import TINY, best_seconds, preset_options
from lowrank import models
from lowrank.models import packed_conv
from lowrank.models.packed_conv import CANDIDATES, DEFAULT, TABLE_FILE, LayerShape
from lowrank.engine.device import KERNELS, kernel_flags

TABLE_MODELS = ("resnet18_leaky", "vgg16_bn")  # config.yaml presets whose convolutions are measured
TOLERANCE = 1e-4  # max relative deviation of a float32 candidate from the float64 per-run convolutions
MARGIN = 1.05  # a candidate replaces the grouped convolution only when at least 5 % faster (not on timing noise)


@dataclass(frozen=True)
class Result:
    """One candidate at one layer shape: milliseconds per forward + backward (None: not timed), max relative
    deviation from the float64 reference, whether two runs gave the same bytes, and why it failed (or '')."""

    ms: float | None
    deviation: float
    deterministic: bool
    error: str = ""

    @property
    def ok(self) -> bool:
        """Correct, deterministic and timed: eligible for the table."""
        return self.ms is not None and self.deterministic and self.deviation <= TOLERANCE and not self.error


def conv_shapes(arch: str, options: dict, batch: int, k: int, size: int, device: str) -> Counter:
    """The LayerShapes of a model's convolutions in a pack of k at batch size `batch` (each with how often the
    model runs it), and whether its input needs a gradient: a forward pass on the meta device."""
    model = models.build(arch, image_size=size, **options).to("meta").train()
    shapes: Counter = Counter()

    def record(conv: torch.nn.Conv2d, inputs: tuple) -> None:
        x = inputs[0]
        o, c, kh, kw = conv.weight.shape
        shape = LayerShape(device, k, batch, c * conv.groups, x.shape[2], x.shape[3], o, (kh, kw), conv.stride,
                           conv.padding, conv.dilation, conv.groups, conv.bias is not None)
        shapes[shape, x.requires_grad] += 1

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_pre_hook(record)
    model(torch.empty(batch, 3, size, size, device="meta"))
    return shapes


def tensors(shape: LayerShape, input_grad: bool, dtype: torch.dtype, device: torch.device) -> tuple:
    """Random packed input, stacked weights and biases of one layer shape, and its output gradient."""
    gen = torch.Generator(device).manual_seed(0)
    k = shape.runs
    x = torch.randn(shape.batch, k * shape.channels, shape.height, shape.width, generator=gen, device=device,
                    dtype=dtype).requires_grad_(input_grad)
    w = torch.randn(k, shape.out_channels, shape.channels // shape.groups, *shape.kernel, generator=gen,
                    device=device, dtype=dtype).requires_grad_()
    b = torch.randn(k, shape.out_channels, generator=gen, device=device, dtype=dtype).requires_grad_() \
        if shape.bias else None
    y = packed_conv.grouped(x.detach(), w.detach(), None if b is None else b.detach(), shape.stride, shape.padding,
                            shape.dilation, shape.groups)
    return x, w, b, torch.randn(y.shape, generator=gen, device=device, dtype=dtype)


def forward_backward(name: str, shape: LayerShape, x, w, b, gy) -> list[torch.Tensor]:
    """Candidate `name`'s output and the gradients of its inputs that require one."""
    y = CANDIDATES[name](x, w, b, shape.stride, shape.padding, shape.dilation, shape.groups)
    leaves = [t for t in (x, w, b) if t is not None and t.requires_grad]
    return [y.detach(), *torch.autograd.grad(y, leaves, gy)]


def per_run_reference(shape: LayerShape, x, w, b, gy) -> list[torch.Tensor]:
    """The K runs' own convolutions (F.conv2d on each run's channels), output and gradients."""
    c = shape.channels
    y = torch.cat([F.conv2d(x[:, i * c:(i + 1) * c], w[i], None if b is None else b[i], shape.stride,
                            shape.padding, shape.dilation, shape.groups) for i in range(shape.runs)], dim=1)
    leaves = [t for t in (x, w, b) if t is not None and t.requires_grad]
    return [y.detach(), *torch.autograd.grad(y, leaves, gy)]


def deviation(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Max over tensors of max |got - want| / max |want|."""
    return max(((g.double() - t).abs().max() / t.abs().max().clamp_min(1e-300)).item() for g, t in zip(got, want))


def check(shape: LayerShape, input_grad: bool, device: torch.device) -> dict[str, tuple[float, bool]]:
    """Each candidate's (deviation from the float64 per-run reference, same bytes twice) in float32."""
    x, w, b, gy = tensors(shape, input_grad, torch.float32, device)
    wide = [None if t is None else t.detach().double().requires_grad_(t.requires_grad) for t in (x, w, b, gy)]
    want = per_run_reference(shape, *wide)
    del wide
    checked = {}
    for name in CANDIDATES:
        first, second = forward_backward(name, shape, x, w, b, gy), forward_backward(name, shape, x, w, b, gy)
        checked[name] = deviation(first, want), all(torch.equal(p, q) for p, q in zip(first, second))
    return checked


def measure(shape: LayerShape, input_grad: bool, device: torch.device, repeats: int, iters: int) -> dict[str, Result]:
    """Check then time every candidate at one layer shape; out-of-memory candidates are marked, not fatal."""
    try:
        checked = check(shape, input_grad, device)
        x, w, b, gy = tensors(shape, input_grad, torch.float32, device)
    except torch.cuda.OutOfMemoryError:
        return {name: Result(None, float("nan"), False, "OOM") for name in CANDIDATES}
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()

    def passes(name: str):
        return lambda: [forward_backward(name, shape, x, w, b, gy) for _ in range(iters)]

    results = {}
    try:
        seconds = best_seconds({name: passes(name) for name in CANDIDATES}, device, repeats)
    except torch.cuda.OutOfMemoryError:
        seconds = {}
    for name, (dev, same) in checked.items():
        ms = 1e3 * seconds[name] / iters if name in seconds else None
        results[name] = Result(ms, dev, same, "" if ms is not None else "OOM")
    return results


def fastest(results: dict[str, Result]) -> str:
    """The fastest eligible candidate if it beats an eligible default (grouped) by MARGIN, else the default."""
    eligible = {name: r.ms for name, r in results.items() if r.ok}
    if not eligible:
        return DEFAULT
    best = min(eligible, key=eligible.get)
    return best if DEFAULT not in eligible or eligible[best] * MARGIN < eligible[DEFAULT] else DEFAULT


def label(shape: LayerShape) -> str:
    """A layer shape in a few characters: C>O kxk/s@HxW (+b with bias)."""
    return (f"{shape.channels}>{shape.out_channels} {shape.kernel[0]}x{shape.kernel[1]}/{shape.stride[0]}"
            f"@{shape.height}x{shape.width}{'+b' if shape.bias else ''}")


def cell(result: Result) -> str:
    """A candidate's table cell: ms, or why it is not eligible."""
    if result.error:
        return result.error
    mark = "" if result.ok else (" nondet" if not result.deterministic else " WRONG")
    return f"{result.ms:.3f}{mark}"


def write_table(choices: dict[LayerShape, dict[str, Result]], path: Path, header: str) -> None:
    """Write the non-default choices as the JSON table packed_conv.read_table reads (atomically), each with its
    layer in words and its measured milliseconds per forward + backward; shapes not listed run the grouped one."""
    entries = [json.dumps({"layer": label(shape), "shape": shape._asdict(), "choice": fastest(results),
                           "ms": {n: round(r.ms, 3) for n, r in results.items() if r.ms is not None}})
               for shape, results in choices.items() if fastest(results) != DEFAULT]
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:  # one line per entry, so a re-measured table diffs line by line
        f.write(f'{{"measured": {json.dumps(header)},\n "choices": [\n' + ",\n".join(entries) + "\n]}\n")
    os.replace(tmp, path)


def main() -> None:
    """Parse the flags, measure every model's layer shapes, print the table, write the choices if asked."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small models, B = 2, K = 2 (a smoke test)")
    ap.add_argument("--config", default="config.yaml", help="the model presets")
    ap.add_argument("--kernels", default="exact", choices=KERNELS, help="cuDNN settings")
    ap.add_argument("--budget-s", type=float, default=90.0, help="seconds for the whole table (the rest is skipped)")
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds (the best counts)")
    ap.add_argument("--iters", type=int, default=3, help="forward + backward passes per timing")
    ap.add_argument("--write", nargs="?", const=TABLE_FILE, type=Path, metavar="PATH",
                    help=f"write the chosen table (default {TABLE_FILE})")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes B (default 4 8 16; --tiny: 2)")
    ap.add_argument("--ks", type=int, nargs="+", help="pack sizes K (default 8 32; --tiny: 2)")
    args = ap.parse_args()
    for flag, values in (("--batches", args.batches), ("--ks", args.ks), ("--repeats", [args.repeats]),
                         ("--iters", [args.iters])):
        if values and min(values) < 1:
            ap.error(f"{flag} must be at least 1")
    config = yaml.safe_load(open(args.config))
    device = torch.device(args.device)
    batches = args.batches or ((2,) if args.tiny else (4, 8, 16))
    ks, size = args.ks or ((2,) if args.tiny else (8, 32)), 8 if args.tiny else 32
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    header = (f"Measured on {name}, torch {torch.__version__}, kernels {args.kernels}{', TINY models' if args.tiny else ''}"
              f", {time.strftime('%Y-%m-%d', time.gmtime())}.")
    names = list(CANDIDATES)
    print(header, f"ms per forward + backward (best of {args.repeats} x {args.iters}); a candidate deviating by "
          f"more than {TOLERANCE:g} (WRONG) or not repeating its bytes (nondet) is never chosen, "
          f"nor one less than {100 * (MARGIN - 1):.0f} % faster than {DEFAULT}")
    print(f"{'model':>15} {'B':>3} {'K':>3} {'layer':>22} {'n':>2} " + " ".join(f"{n:>14}" for n in names)
          + f" {'max dev':>8} {'chosen':>13} {'speed-up':>8}")
    deadline = time.perf_counter() + args.budget_s
    measured: dict[LayerShape, dict[str, Result]] = {}
    with kernel_flags(args.kernels):
        print(f"(cudnn.deterministic={torch.backends.cudnn.deterministic}, cudnn.allow_tf32="
              f"{torch.backends.cudnn.allow_tf32}, matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32})")
        for model in TABLE_MODELS:
            preset = config["models"][model]
            options = {**preset_options(preset), **(TINY[model] if args.tiny else {})}
            for batch in batches:
                for k in ks:
                    net_ms = Counter()
                    for (shape, input_grad), count in conv_shapes(preset["arch"], options, batch, k, size,
                                                                  device.type).items():
                        if shape not in measured and time.perf_counter() > deadline:
                            print(f"{model:>15} {batch:>3} {k:>3} {label(shape):>22} {count:>2} skipped (budget)")
                            continue
                        if shape not in measured:
                            measured[shape] = measure(shape, input_grad, device, args.repeats, args.iters)
                        results = measured[shape]
                        best = fastest(results)
                        dev = max(r.deviation for r in results.values())
                        grouped_ms, best_ms = results[DEFAULT].ms, results[best].ms
                        gain = f"{grouped_ms / best_ms:8.2f}" if grouped_ms and best_ms else f"{'':>8}"
                        if grouped_ms and best_ms:
                            net_ms.update({"grouped": count * grouped_ms, "chosen": count * best_ms})
                        print(f"{model:>15} {batch:>3} {k:>3} {label(shape):>22} {count:>2} "
                              + " ".join(f"{cell(results[n]):>14}" for n in names)
                              + f" {dev:8.1e} {best:>13} {gain}", flush=True)
                    if net_ms:
                        print(f"{model:>15} {batch:>3} {k:>3} all convolutions: grouped {net_ms['grouped']:.2f} ms, "
                              f"chosen {net_ms['chosen']:.2f} ms per pack step ({net_ms['grouped'] / net_ms['chosen']:.2f}x)")
    if args.write:
        write_table(measured, args.write, header)
        print(f"wrote {sum(fastest(r) != DEFAULT for r in measured.values())} non-default choices to {args.write}")


if __name__ == "__main__":
    main()
