"""Model zoo of the paper and the list of weight matrices whose rank it measures.

Names, options and BatchNorm use come from lowrank.registry (torch-free); this package holds the networks.
"""

from __future__ import annotations

from importlib import import_module

from torch import nn

from lowrank.registry import ARCHS, arch_info, arch_options, has_batchnorm

from .common import RankLayer, check_positive

__all__ = ["ARCHS", "RankLayer", "arch_options", "build", "has_batchnorm", "model_class", "rank_layers"]


def model_class(name: str) -> type[nn.Module]:
    """The network class of architecture `name` (its registry row names the module and class)."""
    info = arch_info(name)
    return getattr(import_module(f"{__name__}.{info.module}"), info.cls)


def build(name: str, *, in_channels: int = 3, image_size: int = 32, num_classes: int = 10, **options) -> nn.Module:
    """A freshly initialised `name` network for images of this shape, rejecting unknown or bad options."""
    cls, accepted = model_class(name), arch_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(f"unknown option {key!r} for architecture {name!r}; "
                             f"accepted options: {', '.join(accepted)}")
    check_positive(in_channels=in_channels, image_size=image_size, num_classes=num_classes)
    return cls(in_channels, image_size, num_classes, **options)


def rank_layers(model: nn.Module) -> list[RankLayer]:
    """The matrices that count for the average rank, in network order (spec §1.2)."""
    return model.rank_layers()
