"""Pieces shared by the model zoo: the RankLayer record, activations and option checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

# leaky_relu keeps PyTorch's default slope 0.01, as the authors' F.leaky_relu does
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "leaky_relu": F.leaky_relu}


@dataclass(frozen=True)
class RankLayer:
    """One weight matrix that counts for the average rank (spec §1.2)."""

    name: str  # human name, e.g. "layer1.0.conv1"
    param: str  # key in model.named_parameters(), e.g. "layer1.0.conv1.weight"
    shape: tuple[int, int]  # the matrix the rank is taken of: (out, in) or (C_out, C_in*k*k)
    m: int  # input vectors per sample it multiplies: 1 (MLP), output positions (conv), tokens (ViT)


def matrices(model: nn.Module, layers: list[tuple[nn.Module, int]]) -> list[RankLayer]:
    """RankLayers for (Linear or Conv2d, m) pairs inside `model`, named by where they sit in it."""
    names = {module: name for name, module in model.named_modules()}
    return [
        RankLayer(names[module], f"{names[module]}.weight", tuple(module.weight.flatten(1).shape), m)
        for module, m in layers
    ]


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called `name`, so a typo fails at build time rather than mid-run."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def check_positive(**values: object) -> None:
    """Raise a ValueError naming the first option that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_probability(**values: object) -> None:
    """Raise a ValueError naming the first dropout rate outside [0, 1)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a dropout probability in [0, 1), got {value!r}")
