"""The paper's layer quantities, in one place for the trainer and the aggregation: the spectrum of W/‖W‖_F, its
ε-rank, and the norms logged per layer.

The counting and the norms are plain arithmetic on a spectrum (a torch tensor in the trainer, a numpy array read
back from singular_values.npz in the aggregation); only the SVD needs torch, imported where it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor


def as_matrix(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """Reshape a weight to (out, -1) as the authors do (conv kernels become C_out × C_in·k·k)."""
    return weight.reshape(*weight.shape[: batch_dims + 1], -1)


def singular_values(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """Descending singular values of W/‖W‖_F (spec §1.2); leading `batch_dims` are a pack of K runs."""
    import torch

    w = as_matrix(weight.detach(), batch_dims)
    fro = torch.linalg.matrix_norm(w, ord="fro", keepdim=True)
    return torch.linalg.svdvals(w / fro)


def frobenius_norm(weight: Tensor, batch_dims: int = 0) -> Tensor:
    """‖W‖_F of the (out, -1) matrix."""
    import torch

    return torch.linalg.matrix_norm(as_matrix(weight.detach(), batch_dims), ord="fro")


def eps_rank(sv: Tensor | np.ndarray, eps: float) -> Tensor | np.ndarray:
    """The paper's ε-rank #{σ_i(W/‖W‖_F) > ε} along the last axis of normalised spectra `sv` (a torch tensor or
    a numpy array; ε is compared in the spectrum's own dtype, a Python float being weak in both)."""
    return (sv > eps).sum(-1)


def layer_norms(fro: float, sv: Tensor | np.ndarray) -> dict[str, float]:
    """A layer's logged norms from ‖W‖_F and the descending spectrum of W/‖W‖_F: ‖W‖_2 = σ_1·‖W‖_F and the stable
    rank ‖W‖_F²/‖W‖_2² = 1/σ_1², a threshold-free rank surrogate."""
    top = float(sv[0])
    return {"fro_norm": fro, "spectral_norm": top * fro, "stable_rank": 1.0 / top ** 2}
