"""The architectures and datasets a config may name, with their options, importable without torch.

The workflow layer (config validation, grid expansion, the Snakefile) reads these to build the DAG: importing
torch there would cost seconds on every dry run. An architecture's options are its constructor's keyword
parameters and the synthetic data's options those of `lowrank.data.make_synthetic`, read from their source with
`ast`, so the code stays their one source; tests tie this module to `lowrank.models` and `lowrank.data`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).parent
DATA_SHAPE = ("in_channels", "image_size", "num_classes")  # constructor arguments set by the data, not options


@lru_cache
def signature_defaults(path: Path, name: str) -> dict[str, object]:
    """The parameters with (literal) defaults of function `name`, or of class `name`'s __init__, in source file
    `path`, in signature order: inspect.signature's answer without importing the module."""
    tree = ast.parse(Path(path).read_text())
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None)
    if node is None:
        raise LookupError(f"{path} defines no function or class {name!r} at its top level")
    if isinstance(node, ast.ClassDef):
        node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    args = node.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    return {a.arg: ast.literal_eval(d) for a, d in pairs}


# --- architectures ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchInfo:
    """Where an architecture's class lives (lowrank/models/<module>.py) and whether it uses BatchNorm."""

    module: str
    cls: str
    batchnorm: bool  # normalises by batch statistics, so a training batch of one sample breaks it


# Adding a model: its module under lowrank/models/ and one row here.
ARCHITECTURES: dict[str, ArchInfo] = {
    "resnet18": ArchInfo("resnet", "ResNet18", True),
    "vgg16_bn": ArchInfo("vgg", "VGG16BN", True),
    "mlp_bn": ArchInfo("mlp", "MLPBN", True),
    "res_bn": ArchInfo("mlp", "ResBN", True),
    "vit": ArchInfo("vit", "ViT", False),  # LayerNorm: normalises per sample
}
ARCHS: tuple[str, ...] = tuple(ARCHITECTURES)


def arch_info(name: str) -> ArchInfo:
    """The registry row of architecture `name`; a ValueError naming the choices for an unknown one."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHS)}")
    return ARCHITECTURES[name]


def arch_options(name: str) -> dict[str, object]:
    """The options (with defaults) that architecture `name` accepts beyond the data shape."""
    info = arch_info(name)
    params = signature_defaults(PACKAGE / "models" / f"{info.module}.py", info.cls)
    return {k: v for k, v in params.items() if k not in DATA_SHAPE}


def has_batchnorm(name: str) -> bool:
    """Whether architecture `name` normalises by batch statistics, so a training batch of one sample breaks it."""
    return arch_info(name).batchnorm


def arch_option_types() -> dict[str, type]:
    """Every architecture option with the type of its default: the command line's --arch-<option> flags."""
    return {k: type(v) for name in ARCHS for k, v in arch_options(name).items()}


# --- datasets ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """Shape, class count and the authors' normalisation of one dataset."""

    title: str  # human-readable name used in messages
    channels: int
    size: int  # side of the square image as stored (after `pad`)
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int  # zero border added to the raw images at conversion (Pad(2): MNIST 28 -> 32)
    torchvision: str | None  # torchvision.datasets class that reads the raw files; None = not torchvision's
    train_size: int  # training images (synthetic: make_synthetic's default n_train)
    sklearn: str | None = None  # sklearn.datasets loader of a dataset bundled with scikit-learn (no download)
    white: int = 255  # raw value of a full-intensity pixel

    @property
    def prepared(self) -> bool:
        """Whether the dataset is read from a prepared file root/<name>.pt (rather than generated)."""
        return bool(self.torchvision or self.sklearn)

    @property
    def fill(self) -> tuple[float, ...]:
        """Normalised value of a raw 0 pixel: what the authors' PIL crop/rotation pads with."""
        return tuple(-m / s for m, s in zip(self.mean, self.std))


def synthetic_defaults() -> dict[str, object]:
    """lowrank.data.make_synthetic's options with their defaults (the synthetic dataset's options)."""
    return signature_defaults(PACKAGE / "data.py", "make_synthetic")


_CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
_CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)
_SYNTHETIC = synthetic_defaults()

DATASETS: dict[str, DatasetInfo] = {
    # The authors normalise CIFAR-10 with CIFAR-100 statistics (conf/global_settings.py).
    "cifar10": DatasetInfo("CIFAR-10", 3, 32, 10, _CIFAR100_MEAN, _CIFAR100_STD, 0, "CIFAR10", 50_000),
    "mnist": DatasetInfo("MNIST", 1, 32, 10, (0.1307,), (0.3081,), 2, "MNIST", 60_000),
    # FashionMNIST reuses the MNIST statistics in the authors' code.
    "fashion_mnist": DatasetInfo("FashionMNIST", 1, 32, 10, (0.1307,), (0.3081,), 2, "FashionMNIST", 60_000),
    "svhn": DatasetInfo("SVHN", 3, 32, 10, (0.5,) * 3, (0.5,) * 3, 0, "SVHN", 73_257),
    # UCI optical recognition of handwritten digits (CC BY 4.0): 1,797 8x8 images with 17 grey levels (0..16),
    # split 1,442 / 355 (lowrank.data.DIGITS_TEST_SHARE); mean/std are the train split's, computed at load.
    "digits": DatasetInfo("digits (UCI)", 1, 8, 10, (), (), 0, None, 1442, sklearn="load_digits", white=16),
    # Generated already standardised, with make_synthetic's default shape and size.
    "synthetic": DatasetInfo("synthetic", _SYNTHETIC["channels"], _SYNTHETIC["size"], _SYNTHETIC["classes"],
                             (0.0,) * _SYNTHETIC["channels"], (1.0,) * _SYNTHETIC["channels"], 0, None,
                             _SYNTHETIC["n_train"]),
}


def dataset_options(name: str) -> tuple[str, ...]:
    """The options a dataset accepts (config `datasets.<name>` and a panel's `data`)."""
    if name == "synthetic":
        return tuple(synthetic_defaults())
    return ("size",) if DATASETS[name].sklearn else ()


def train_size(name: str, options: dict) -> int:
    """How many training images dataset `name` has with these options."""
    return int(options.get("n_train", DATASETS[name].train_size))
