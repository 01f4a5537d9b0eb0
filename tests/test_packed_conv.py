"""Every packed convolution candidate equals the K runs' own convolutions (output and every gradient) for
ResNet-18- and VGG-16-like layer shapes, deterministically; the table switches PackedConv2d between them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lowrank.models import packed, packed_conv
from lowrank.models.packed_conv import CANDIDATES, LayerShape
from test_pack import configs, trained

# (C, O, kernel, stride, padding, bias, side): a ResNet-18 stem, block convs and 1x1 shortcut, a VGG-16 conv (bias)
SHAPES = {
    "resnet_stem": (3, 4, 3, 1, 1, False, 8),
    "resnet_3x3_s2": (4, 6, 3, 2, 1, False, 8),
    "resnet_shortcut_1x1_s2": (4, 6, 1, 2, 0, False, 8),
    "resnet_3x3_s1_odd": (6, 6, 3, 1, 1, False, 5),
    "vgg_3x3_bias": (4, 8, 3, 1, 1, True, 4),
    "vgg_3x3_bias_1x1_map": (8, 8, 3, 1, 1, True, 1),
}


def inputs(shape: tuple, k: int, dtype: torch.dtype, batch: int = 2) -> tuple:
    """Packed input [B, K·C, H, W], stacked weights [K, O, C, kh, kw] and biases [K, O] (or None), all requiring
    grad, and the layer's stride and padding."""
    c, o, kernel, stride, padding, bias, side = shape
    gen = torch.Generator().manual_seed(k * 100 + c)
    x = torch.randn(batch, k * c, side, side, generator=gen, dtype=dtype).requires_grad_()
    w = torch.randn(k, o, c, kernel, kernel, generator=gen, dtype=dtype).requires_grad_()
    b = torch.randn(k, o, generator=gen, dtype=dtype).requires_grad_() if bias else None
    return x, w, b, (stride, stride), (padding, padding)


def forward_backward(fn, x, w, b, stride, padding) -> list[torch.Tensor]:
    """Output and the gradients of x, weight (and bias) for a fixed output gradient."""
    y = fn(x, w, b, stride, padding, (1, 1), 1)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(y.dtype)
    leaves = [x, w] if b is None else [x, w, b]
    return [y.detach(), *torch.autograd.grad(y, leaves, gy)]


def reference(x, w, b, stride, padding, dilation, groups) -> torch.Tensor:
    """The K runs' plain convolutions, each on its own channels, concatenated."""
    k, c = w.shape[0], x.shape[1] // w.shape[0]
    return torch.cat([F.conv2d(x[:, i * c:(i + 1) * c], w[i], None if b is None else b[i], stride, padding,
                               dilation, groups) for i in range(k)], dim=1)


@pytest.mark.parametrize("name", CANDIDATES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3])
def test_candidate_equals_per_run_convolutions(name: str, shape: str, k: int) -> None:
    """float64: output, input, weight and bias gradients within 1e-12 of the plain per-run convolutions."""
    args = inputs(SHAPES[shape], k, torch.float64)
    got = forward_backward(CANDIDATES[name], *args)
    want = forward_backward(reference, *args)
    assert [g.shape for g in got] == [t.shape for t in want]
    for g, t, what in zip(got, want, ("output", "grad x", "grad weight", "grad bias")):
        assert (g - t).abs().max().item() <= 1e-12 * t.abs().max().item(), f"{name} {shape} K={k}: {what}"


@pytest.mark.parametrize("name", CANDIDATES)
def test_candidate_float32_close_and_deterministic(name: str) -> None:
    """float32 at K = 3: within 1e-5 (relative) of the float64 reference, and the same bytes when repeated."""
    shape = SHAPES["resnet_3x3_s2"]
    args32 = inputs(shape, 3, torch.float32)
    args64 = [a.detach().double().requires_grad_() if torch.is_tensor(a) else a for a in args32]
    want = forward_backward(reference, *args64)
    first, second = forward_backward(CANDIDATES[name], *args32), forward_backward(CANDIDATES[name], *args32)
    for a, b, t in zip(first, second, want):
        assert torch.equal(a, b)
        assert (a.double() - t).abs().max().item() <= 1e-5 * t.abs().max().item()


def test_per_run_groups_match_grouped_convolution() -> None:
    """A layer with groups = 2 per run: unfold_bmm and per_run equal the grouped convolution in float64."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3 * 4, 6, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 6, 2, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    want = reference(x, w, b, (2, 2), (1, 1), (1, 1), 2)
    for name in ("grouped", "unfold_bmm", "per_run"):
        got = CANDIDATES[name](x, w, b, (2, 2), (1, 1), (1, 1), 2)
        assert (got - want).abs().max().item() <= 1e-12 * want.abs().max().item(), name


def packed_layer(k: int) -> tuple[torch.nn.Module, torch.Tensor, LayerShape]:
    """A packed 4->6 3x3 stride-2 conv layer bound to K runs' weights, an input, and the call's LayerShape."""
    layer = packed.pack(torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False))
    packed.bind(layer, {"weight": torch.randn(k, 6, 4, 3, 3)})
    shape = LayerShape("cpu", k, 2, 4, 8, 8, 6, (3, 3), (2, 2), (1, 1), (1, 1), 1, False)
    return layer, torch.randn(2, k * 4, 8, 8), shape


def spy(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the name of every candidate PackedConv2d calls."""
    for name, fn in dict(CANDIDATES).items():
        monkeypatch.setitem(CANDIDATES, name, lambda *a, _n=name, _f=fn: calls.append(_n) or _f(*a))


def test_default_is_the_grouped_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no table entry for the shape, PackedConv2d runs the grouped convolution."""
    calls: list[str] = []
    spy(calls, monkeypatch)
    monkeypatch.setattr(packed_conv, "CHOICES", {})
    layer, x, _ = packed_layer(3)
    layer(x)
    assert calls == ["grouped"]


def test_table_entry_switches_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table entry for exactly the call's shape switches it (a shape differing only in K does not)."""
    calls: list[str] = []
    spy(calls, monkeypatch)
    layer, x, shape = packed_layer(3)
    monkeypatch.setattr(packed_conv, "CHOICES", {shape: "unfold_bmm", shape._replace(runs=2): "per_run"})
    assert packed_conv.layer_shape(x, layer.weight, None, (2, 2), (1, 1), (1, 1), 1) == shape
    layer(x)
    monkeypatch.setattr(packed_conv, "CHOICES", {shape._replace(runs=2): "per_run"})
    layer(x)
    assert calls == ["unfold_bmm", "grouped"]


def test_shipped_table_names_known_candidates() -> None:
    """Every entry of the shipped table is a full LayerShape naming an existing candidate."""
    for shape, name in packed_conv.CHOICES.items():
        assert len(shape) == len(LayerShape._fields) and name in CANDIDATES


@pytest.mark.parametrize("name", [n for n in CANDIDATES if n != "grouped"])
@pytest.mark.parametrize("arch", ["resnet18", "vgg16_bn"])
def test_engine_trains_the_same_with_any_candidate(name: str, arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A float64 pack of 3 trained 2 epochs (lowrank.engine.pack.Pack) with every convolution switched to one candidate
    ends within 1e-10 of the same pack on the grouped convolution: weights, momentum and BatchNorm buffers."""
    cfgs = configs(arch, "float64", n_train=16)
    reference, _ = trained(cfgs, epochs=2)
    monkeypatch.setattr(packed_conv, "choice", lambda shape: name)
    switched, _ = trained(cfgs, epochs=2)
    for k in range(len(cfgs)):
        pairs = [(switched.run_vector(k), reference.run_vector(k)),
                 (switched.run_vector(k, momentum=True), reference.run_vector(k, momentum=True))]
        pairs += [(switched.buffers[b][k], reference.buffers[b][k]) for b in reference.net.buffer_names]
        for got, want in pairs:
            assert (got - want).abs().max().item() <= 1e-10 * want.abs().max().item(), f"{name} {arch} run {k}"
