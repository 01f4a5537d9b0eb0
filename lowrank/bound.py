"""Theorem 3.3's upper bound on the ε-rank of a weight matrix trained by mini-batch SGD with weight decay."""

from __future__ import annotations

import math

import numpy as np

CONVENTIONS = ("torch", "as_printed")


def paper_lambda(weight_decay: float, convention: str = "torch") -> float:
    """The paper's λ for an optimizer weight-decay coefficient.

    torch.optim.SGD applies W ← (1 − μ·wd)W − μ∇L while the paper's objective λ‖W‖² gives (1 − 2μλ),
    so λ = wd/2 ("torch", consistent). "as_printed" plugs wd in as λ, the reading under which the paper's Fig 18
    claim (bound below the width 10,000 for ε ≥ 0.3) holds [inferred: the paper prints no bound values].
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} is invalid: choose one of {', '.join(CONVENTIONS)}.")
    return weight_decay / 2 if convention == "torch" else weight_decay


def rank_bound(m: int, batch_size: int, lr: float, weight_decay: float, eps: float,
               convention: str = "torch") -> float:
    """m·B·ln(2/ε)/(2μλ): Theorem 3.3's bound on rank_ε of W/‖W‖ (inf when wd = 0: no bound).

    `weight_decay` is the optimizer's coefficient as written in the config; see paper_lambda for λ.
    """
    if not 0 < eps < 2:
        raise ValueError(f"eps={eps!r} is invalid: the bound needs 0 < eps < 2.")
    lam = paper_lambda(weight_decay, convention)
    if lam == 0 or lr == 0:
        return math.inf
    return m * batch_size * math.log(2 / eps) / (2 * lr * lam)


def informative_eps(m: int, batch_size: int, lr: float, weight_decay: float, trivial: float,
                    convention: str = "torch") -> float:
    """ε*: the bound falls below the trivial rank bound `trivial` (e.g. min(rows, cols)) exactly for ε > ε*.

    Solves m·B·ln(2/ε)/(2μλ) = trivial: ε* = 2·exp(−2μλ·trivial/(m·B)); 2 (never informative) without decay.
    """
    lam = paper_lambda(weight_decay, convention)
    return 2 * math.exp(-2 * lr * lam * trivial / (m * batch_size))


def decay_steps(lr, weight_decay, eps: float, convention: str = "torch"):
    """n = ln(2/ε)/(2μλ): the SGD steps over which the proof of Theorem 3.3 needs ‖W_{T−n}‖/‖W_T‖ ≤ 2.

    Element-wise on arrays; inf without weight decay.
    """
    lam = np.asarray(paper_lambda(weight_decay, convention), dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(2 / eps) / (2 * np.asarray(lr, dtype=float) * lam)
