"""lowrank.metrics on matrices with known spectra, and lowrank.bound.rank_bound on known numbers."""

from __future__ import annotations

import math

import pytest
import torch

from lowrank import bound, metrics


def with_spectrum(s: list[float], rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """W = U diag(s) Vᵀ with random orthogonal U (rows × r), V (cols × r): its singular values are exactly s."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, len(s), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, len(s), generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ v.T


SPECTRUM = [0.5, 3.0, 0.02, 1.0, 1e-4]  # unsorted on purpose; ‖s‖₂ = sqrt(10.2504000001)


def normalised(s: list[float]) -> torch.Tensor:
    """s / ‖s‖₂, descending: the singular values of W/‖W‖_F."""
    t = torch.tensor(sorted(s, reverse=True), dtype=torch.float64)
    return t / t.norm()


def rank(weight: torch.Tensor, eps: float) -> int:
    """The ε-rank of one weight, as the trainer counts it: metrics.eps_rank of its normalised spectrum."""
    return int(metrics.eps_rank(metrics.singular_values(weight), eps))


def test_eps_rank_counts_numpy_spectra_like_torch_ones():
    sv = torch.tensor([[0.9, 0.3, 0.1000001, 0.01], [0.5, 0.5, 0.5, 0.5]], dtype=torch.float32)
    assert metrics.eps_rank(sv, 0.1).tolist() == [3, 4]
    assert metrics.eps_rank(sv.numpy(), 0.1).tolist() == [3, 4]
    assert metrics.eps_rank(sv.numpy(), 0.5).tolist() == [1, 0]  # strict: σ = ε is not counted


def test_singular_values_are_normalised_and_descending():
    w = with_spectrum(SPECTRUM, 8, 6)
    sv = metrics.singular_values(w)
    assert sv.shape == (6,)
    torch.testing.assert_close(sv[:5], normalised(SPECTRUM), rtol=1e-12, atol=1e-12)
    assert sv[5] < 1e-12  # a rank-5 matrix with 6 columns
    assert float(sv.square().sum()) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("eps, expected", [(0.9, 1), (0.2, 2), (0.1, 3), (0.005, 4), (1e-5, 5), (1e-14, 5)])
def test_rank_counts_singular_values_above_eps(eps, expected):
    # normalised spectrum: 0.937, 0.312, 0.156, 0.0062, 3.1e-5 (and one ~1e-17 from rounding)
    assert rank(with_spectrum(SPECTRUM, 8, 6), eps) == expected


def test_rank_is_strict_at_the_threshold():
    w = torch.diag(torch.tensor([3.0, 4.0], dtype=torch.float64))  # normalised: 0.8, 0.6
    assert rank(w, 0.6 - 1e-12) == 2 and rank(w, 0.6 + 1e-12) == 1


def test_conv_kernel_is_reshaped_to_out_by_in_k_k():
    matrix = with_spectrum([2.0, 1.0, 0.5], 4, 3 * 3 * 3)
    kernel = matrix.reshape(4, 3, 3, 3)  # (C_out, C_in, k, k), as W.reshape(C_out, -1) reads back
    assert metrics.as_matrix(kernel).shape == (4, 27)
    torch.testing.assert_close(metrics.singular_values(kernel)[:3], normalised([2.0, 1.0, 0.5]),
                               rtol=1e-12, atol=1e-12)
    assert rank(kernel, 0.1) == 3
    assert float(metrics.frobenius_norm(kernel)) == pytest.approx(math.sqrt(5.25), rel=1e-12)


def test_norms_and_stable_rank_are_exact():
    w = with_spectrum(SPECTRUM, 7, 9, seed=3)
    assert float(metrics.frobenius_norm(w)) == pytest.approx(math.sqrt(sum(x * x for x in SPECTRUM)), rel=1e-12)
    norms = metrics.layer_norms(float(metrics.frobenius_norm(w)), metrics.singular_values(w))
    assert norms["spectral_norm"] == pytest.approx(3.0, rel=1e-12)
    assert norms["stable_rank"] == pytest.approx(sum(x * x for x in SPECTRUM) / 9.0, rel=1e-12)


def test_batched_equals_per_matrix():
    spectra = [[4.0, 1.0, 0.1], [1.0, 1.0, 1.0], [2.0, 1e-3, 1e-6]]
    ws = torch.stack([with_spectrum(s, 5, 2 * 2 * 2, seed=i).reshape(5, 2, 2, 2) for i, s in enumerate(spectra)])
    batched = metrics.singular_values(ws, batch_dims=1)
    fro = metrics.frobenius_norm(ws, batch_dims=1)
    torch.testing.assert_close(fro, torch.stack([metrics.frobenius_norm(w) for w in ws]), rtol=1e-12, atol=0)
    for i, w in enumerate(ws):
        torch.testing.assert_close(batched[i], metrics.singular_values(w), rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(batched[i][:3], normalised(spectra[i]), rtol=1e-10, atol=1e-12)
        for eps in (0.5, 0.1, 1e-3):
            assert int(metrics.eps_rank(batched, eps)[i]) == rank(w, eps)
        assert metrics.layer_norms(float(fro[i]), batched[i])["spectral_norm"] == pytest.approx(max(spectra[i]))


def test_rank_bound_known_numbers():
    # m = 1, B = 6, μ = 0.1, wd = 8e-3: torch λ = 4e-3 → 6 / (2·0.1·4e-3) = 7500; as printed λ = 8e-3 → 3750
    for eps in (0.3, 0.01, 1.5):
        assert bound.rank_bound(1, 6, 0.1, 8e-3, eps) == pytest.approx(7500 * math.log(2 / eps), rel=1e-12)
        assert bound.rank_bound(1, 6, 0.1, 8e-3, eps, convention="as_printed") == pytest.approx(
            3750 * math.log(2 / eps), rel=1e-12)
    assert bound.rank_bound(1, 6, 0.1, 8e-3, 0.3) == pytest.approx(14228.4, abs=0.05)
    assert bound.rank_bound(1, 6, 0.1, 8e-3, 0.3, convention="as_printed") == pytest.approx(7114.2, abs=0.05)
    assert bound.rank_bound(64, 6, 0.1, 8e-3, 0.3) == pytest.approx(64 * 14228.4, rel=1e-5)  # linear in m


def test_rank_bound_without_weight_decay_is_infinite():
    assert bound.rank_bound(1, 6, 0.1, 0.0, 0.3) == math.inf


@pytest.mark.parametrize("eps", [0.0, -0.1, 2.0, 3.0])
def test_rank_bound_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match="eps="):
        bound.rank_bound(1, 6, 0.1, 8e-3, eps)


def test_rank_bound_rejects_unknown_convention():
    with pytest.raises(ValueError, match="convention="):
        bound.rank_bound(1, 6, 0.1, 8e-3, 0.3, convention="paper")
