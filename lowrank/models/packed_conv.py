"""Ways to compute the convolution of K runs in the packed layout, all exact (no TF32, deterministic), and the
choice among them per layer shape.

Every candidate takes the packed input x [B, K·C, H, W], the K runs' stacked weights [K, O, C/groups, kh, kw],
their biases [K, O] (or None), and the per-run stride, padding, dilation and groups of one nn.Conv2d; it returns
[B, K·O, H', W'], run-major, equal to the K runs' own convolutions concatenated along channels (up to rounding):

* `grouped`: one grouped convolution with groups = K·groups, NCHW (the engine's convolution until measured);
* `channels_last`: the same grouped convolution on channels-last (NHWC) tensors, cuDNN's preferred layout;
* `unfold_bmm`: the K runs' patches unfolded (im2col) and multiplied by their weights in one batched matrix
  product over the K·groups (run, group) pairs; autograd's backward is bmm and fold (col2im, a gather per pixel),
  both deterministic;
* `per_run`: K ordinary convolutions on the runs' channel slices, concatenated (K launches, dense kernels).

`conv` runs the candidate that the measured table (TABLE_FILE, read into CHOICES) names for the call's LayerShape,
and `grouped` for every shape it does not name; `python -m bench.bench_conv --write` measures and writes that table.
It is data, not code: re-measuring it changes no source hash (lowrank.provenance), so no run's code version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

Pair = tuple[int, int]
PackedConv = Callable[[Tensor, Tensor, "Tensor | None", Pair, Pair, Pair, int], Tensor]


class LayerShape(NamedTuple):
    """What the choice of a packed convolution depends on: device type, pack size, input and layer shape."""

    device: str
    runs: int
    batch: int
    channels: int  # per run
    height: int
    width: int
    out_channels: int  # per run
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int
    bias: bool


def grouped(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
            groups: int) -> Tensor:
    """One grouped convolution over the K runs (groups = K·groups), in the input's memory layout."""
    k = weight.shape[0]
    flat_bias = None if bias is None else bias.reshape(-1)
    return F.conv2d(x, weight.reshape(-1, *weight.shape[2:]), flat_bias, stride, padding, dilation, groups * k)


def channels_last(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
                  groups: int) -> Tensor:
    """The grouped convolution on channels-last input and weight; the output stays channels-last."""
    k = weight.shape[0]
    flat = weight.reshape(-1, *weight.shape[2:]).contiguous(memory_format=torch.channels_last)
    flat_bias = None if bias is None else bias.reshape(-1)
    return F.conv2d(x.contiguous(memory_format=torch.channels_last), flat, flat_bias, stride, padding, dilation,
                    groups * k)


def unfold_bmm(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
               groups: int) -> Tensor:
    """Patches [B, K·C·kh·kw, L] times each (run, group)'s weight [O/g, C/g·kh·kw] as one batched product over the
    K·g pairs, with the B·L patch columns side by side."""
    k, o, cg, kh, kw = weight.shape
    b, h, w = x.shape[0], x.shape[2], x.shape[3]
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    pairs, rows = k * groups, cg * kh * kw
    cols = F.unfold(x, (kh, kw), dilation, padding, stride)  # [B, K·g·rows, L]: run-major, then group, channel
    cols = cols.view(b, pairs, rows, -1).permute(1, 2, 0, 3).reshape(pairs, rows, -1)  # [K·g, rows, B·L]
    w_pairs = weight.reshape(pairs, o // groups, rows)
    y = torch.bmm(w_pairs, cols) if bias is None else torch.baddbmm(bias.reshape(pairs, -1, 1), w_pairs, cols)
    return y.view(pairs * (o // groups), b, out_h, out_w).transpose(0, 1)


def per_run(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
            groups: int) -> Tensor:
    """K ordinary convolutions, one per run's channel slice, concatenated along channels."""
    k = weight.shape[0]
    runs = x.chunk(k, dim=1)
    return torch.cat([F.conv2d(runs[i], weight[i], None if bias is None else bias[i], stride, padding, dilation,
                               groups) for i in range(k)], dim=1)


CANDIDATES: dict[str, PackedConv] = {"grouped": grouped, "channels_last": channels_last, "unfold_bmm": unfold_bmm,
                                     "per_run": per_run}
DEFAULT = "grouped"
# the measured table: {"measured": on what and when, "choices": [{"shape": LayerShape fields, "choice", "ms"}, ...]}
TABLE_FILE = Path(__file__).with_name("conv_table.json")


def read_table(path: Path) -> dict[LayerShape, str]:
    """The candidate a measured table (bench.bench_conv.write_table) chose per layer shape, by LayerShape."""
    table = json.loads(Path(path).read_text())
    return {LayerShape(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry["shape"].items()}):
            entry["choice"] for entry in table["choices"]}


CHOICES = read_table(TABLE_FILE)


def layer_shape(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
                groups: int) -> LayerShape:
    """The LayerShape of one packed convolution call."""
    k, o, _, kh, kw = weight.shape
    b, kc, h, w = x.shape
    return LayerShape(x.device.type, k, b, kc // k, h, w, o, (kh, kw), tuple(stride), tuple(padding),
                      tuple(dilation), groups, bias is not None)


def choice(shape: LayerShape) -> str:
    """The candidate the table names for this shape; the grouped convolution for any shape it does not name."""
    return CHOICES.get(shape, DEFAULT)


def conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair, dilation: Pair,
         groups: int) -> Tensor:
    """The K runs' convolution by the candidate chosen for this layer shape."""
    name = choice(layer_shape(x, weight, bias, stride, padding, dilation, groups))
    return CANDIDATES[name](x, weight, bias, stride, padding, dilation, groups)
