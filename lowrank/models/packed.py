"""A pack of K copies of a network as one network: its layers swapped for packed ones that take stacked [K, ...]
parameters (put in place by `bind`, or passed by torch.func.functional_call) and carry the K runs side by side in
the channel dimension.

Activations of a pack have the layout of one network's with K times the channels, run-major: an image batch is
[B, K·C, H, W], features are [B, K·F], ViT tokens are [B, N, K·D]. In that layout a convolution of the K runs is
one grouped convolution (or an equal form measured faster for its shape: packed_conv), a BatchNorm of the K runs
is one BatchNorm over K·C channels (each run's statistics over its own batch), and everything that acts per
channel or per element (activations, pooling, residual sums, dropout) or keeps the channel dimension last (flatten
of a pooled map) needs no change. Linear layers run as one batched matrix product over the K runs. The networks'
own modules stay plain PyTorch; `pack` only swaps the classes of the layers in a parameter-free (meta) copy, so no
model code knows about packs.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import packed_conv
from .vit import AttentionCore, Patchify, Tokens


class PackedLinear(nn.Linear):
    """K Linear layers as one batched matrix product: [..., K·in] -> [..., K·out], weight [K, out, in], bias
    [K, out].

    A trainer that steps the weight itself (from a weight that does not require grad) may give the layer a `tape`
    list: in training mode each call appends (layer, x [K, M, in], y [K, M, out]); the gradient with respect to y,
    asked of autograd along with the parameters', then gives the weight's gradient as the product grad_y^T x."""

    tape: list | None = None

    def forward(self, x: Tensor) -> Tensor:
        k, out_features, in_features = self.weight.shape
        xk = x.reshape(-1, k, in_features).transpose(0, 1)
        wt = self.weight.transpose(1, 2)
        y = torch.bmm(xk, wt) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), xk, wt)
        if self.training and self.tape is not None:
            if not y.requires_grad:
                raise ValueError("a Linear layer without bias on an input without gradient has no gradient to tape")
            self.tape.append((self, xk.detach(), y))
        return y.transpose(0, 1).reshape(*x.shape[:-1], k * out_features)


class PackedConv2d(nn.Conv2d):
    """K Conv2d layers as one: [B, K·C, H, W] -> [B, K·O, H', W'], by the packed convolution chosen for the layer's
    shape (packed_conv.conv; the grouped convolution unless measured otherwise)."""

    def forward(self, x: Tensor) -> Tensor:
        return packed_conv.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class PackedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """K BatchNorm layers as one over K·C channels: each run normalised by (and tracking) its own statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), self.weight.reshape(-1),
                            self.bias.reshape(-1), self.training, self.momentum, self.eps)


class PackedLayerNorm(nn.LayerNorm):
    """K LayerNorm layers over the last dimension: [..., K·D] with weight and bias [K, D]."""

    def forward(self, x: Tensor) -> Tensor:
        k, d = self.weight.shape
        xk = x.reshape(*x.shape[:-1], k, d)
        return (F.layer_norm(xk, (d,), eps=self.eps) * self.weight + self.bias).reshape(x.shape)


class PackedPatchify(Patchify):
    """Patches of K runs' images: [B, K·C, H, W] -> [B, N, K·p·p·C], each run's patches as it would cut them."""

    def forward(self, images: Tensor) -> Tensor:
        b, kc, h, w = images.shape
        k = kc // self.channels
        patches = super().forward(images.reshape(b * k, self.channels, h, w))  # [B·K, N, p·p·C]
        return patches.reshape(b, k, *patches.shape[1:]).transpose(1, 2).reshape(b, patches.shape[1], -1)


class PackedTokens(Tokens):
    """K runs' CLS tokens [K, 1, 1, D] and positions [K, 1, N+1, D] prepended to / added onto [B, N, K·D]."""

    def forward(self, x: Tensor) -> Tensor:
        k, _, n, d = self.pos_embedding.shape
        cls = self.cls_token.permute(1, 2, 0, 3).reshape(1, 1, k * d)
        pos = self.pos_embedding.permute(1, 2, 0, 3).reshape(1, n, k * d)
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1) + pos


class PackedAttentionCore(AttentionCore):
    """Self-attention of K runs: q, k, v features [B, N, K·3·heads·dim_head] -> [B, N, K·heads·dim_head]."""

    def forward(self, qkv: Tensor) -> Tensor:
        b, n, features = qkv.shape
        k = features // (3 * self.heads * self.dim_head)
        per_run = super().forward(qkv.reshape(b, n, k, -1).transpose(1, 2).reshape(b * k, n, -1))
        return per_run.reshape(b, k, n, -1).transpose(1, 2).reshape(b, n, -1)


PACKED: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: PackedLinear, nn.Conv2d: PackedConv2d, nn.BatchNorm1d: PackedBatchNorm,
    nn.BatchNorm2d: PackedBatchNorm, nn.LayerNorm: PackedLayerNorm, Patchify: PackedPatchify,
    Tokens: PackedTokens, AttentionCore: PackedAttentionCore,
}


def pack(model: nn.Module) -> nn.Module:
    """A parameter-free copy of `model` that runs K copies at once in the packed layout (any K; parameters and
    buffers stacked [K, ...] come in through bind or functional_call). Raises if a layer has no packed form."""
    packed = copy.deepcopy(model).to("meta")
    for name, module in packed.named_modules():
        kind = type(module)
        if kind in PACKED:
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not (
                    module.affine and module.track_running_stats and module.momentum is not None):
                raise ValueError(f"{name}: only affine BatchNorm with running statistics and a momentum packs")
            if isinstance(module, nn.LayerNorm) and (module.weight is None or module.bias is None):
                raise ValueError(f"{name}: only LayerNorm with weight and bias packs")
            if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
                raise ValueError(f"{name}: only zero-padded Conv2d packs")
            module.__class__ = PACKED[kind]
        elif module._parameters or module._buffers:
            raise ValueError(f"{name or type(model).__name__}: {kind.__name__} holds tensors and has no packed form")
    return packed


def bind(model: nn.Module, tensors: dict[str, Tensor]) -> None:
    """Put stacked [K, ...] tensors in place of a packed model's parameters and buffers of the same names, so that
    calling the model runs on them: what functional_call does on every call, done once."""
    for name, tensor in tensors.items():
        prefix, _, attr = name.rpartition(".")
        module = model.get_submodule(prefix)
        (module._parameters if attr in module._parameters else module._buffers)[attr] = tensor


def to_packed(x: Tensor) -> Tensor:
    """K runs' inputs [K, B, C, ...] in the packed layout [B, K·C, ...]."""
    k, b, c = x.shape[:3]
    return x.transpose(0, 1).reshape(b, k * c, *x.shape[3:])


def shared_input(x: Tensor, k: int) -> Tensor:
    """One input [B, C, ...] given to all K runs, in the packed layout [B, K·C, ...]."""
    return x.repeat(1, k, *([1] * (x.dim() - 2)))


def per_run(y: Tensor, k: int) -> Tensor:
    """Packed outputs [B, K·F] as [K, B, F]."""
    return y.reshape(y.shape[0], k, -1).transpose(0, 1)


def gather_packed(xs: Tensor, idx: Tensor) -> Tensor:
    """The samples xs[idx[k, b]] of K runs' index rows idx [K, B], gathered straight into the packed layout
    [B, K·C, ...] (equal to to_packed(xs[idx]), by one index_select: ~10x faster than advanced indexing on a CPU)."""
    k, b = idx.shape
    return xs.index_select(0, idx.t().reshape(-1)).view(b, k * xs.shape[1], *xs.shape[2:])
