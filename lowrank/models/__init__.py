"""Model zoo of the paper and the list of weight matrices whose rank it measures."""

from __future__ import annotations

import inspect

from torch import nn

from .common import RankLayer, check_positive
from .mlp import MLPBN, ResBN
from .resnet import ResNet18
from .vgg import VGG16BN
from .vit import ViT

__all__ = ["ARCHS", "RankLayer", "arch_options", "build", "has_batchnorm", "rank_layers"]

_MODELS: dict[str, type[nn.Module]] = {
    "resnet18": ResNet18,
    "vgg16_bn": VGG16BN,
    "mlp_bn": MLPBN,
    "res_bn": ResBN,
    "vit": ViT,
}
ARCHS: tuple[str, ...] = tuple(_MODELS)
_BATCHNORM = frozenset({"resnet18", "vgg16_bn", "mlp_bn", "res_bn"})  # the ViT normalises per sample (LayerNorm)
_DATA_SHAPE = ("in_channels", "image_size", "num_classes")


def _model_class(name: str) -> type[nn.Module]:
    if name not in _MODELS:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHS)}")
    return _MODELS[name]


def arch_options(name: str) -> dict[str, object]:
    """The options (with defaults) that architecture `name` accepts beyond the data shape."""
    params = inspect.signature(_model_class(name)).parameters.values()
    return {p.name: p.default for p in params if p.name not in _DATA_SHAPE}


def has_batchnorm(name: str) -> bool:
    """Whether architecture `name` normalises by batch statistics, so a training batch of one sample breaks it."""
    _model_class(name)
    return name in _BATCHNORM


def build(name: str, *, in_channels: int = 3, image_size: int = 32, num_classes: int = 10, **options) -> nn.Module:
    """A freshly initialised `name` network for images of this shape, rejecting unknown or bad options."""
    model_class, accepted = _model_class(name), arch_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(f"unknown option {key!r} for architecture {name!r}; "
                             f"accepted options: {', '.join(accepted)}")
    check_positive(in_channels=in_channels, image_size=image_size, num_classes=num_classes)
    return model_class(in_channels, image_size, num_classes, **options)


def rank_layers(model: nn.Module) -> list[RankLayer]:
    """The matrices that count for the average rank, in network order (spec §1.2)."""
    return model.rank_layers()
