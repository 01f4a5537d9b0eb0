"""Spectral metrics of weight matrices: the paper's ε-rank of W/‖W‖_F, norms and stable rank."""

from __future__ import annotations

import torch
from torch import Tensor


def as_matrix(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """Reshape a weight to (out, -1) as the authors do (conv kernels become C_out × C_in·k·k)."""
    return weight.reshape(*weight.shape[: batch_dims + 1], -1)


def singular_values(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """Descending singular values of W/‖W‖_F (spec §1.2); leading `batch_dims` are a pack of K runs."""
    w = as_matrix(weight.detach(), batch_dims)
    fro = torch.linalg.matrix_norm(w, ord="fro", keepdim=True)
    return torch.linalg.svdvals(w / fro)


def rank_from_sv(sv: Tensor, eps: float) -> Tensor:
    """How many normalised singular values exceed eps (torch.linalg.matrix_rank with absolute tol)."""
    return (sv > eps).sum(dim=-1)


def rank(weight: Tensor, eps: float) -> int:
    """The paper's ε-rank: #{σ_i(W/‖W‖_F) > ε}."""
    return int(rank_from_sv(singular_values(weight), eps))


def frobenius_norm(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """‖W‖_F of the (out, -1) matrix."""
    return torch.linalg.matrix_norm(as_matrix(weight.detach(), batch_dims), ord="fro")


def spectral_norm(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """‖W‖_2, the largest singular value of the (out, -1) matrix."""
    return torch.linalg.matrix_norm(as_matrix(weight.detach(), batch_dims), ord=2)


def stable_rank(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """‖W‖_F² / ‖W‖_2², a threshold-free rank surrogate."""
    return frobenius_norm(weight, batch_dims) ** 2 / spectral_norm(weight, batch_dims) ** 2
