"""Model zoo: shapes, exact parameter counts, rank-layer lists, errors, and packs of K copies (packed layout)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, stack_module_state

from lowrank.models import ARCHS, RankLayer, arch_options, build, rank_layers
from lowrank.models.packed import PackedLinear, bind, gather_packed, pack, per_run, shared_input, to_packed
from lowrank.models.vit import Patchify

# small versions of every architecture, for forward passes on 2 CPU cores
SMALL = {
    "resnet18": dict(width=4),
    "vgg16_bn": dict(width=8),
    "mlp_bn": dict(depth=3, width=16),
    "res_bn": dict(depth=2, width=16),
    "vit": dict(dim=32, depth=2, heads=2, dim_head=8, mlp_dim=32),
}


def on_meta(name: str, **kwargs) -> torch.nn.Module:
    """Build at full size without allocating or initialising weights."""
    with torch.device("meta"):
        return build(name, **kwargs)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_archs_and_defaults():
    assert ARCHS == ("resnet18", "vgg16_bn", "mlp_bn", "res_bn", "vit")
    assert arch_options("resnet18") == {"activation": "relu", "width": 64}
    assert arch_options("vgg16_bn") == {"width": 64}
    assert arch_options("mlp_bn") == {"depth": 10, "width": 100, "activation": "relu"}
    assert arch_options("res_bn") == {"depth": 5, "width": 500, "activation": "relu"}
    assert arch_options("vit") == {"patch": 4, "dim": 512, "depth": 6, "heads": 8, "dim_head": 64, "mlp_dim": 512,
                                   "dropout": 0.1, "emb_dropout": 0.1}


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("channels,size", [(3, 32), (1, 32), (3, 16)])
def test_forward_shape(name, channels, size):
    torch.manual_seed(0)
    model = build(name, in_channels=channels, image_size=size, num_classes=7, **SMALL[name])
    out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    model.eval()
    assert model(torch.randn(1, channels, size, size)).shape == (1, 7)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_activation_option(activation):
    model = build("resnet18", image_size=8, activation=activation, width=2)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def conv_bn(c_in: int, c_out: int, k: int = 3, bias: bool = False) -> int:
    return c_in * c_out * k * k + bias * c_out + 2 * c_out


def linear(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_in * d_out + bias * d_out


def test_param_count_resnet18():
    def block(c_in, c_out):
        shortcut = conv_bn(c_in, c_out, k=1) if c_in != c_out else 0
        return conv_bn(c_in, c_out) + conv_bn(c_out, c_out) + shortcut

    stages = [block(a, b) + block(b, b) for a, b in [(64, 64), (64, 128), (128, 256), (256, 512)]]
    expected = conv_bn(3, 64) + sum(stages) + linear(512, 10)
    assert expected == 11_173_962
    assert n_params(on_meta("resnet18")) == expected
    assert n_params(on_meta("resnet18", in_channels=1)) == expected - 2 * 64 * 9


def test_param_count_vgg16_bn():
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    expected = sum(conv_bn(a, b, bias=True) for a, b in zip(channels, channels[1:])) + linear(512, 10)
    assert expected == 14_728_266
    assert n_params(on_meta("vgg16_bn")) == expected


def test_param_count_mlps():
    assert n_params(on_meta("mlp_bn")) == (3072 * 100 + 100 + 200) + 9 * (100 * 100 + 100 + 200) + 1010 == 401_210
    big = (3072 * 10_000 + 30_000) + (10_000 * 10_000 + 30_000) + 100_010
    assert n_params(on_meta("mlp_bn", depth=2, width=10_000)) == big == 130_880_010
    res = (3072 * 500 + 500 + 1000) + 5 * 2 * (500 * 500 + 500 + 1000) + 5010
    assert n_params(on_meta("res_bn")) == res == 4_057_510


def test_param_count_vit():
    dim, depth = 512, 6
    block = 2 * dim + 3 * dim * dim + linear(dim, dim) + 2 * dim + 2 * linear(dim, dim)  # LN+qkv+out, LN+ff1+ff2
    expected = linear(48, dim) + dim + 65 * dim + depth * block + 2 * dim + linear(dim, 10)
    assert n_params(on_meta("vit")) == expected == 9_523_722


def test_rank_layers_resnet18():
    layers = rank_layers(on_meta("resnet18"))
    assert len(layers) == 17
    assert layers[0] == RankLayer("conv1", "conv1.weight", (64, 27), 1024)
    assert layers[-1] == RankLayer("layer4.1.conv2", "layer4.1.conv2.weight", (512, 4608), 16)
    assert [layer.m for layer in layers] == [1024] * 5 + [256] * 4 + [64] * 4 + [16] * 4
    assert not any("shortcut" in layer.name for layer in layers)
    assert rank_layers(on_meta("resnet18", in_channels=1))[0].shape == (64, 9)


def test_rank_layers_vgg16_bn():
    layers = rank_layers(on_meta("vgg16_bn"))
    assert len(layers) == 13
    assert (layers[0].shape, layers[0].m) == ((64, 27), 1024)
    assert (layers[-1].shape, layers[-1].m) == ((512, 4608), 4)
    assert [layer.m for layer in layers] == [1024] * 2 + [256] * 2 + [64] * 3 + [16] * 3 + [4] * 3


@pytest.mark.parametrize("depth", [1, 2, 10])
def test_rank_layers_mlps(depth):
    mlp = rank_layers(on_meta("mlp_bn", depth=depth))
    assert len(mlp) == depth and all(layer.m == 1 for layer in mlp)
    assert [layer.shape for layer in mlp] == [(100, 3072)] + [(100, 100)] * (depth - 1)
    res = rank_layers(on_meta("res_bn", depth=depth))
    assert len(res) == 2 * depth and all(layer.shape == (500, 500) and layer.m == 1 for layer in res)


def test_rank_layers_vit():
    layers = rank_layers(on_meta("vit"))
    assert len(layers) == 1 + 4 * 6
    assert (layers[0].name, layers[0].shape, layers[0].m) == ("patch_embed", (512, 48), 64)
    assert (layers[1].name, layers[1].shape, layers[1].m) == ("blocks.0.attn.to_qkv", (1536, 512), 65)
    assert [layer.shape for layer in layers[2:5]] == [(512, 512)] * 3
    assert len(rank_layers(on_meta("vit", depth=2))) == 9


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_rank_layer_params_exist(name, channels):
    model = on_meta(name, in_channels=channels)
    params = dict(model.named_parameters())
    for layer in rank_layers(model):
        weight = params[layer.param]
        assert tuple(weight.reshape(weight.shape[0], -1).shape) == layer.shape


def test_patchify_order():
    images = torch.randn(2, 3, 8, 8)
    patches = Patchify(3, 4)(images)  # (2, 4 patches, 4*4*3)
    b, c, i, j, p1, p2 = 1, 2, 1, 0, 3, 1
    assert patches[b, i * 2 + j, (p1 * 4 + p2) * 3 + c] == images[b, c, i * 4 + p1, j * 4 + p2]


def test_unknown_arch_and_option():
    with pytest.raises(ValueError, match="unknown architecture 'lenet'; choose one of: resnet18, vgg16_bn"):
        build("lenet")
    with pytest.raises(ValueError, match="unknown architecture"):
        arch_options("lenet")
    with pytest.raises(ValueError, match="unknown option 'depth' for architecture 'resnet18'.*activation, width"):
        build("resnet18", depth=3)


@pytest.mark.parametrize("name,options,message", [
    ("resnet18", dict(width=0), "width must be a positive integer"),
    ("vgg16_bn", dict(width=2.5), "width must be a positive integer"),
    ("mlp_bn", dict(activation="tanh"), "activation must be one of relu, leaky_relu"),
    ("res_bn", dict(depth=-1), "depth must be a positive integer"),
    ("vit", dict(patch=5), "patch must divide image_size"),
    ("vit", dict(dropout=1.0), "dropout must be a dropout probability"),
    ("mlp_bn", dict(image_size=0), "image_size must be a positive integer"),
])
def test_bad_values(name, options, message):
    with pytest.raises(ValueError, match=message):
        build(name, **options)


@pytest.mark.parametrize("name", ARCHS)
def test_pack_matches_separate_copies(name):
    """K = 3 copies run as one packed network give each copy's own outputs, gradients and BatchNorm statistics."""
    torch.manual_seed(0)
    options = SMALL[name] | (dict(dropout=0.0, emb_dropout=0.0) if name == "vit" else {})
    copies = [build(name, image_size=16, **options).double().train() for _ in range(3)]
    params, buffers = stack_module_state(copies)
    params = {n: p.detach().requires_grad_() for n, p in params.items()}
    x = torch.randn(3, 4, 3, 16, 16, dtype=torch.float64)

    out = per_run(functional_call(pack(copies[0]), (params, buffers), (to_packed(x),)), 3)
    grads = torch.autograd.grad(out.square().sum(), list(params.values()))

    for k, model in enumerate(copies):
        expected = model(x[k])
        torch.testing.assert_close(out[k], expected, rtol=0, atol=1e-10)
        expected_grads = torch.autograd.grad(expected.square().sum(), list(model.parameters()))
        for n, g, e in zip(params, grads, expected_grads):
            torch.testing.assert_close(g[k], e, rtol=0, atol=1e-9, msg=n)
        for key, buffer in model.named_buffers():
            torch.testing.assert_close(buffers[key][k], buffer, rtol=0, atol=1e-10)
    if name != "vit":
        key = next(key for key in buffers if key.endswith("running_mean"))
        assert not torch.equal(buffers[key][0], torch.zeros_like(buffers[key][0]))  # the stacked stats did move


@pytest.mark.parametrize("name", ["mlp_bn", "vit"])
def test_bound_pack_tapes_each_linear_weights_gradient_as_a_product(name):
    """A packed network with its tensors bound in place runs as functional_call does, and each Linear layer's tape
    entry (input x, output y) gives that weight's gradient as grad_y^T x, per run."""
    torch.manual_seed(0)
    options = SMALL[name] | (dict(dropout=0.0, emb_dropout=0.0) if name == "vit" else {})
    copies = [build(name, image_size=8, **options).double().train() for _ in range(3)]
    params, buffers = stack_module_state(copies)
    params = {n: p.detach().requires_grad_() for n, p in params.items()}
    x = to_packed(torch.randn(3, 4, 3, 8, 8, dtype=torch.float64))
    expected = functional_call(pack(copies[0]), (params, copy.deepcopy(buffers)), (x,))

    packed, tape = pack(copies[0]), []
    bind(packed, {**params, **buffers})
    linears = [m for m in packed.modules() if isinstance(m, PackedLinear)]
    for m in linears:
        m.tape = tape
    out = packed(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert [layer for layer, _, _ in tape] == linears  # each layer once, in the order it ran
    grads = torch.autograd.grad(out.square().sum(), [m.weight for m in linears] + [y for _, _, y in tape])
    for (_, x_in, _), weight_grad, grad_y in zip(tape, grads, grads[len(linears):]):
        torch.testing.assert_close(grad_y.transpose(1, 2) @ x_in, weight_grad, rtol=0, atol=1e-12)


def test_gather_packed_is_indexing_then_packing():
    xs = torch.randn(20, 3, 4, 4)
    idx = torch.randint(0, 20, (3, 5))  # 3 runs' batches of 5
    assert torch.equal(gather_packed(xs, idx), to_packed(xs[idx]))


@pytest.mark.parametrize("name", ARCHS)
def test_pack_in_eval_mode_on_a_shared_input(name):
    torch.manual_seed(0)
    copies = [build(name, image_size=16, **SMALL[name]).double().eval() for _ in range(2)]
    params, buffers = stack_module_state(copies)
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    out = per_run(functional_call(pack(copies[0]).eval(), (params, buffers), (shared_input(x, 2),)), 2)
    for k, model in enumerate(copies):
        torch.testing.assert_close(out[k], model(x), rtol=0, atol=1e-10)


def test_pack_rejects_a_layer_without_packed_form():
    with pytest.raises(ValueError, match="0: GRU holds tensors and has no packed form"):
        pack(torch.nn.Sequential(torch.nn.GRU(4, 4)))
    with pytest.raises(ValueError, match="only affine BatchNorm"):
        pack(torch.nn.BatchNorm1d(4, affine=False))
    with pytest.raises(ValueError, match="only LayerNorm with weight and bias"):
        pack(torch.nn.LayerNorm(4, bias=False))
    with pytest.raises(ValueError, match="only zero-padded Conv2d"):
        pack(torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"))


def test_vit_dropout_differs_across_copies():
    """Dropout in a pack draws different masks for the copies (one mask over the packed activations)."""
    torch.manual_seed(0)
    model = build("vit", image_size=8, **SMALL["vit"]).double().train()
    params, buffers = stack_module_state([model, copy.deepcopy(model)])
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    out = per_run(functional_call(pack(model), (params, buffers), (shared_input(x, 2),)), 2)
    assert not torch.allclose(out[0], out[1])
