"""A small vision transformer (vit-pytorch style, pre-LayerNorm, CLS token) for the paper's Figs 9-10."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import RankLayer, check_positive, check_probability, matrices


class Patchify(nn.Module):
    """(B, C, H, W) -> (B, H/p·W/p, p·p·C): row-major patches, each flattened as (p1 p2 c) like vit-pytorch."""

    def __init__(self, channels: int, patch: int):
        super().__init__()
        self.channels, self.patch = channels, patch

    def forward(self, images: Tensor) -> Tensor:
        b, c, h, w = images.shape
        p = self.patch
        x = images.reshape(b, c, h // p, p, w // p, p)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


class Tokens(nn.Module):
    """Prepend the learned CLS token and add the learned positions: (B, N, D) -> (B, N+1, D)."""

    def __init__(self, num_patches: int, dim: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding


class AttentionCore(nn.Module):
    """Multi-head scaled dot-product attention on q, k, v features laid out (3, heads, dim_head), as vit-pytorch's
    chunk(3) + 'b n (h d)': (B, N, 3·heads·dim_head) -> (B, N, heads·dim_head)."""

    def __init__(self, heads: int, dim_head: int, dropout: float):
        super().__init__()
        self.heads, self.dim_head, self.dropout = heads, dim_head, dropout

    def forward(self, qkv: Tensor) -> Tensor:
        b, n, _ = qkv.shape
        q, k, v = qkv.reshape(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.softmax(q @ k.transpose(-2, -1) * self.dim_head**-0.5, dim=-1)
        attn = F.dropout(attn, self.dropout, self.training)  # vit-pytorch also drops attention weights
        return (attn @ v).transpose(1, 2).reshape(b, n, -1)


class Attention(nn.Module):
    """LN -> multi-head self-attention (to_qkv without bias) -> to_out -> dropout."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.core = AttentionCore(heads, dim_head, dropout)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: Tensor) -> Tensor:
        out = self.core(self.to_qkv(self.norm(x)))
        return F.dropout(self.to_out(out), self.dropout, self.training)


class FeedForward(nn.Module):
    """LN -> Linear(dim, mlp_dim) -> GELU -> dropout -> Linear(mlp_dim, dim) -> dropout."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.dropout(F.gelu(self.fc1(self.norm(x))), self.dropout, self.training)
        return F.dropout(self.fc2(x), self.dropout, self.training)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(x), then x + ff(x)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.attn = Attention(dim, heads, dim_head, dropout)
        self.ff = FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.ff(x)


class ViT(nn.Module):
    """Linear patch embedding + CLS token + learned positions -> depth blocks -> LN -> head on the CLS token."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, *, patch: int = 4, dim: int = 512,
                 depth: int = 6, heads: int = 8, dim_head: int = 64, mlp_dim: int = 512, dropout: float = 0.1,
                 emb_dropout: float = 0.1):
        super().__init__()
        check_positive(patch=patch, dim=dim, depth=depth, heads=heads, dim_head=dim_head, mlp_dim=mlp_dim)
        check_probability(dropout=dropout, emb_dropout=emb_dropout)
        if image_size % patch:
            raise ValueError(f"patch must divide image_size, got patch={patch} for image_size={image_size}")
        self.emb_dropout = emb_dropout
        self.num_patches = (image_size // patch) ** 2
        self.patchify = Patchify(in_channels, patch)
        self.patch_embed = nn.Linear(in_channels * patch * patch, dim)
        self.tokens = Tokens(self.num_patches, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        x = self.tokens(self.patch_embed(self.patchify(images)))
        x = F.dropout(x, self.emb_dropout, self.training)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

    def rank_layers(self) -> list[RankLayer]:
        """The patch embedding (m = patches), then to_qkv, to_out, fc1, fc2 per block (m = tokens); head excluded."""
        tokens = self.num_patches + 1
        layers = [(self.patch_embed, self.num_patches)]
        for block in self.blocks:
            layers += [(block.attn.to_qkv, tokens), (block.attn.to_out, tokens), (block.ff.fc1, tokens),
                       (block.ff.fc2, tokens)]
        return matrices(self, layers)
