"""The benchmarks' own logic: bench_conv flags a wrong or non-deterministic candidate and never chooses it, picks
the fastest correct one, writes a table PackedConv2d reads; the --tiny paths of bench_conv and bench_gpu run."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest
import torch

from bench import bench_conv, bench_gpu, bench_live, profile_step
from bench.bench_conv import Result, fastest
from bench.sharing import Sharing
from lowrank.models import packed_conv
from lowrank.models.packed_conv import CANDIDATES, LayerShape

CPU = torch.device("cpu")
CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
SHAPE = LayerShape("cpu", 2, 2, 3, 6, 6, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True)


def test_fastest_takes_the_quickest_eligible_candidate() -> None:
    """Wrong, non-deterministic and out-of-memory candidates are never chosen, however fast; a correct one is
    chosen only when more than 5 % faster than the grouped convolution."""
    results = {"grouped": Result(1.0, 1e-7, True), "channels_last": Result(0.1, 1e-2, True),
               "unfold_bmm": Result(0.2, 1e-7, False), "per_run": Result(None, float("nan"), False, "OOM")}
    assert fastest(results) == "grouped"
    assert fastest({**results, "per_run": Result(0.9, 1e-7, True)}) == "per_run"
    assert fastest({**results, "per_run": Result(0.96, 1e-7, True)}) == "grouped"
    assert fastest({"grouped": Result(None, float("nan"), False, "OOM"), "per_run": Result(3.0, 1e-7, True)}) \
        == "per_run"


def test_measure_flags_wrong_and_nondeterministic_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A candidate off by a permutation deviates by O(1) (WRONG); one whose rounding differs from call to call does
    not repeat its bytes; the real candidates pass both checks."""
    scales = itertools.cycle([1 + 1e-6, 1 + 2e-6])  # two float32 values: consecutive calls always differ
    monkeypatch.setitem(CANDIDATES, "flipped", lambda *a: packed_conv.grouped(*a).flip(1))
    monkeypatch.setitem(CANDIDATES, "noisy", lambda *a: packed_conv.grouped(*a) * next(scales))
    results = bench_conv.measure(SHAPE, True, CPU, repeats=1, iters=1)
    assert results["flipped"].deviation > 0.1 and results["flipped"].deterministic and not results["flipped"].ok
    assert results["noisy"].deviation < 1e-4 and not results["noisy"].deterministic and not results["noisy"].ok
    for name in ("grouped", "channels_last", "unfold_bmm", "per_run"):
        assert results[name].ok and results[name].deviation < 1e-5, name
    assert fastest(results) not in ("flipped", "noisy")


def test_written_table_switches_packed_conv(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table write_table writes holds the non-default choices, keyed so that packed_conv.choice finds them."""
    other = SHAPE._replace(batch=4)
    results = {SHAPE: {"grouped": Result(1.0, 1e-7, True), "unfold_bmm": Result(0.5, 1e-7, True)},
               other: {"grouped": Result(1.0, 1e-7, True), "unfold_bmm": Result(0.99, 1e-7, True)}}
    path = tmp_path / "table.json"
    bench_conv.write_table(results, path, "test")
    choices = packed_conv.read_table(path)
    monkeypatch.setattr(packed_conv, "CHOICES", choices)
    assert packed_conv.choice(SHAPE) == "unfold_bmm" and packed_conv.choice(other) == "grouped"
    assert len(choices) == 1


def test_conv_shapes_of_resnet18() -> None:
    """ResNet-18 at width 4 on 8x8 images: the stem, 4 stages of two blocks, 3 strided 1x1 shortcuts (20 convs),
    the stem's input without gradient."""
    shapes = bench_conv.conv_shapes("resnet18", {"width": 4}, 2, 3, 8, "cpu")
    assert sum(shapes.values()) == 20
    stem = LayerShape("cpu", 3, 2, 3, 8, 8, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, False)
    assert shapes[stem, False] == 1
    assert shapes[stem._replace(channels=8, height=4, width=4, out_channels=16, kernel=(1, 1), stride=(2, 2),
                                padding=(0, 0)), True] == 1


def run_main(module, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """A benchmark's main() with these command-line flags (and the repository's config.yaml), its printed output."""
    monkeypatch.setattr(sys, "argv", [module.__name__, "--config", str(CONFIG), *argv])
    module.main()
    return capsys.readouterr().out


def test_bench_conv_tiny_runs_and_writes(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`bench_conv --tiny --device cpu --write PATH`: every layer of both nets timed, a loadable table written."""
    out = run_main(bench_conv, ["--tiny", "--device", "cpu", "--repeats", "1", "--iters", "1", "--write",
                                str(tmp_path / "t.json")], monkeypatch, capsys)
    table = out.split("matmul.allow_tf32=False)")[1]
    assert out.count("all convolutions:") == 2 and "WRONG" not in table and "nondet" not in table
    assert all(name in CANDIDATES and len(shape) == len(LayerShape._fields)
               for shape, name in packed_conv.read_table(tmp_path / "t.json").items())


def test_train_flops_per_image_counts_matrix_products() -> None:
    """MLP-BN-2-16 on 3x4x4 images: 3 x 2 x (48·16 + 16·16 + 16·10) multiply-adds = 7,104 FLOPs; the paper's
    ResNet-18 on 32x32 images: 3 x 1.11 GFLOP."""
    assert bench_gpu.train_flops_per_image("mlp_bn", {"depth": 2, "width": 16}, 4) == 3 * 2 * 1184
    assert bench_gpu.train_flops_per_image("resnet18", {}, 32) == pytest.approx(3 * 1.1108e9, rel=1e-4)


def test_row_gives_images_utilisation_and_ratios() -> None:
    """100 model-steps/s at B = 4 of a 1-GFLOP image on a 1-TFLOP/s device: 400 images/s, 40 % of peak; 2x the
    plain loop, 1.25x the best of the sharing processes (80 with 4, 60 with 8; an OOM ignored)."""
    measured = {(4, ("plain", 1)): 50.0, (4, ("shared", 4)): 80.0, (4, ("shared", 8)): 60.0,
                (8, ("shared", 4)): 500.0, (4, ("fused", 8)): 100.0, (4, ("fused", 32)): "OOM"}
    line = bench_gpu.row("resnet18_leaky", 4, ("fused", 8), measured, 1e9, 1.0)
    assert line.split() == ["resnet18_leaky", "4", "fused", "K=8", "100", "400", "40.00%", "2.00", "1.25"]
    assert bench_gpu.row("resnet18_leaky", 4, ("fused", 32), measured, 1e9, 1.0).split()[-1] == "OOM"
    assert bench_gpu.row("resnet18_leaky", 4, ("shared", 8), measured, 1e9, 1.0).split()[-1] == "1.20"
    measured[4, ("graph", 8)] = 160.0
    line = bench_gpu.row("resnet18_leaky", 4, ("graph", 8), measured, 1e9, 1.0)
    assert line.split() == ["resnet18_leaky", "4", "graph", "K=8", "160", "640", "64.00%", "3.20", "2.00"]
    with_memory = bench_gpu.row("resnet18_leaky", 4, ("graph", 8), measured, 1e9, 1.0, peak_gib=3.25)
    assert with_memory.split()[-3:] == ["2.00", "3.2", "GiB"] and with_memory.startswith(line.rstrip())


def test_resource_rows_fit_step_times_and_pick_the_smallest_near_best_pack() -> None:
    """Pack steps of exactly 6 ms + 4 ms per run give step_seconds 0.006 and 0.004 per run; K = 8 (210.5
    model-steps/s) is more than 5 % below K = 32 (238.8), so pack_size is 32; a K = 16 within 5 % of K = 32 wins."""
    rate = {k: k / (0.006 + 0.004 * k) for k in (1, 8, 32)}  # 100.0, 210.5, 238.8 model-steps/s
    presets = {"resnet18_leaky": {"arch": "resnet18"}}
    resources = {"default": {"mem_mb": 1000, "cpus": 2, "gpus": 1, "step_seconds": 1.0},
                 "resnet18": {"mem_mb": 32000, "cpus": 8}}
    rates = {"resnet18_leaky": {(16, ("fused", k)): r for k, r in rate.items()} | {(4, ("fused", 1)): 1.0}}
    row, = bench_gpu.resource_rows(rates, presets, 16, resources, "fused")
    assert row == ("  resnet18: {mem_mb: 32000, cpus: 8, gpus: 1, pack_size: 32, "
                   "step_seconds: 0.00600, step_seconds_per_run: 0.00400}   # resnet18_leaky")
    assert bench_gpu.resource_rows(rates, presets, 16, resources, "graph") == []  # no graph timing
    rates["resnet18_leaky"][16, ("fused", 16)] = 0.96 * rate[32]
    assert "pack_size: 16," in bench_gpu.resource_rows(rates, presets, 16, resources, "fused")[0]
    # a second model of the same architecture shares its row: the smaller pack, the slower steps
    presets["wide"] = {"arch": "resnet18"}
    rates["wide"] = {(16, ("fused", k)): k / (0.010 + 0.002 * k) for k in (1, 8)}
    row, = bench_gpu.resource_rows(rates, presets, 16, resources, "fused")
    assert "pack_size: 8, step_seconds: 0.01000, step_seconds_per_run: 0.00400}   # resnet18_leaky, wide" in row


def test_bench_gpu_tiny_runs_every_method(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`bench_gpu --tiny --device cpu` on one model: plain, 1 process sharing the device and fused rows, each
    with a rate, and a projection line per method."""
    out = run_main(bench_gpu, ["--tiny", "--device", "cpu", "--only", "mlp_bn_10_100", "--procs", "1"],
                   monkeypatch, capsys)
    rows = re.findall(r"^ +mlp_bn_10_100 +8 +(plain|\d+ procs|(?:fused|graph) K=\d+) +(\d+) ", out, flags=re.M)
    labels = ["plain", "1 procs", "fused K=1", "fused K=2", "graph K=1", "graph K=2"]
    assert [method for method, _ in rows] == labels
    assert all(int(rate) > 0 for _, rate in rows)
    for label in (f"{label}:" for label in labels):
        assert f"{label}" in out and "CPU-hours" in out.split(label)[1].splitlines()[0]


def test_sharing_reports_a_failed_worker_and_goes_on() -> None:
    """A worker whose run cannot be built makes the measurement 'failed' (not a hang or a crash); the same pool
    then measures a valid run at a positive rate."""
    with Sharing(1, CPU, "exact") as sharing:
        assert sharing.measure(1, "no_such_arch", {}, 4, 2, 8, 0.1) == "failed"
        assert sharing.measure(1, "mlp_bn", {"depth": 1, "width": 8}, 4, 2, 8, 0.2) > 0


@pytest.mark.parametrize("module, argv, flag", [("bench_conv", ["--ks", "0"], "--ks"),
                                                ("bench_conv", ["--iters", "0"], "--iters"),
                                                ("bench_gpu", ["--procs", "4", "0"], "--procs"),
                                                ("bench_gpu", ["--ks", "8", "0"], "--ks"),
                                                ("bench_gpu", ["--peak-tflops", "0"], "--peak-tflops")])
def test_bad_flags_stop_before_any_work(module: str, argv: list[str], flag: str, monkeypatch, capsys) -> None:
    """A count below 1 or a non-positive peak stops at parsing, naming the flag."""
    with pytest.raises(SystemExit):
        run_main({"bench_conv": bench_conv, "bench_gpu": bench_gpu}[module], ["--device", "cpu", *argv],
                 monkeypatch, capsys)
    assert flag in capsys.readouterr().err


def test_profile_step_tiny_prints_the_step_and_its_operators(monkeypatch, capsys) -> None:
    """`profile_step --tiny --device cpu`: the wall time per pack step, the busy time, and the operator table."""
    out = run_main(profile_step, ["--tiny", "--device", "cpu", "--k", "2", "--batch", "4", "--steps", "2",
                                  "--rows", "3", "--step", "graph"], monkeypatch, capsys)
    wall, busy = map(float, re.search(r"B=4 K=2 on cpu, kernels exact, graph steps: ([\d.]+) ms per pack step; "
                                      r"operators busy ([\d.]+) ms", out).groups())
    assert wall > 0 and busy > 0 and "aten::" in out
    graph, eager = map(float, re.search(r"wall ms per pack step: graph ([\d.]+), eager ([\d.]+)", out).groups())
    assert graph == wall and eager > 0  # the profiled step mode is timed first, the other after it
    operators = int(re.search(r"an eager step runs (\d+) ATen operators", out).group(1))
    assert 100 < operators < 1000  # a TINY ResNet-18 pack step: forward, backward and the SGD update


def test_bench_live_times_the_largest_pack_of_each_architecture(capsys) -> None:
    """`bench_live --epochs 2`: one row per architecture of the paper's grid, its largest pack's K and rank layers,
    a write per 10 epochs (evaluations and checkpoints every 10), its time and its share of the predicted epoch."""
    bench_live.main(["--epochs", "2", "--repeats", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[:4] for row in rows] == [["mlp_bn", "6", "10", "2"], ["res_bn", "1", "10", "2"],
                                        ["resnet18", "8", "17", "2"], ["vgg16_bn", "1", "13", "2"],
                                        ["vit", "6", "25", "2"]]
    assert all(float(row[4]) > 0 and row[6] == "0.10" for row in rows)
    resnet = next(row for row in rows if row[0] == "resnet18")
    assert float(resnet[5]) == pytest.approx(500 * 6250 * (0.0062 + 0.0047 * 8) / 500, abs=0.1)  # B = 8, K = 8
