"""Datasets as whole tensors on the training device, plus batched GPU augmentation.

Each real dataset is converted once from torchvision's raw arrays (digits: scikit-learn's bundled copy) into a
compact uint8 file `root/<name>.pt`; `load` reads that file with one `torch.load`, normalises exactly as the
authors' transforms do (digits: resized, then standardised with its train split's statistics), and moves it to
the device.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lowrank import layout
from lowrank.config import AUGMENTATIONS
from lowrank.errors import UserError
from lowrank.registry import DATASETS, DatasetInfo, dataset_options


DIGITS_TEST_SHARE, DIGITS_SPLIT_SEED = 5, 0  # test = floor(n/5) images of each class, chosen by a seed-0 permutation


@dataclass
class Data:
    """Train and test tensors: float [N,C,H,W] normalised images and int64 labels."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    classes: int = 10
    fill: tuple[float, ...] | None = None  # normalised value of a raw 0 pixel: what augmentation pads with

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def size(self) -> int:
        return self.train_x.shape[-1]


class DatasetUnavailable(UserError, RuntimeError):
    """A real dataset is neither prepared on disk nor obtainable from here."""


def prepare(name: str, root: str | Path, download: bool = True) -> Path:
    """Convert a torchvision (or scikit-learn) dataset once into the compact file root/<name>.pt; return its path."""
    info = _real(name)
    root = Path(root)
    path = layout.dataset_file(root, name)
    if path.exists():
        return path
    if info.sklearn:
        blob = _read_sklearn(info)
        root.mkdir(parents=True, exist_ok=True)
        return _save(blob, root, name)
    try:
        train_x, train_y = _read_raw(info, root, train=True, download=download)
        test_x, test_y = _read_raw(info, root, train=False, download=download)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises RuntimeError
        reason = "could not be downloaded (offline?)" if download else "downloading is disabled here"
        raise DatasetUnavailable(
            f"{info.title} is not in {root}/ and {reason}: run `python -m lowrank.data {name} --root {root}` "
            f"on a machine with internet access, or copy {path.name} into {root}/."
        ) from err
    blob = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y,
            "source": f"torchvision {info.torchvision} {_torchvision().__version__}"}
    return _save(blob, root, name)


def _save(blob: dict, root: Path, name: str) -> Path:
    """Write root/<name>.pt atomically: concurrent readers see either no file or the whole file."""
    path = layout.dataset_file(root, name)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def load(name: str, root: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
         options: dict | None = None) -> Data:
    """Load a whole dataset onto `device`, normalised as (x/white - mean)/std; synthetic data is generated instead.

    `options` are the dataset's own (`dataset_options`): the synthetic generator's arguments, digits' `size`.
    """
    options = check_options(name, options or {})
    if name == "synthetic":
        d = make_synthetic(**options)
        return Data(d.train_x.to(device, dtype), d.train_y.to(device), d.test_x.to(device, dtype), d.test_y.to(device),
                    classes=d.classes, fill=d.fill)
    info = _real(name)
    path = prepare(name, root, download=False)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        train_y, test_y = blob["train_y"], blob["test_y"]
        raw = blob["train_x"], blob["test_x"]
    except (OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as err:
        raise DatasetUnavailable(f"{path} is corrupt ({type(err).__name__}): delete it and run "
                                 f"`python -m lowrank.data {name} --root {root}` to prepare it again.") from None
    # move as uint8 (4x less traffic), then ToTensor in float32
    train_x, test_x = (x.to(device).float().div_(info.white) for x in raw)
    if info.sklearn:  # bilinear resize, then the train split's own per-channel statistics
        size = options.get("size", info.size)
        train_x, test_x = (F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                           for x in (train_x, test_x))
        mean, std = train_x.mean((0, 2, 3)), train_x.std((0, 2, 3))
        fill = tuple((-mean / std).tolist())
    else:
        mean, std = torch.tensor(info.mean, device=device), torch.tensor(info.std, device=device)
        fill = info.fill

    def normalise(x: Tensor) -> Tensor:  # Normalize in float32
        return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1)).to(dtype)

    return Data(normalise(train_x), train_y.to(device), normalise(test_x), test_y.to(device),
                classes=info.classes, fill=fill)


def check_options(name: str, options: dict) -> dict:
    """`options` unchanged, or a ValueError naming the first option dataset `name` does not accept."""
    accepted = dataset_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(f"data option {key!r} is invalid for dataset {name!r}: it accepts "
                             f"{', '.join(accepted) or 'no options'}.")
    return options


def make_synthetic(*, seed: int = 0, n_train: int = 2048, n_test: int = 512, channels: int = 3, size: int = 32,
                   classes: int = 10, signal: float = 0.5) -> Data:
    """Gaussian mixture: random class centre x `signal` + N(0,1) noise, rescaled to unit variance; seeded."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, channels, size, size, generator=g)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(classes, (n,), generator=g)
        x = signal * centres[y] + torch.randn(n, channels, size, size, generator=g)
        return x / math.sqrt(1 + signal**2), y

    return Data(*sample(n_train), *sample(n_test), classes=classes, fill=(0.0,) * channels)


def augment(x: Tensor, generator: torch.Generator, mode: str, fill: Sequence[float] | Tensor | None = None) -> Tensor:
    """Random crop (pad 4) + horizontal flip + rotation for a batch, all random draws from `generator`.

    mode "code" rotates by a uniform angle in [-15, 15] degrees (the authors' RandomRotation(15));
    "paper" by 15k degrees with k uniform in {1..24}; "none" returns x. `fill` is the per-channel
    value of padded pixels (use DatasetInfo.fill: raw 0, as torchvision pads before normalising).
    """
    if mode == "none":
        return x
    if mode not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {mode!r}")
    b, dev = x.shape[0], x.device
    shift = torch.randint(-4, 5, (b, 2), generator=generator, device=dev)  # RandomCrop(32, padding=4) offsets - 4
    flip = torch.randint(0, 2, (b,), generator=generator, device=dev) * 2 - 1  # -1: mirrored
    if mode == "code":
        angle = torch.rand(b, generator=generator, device=dev) * 30 - 15
    else:
        angle = 15.0 * torch.randint(1, 25, (b,), generator=generator, device=dev)
    return _warp(x, shift, flip, angle, fill)


def _warp(x: Tensor, shift: Tensor, flip: Tensor, angle: Tensor, fill: Sequence[float] | Tensor | None) -> Tensor:
    """Per sample: crop with offset `shift` (pad 4), flip if `flip` is -1, rotate by `angle`, all by one gather.

    Nearest sampling on the grid of torchvision's rotate: equals torchvision's crop, hflip and rotate(NEAREST)
    applied in sequence; pixels brought in from outside the crop or the image get `fill`.
    """
    b, c, h, w = x.shape
    rad = torch.deg2rad(angle.float())
    cos, sin, f = rad.cos(), rad.sin(), flip.float()
    zero = torch.zeros_like(cos)
    # Flip after rotation about the centre (in the inverse map), in affine_grid's [-1, 1] coordinates.
    theta = torch.stack([torch.stack([f * cos, -f * sin * h / w, zero], 1),
                         torch.stack([sin * w / h, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    ix = ((grid[..., 0] + 1) * w - 1).div(2).round().long()  # nearest pixel of the crop, as grid_sample does
    iy = ((grid[..., 1] + 1) * h - 1).div(2).round().long()
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)  # inside the crop
    ix, iy = ix + shift[:, 0, None, None], iy + shift[:, 1, None, None]  # crop pixel -> original pixel
    inside &= (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)  # and not in the crop's padding
    index = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).view(b, 1, h * w).expand(b, c, h * w)
    out = x.flatten(2).gather(2, index).view(b, c, h, w)
    fill = torch.as_tensor(0.0 if fill is None else fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return torch.where(inside[:, None], out, fill)


def _torchvision():
    """torchvision, imported only to read raw datasets: it costs seconds that loading a prepared file need not pay."""
    import torchvision

    return torchvision


def _real(name: str) -> DatasetInfo:
    """Look up a dataset that lives on disk (not the generated one)."""
    if name not in DATASETS or not DATASETS[name].prepared:
        real = [n for n, i in DATASETS.items() if i.prepared]
        raise ValueError(f"unknown dataset {name!r}: expected one of {real} (or 'synthetic' for load)")
    return DATASETS[name]


def _read_raw(info: DatasetInfo, root: Path, train: bool, download: bool) -> tuple[Tensor, Tensor]:
    """One split as uint8 [N,C,H,W] (zero-padded by info.pad) and int64 labels, from torchvision's raw arrays."""
    cls = getattr(_torchvision().datasets, info.torchvision)
    if info.torchvision == "SVHN":  # split="train" is the 73,257-image set, without "extra"
        ds = cls(root, split="train" if train else "test", download=download)
        x, y = torch.from_numpy(ds.data), ds.labels  # uint8 [N,3,32,32]; torchvision maps label 10 to 0
    else:
        ds = cls(root, train=train, download=download)
        x, y = torch.as_tensor(ds.data), ds.targets
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # CIFAR [N,H,W,C] / MNIST [N,H,W]
    x = F.pad(x, (info.pad,) * 4)  # raw 0 border, like Pad(2) before ToTensor/Normalize
    return x.contiguous(), torch.as_tensor(y, dtype=torch.int64)


def _read_sklearn(info: DatasetInfo) -> dict:
    """A bundled scikit-learn dataset as uint8 [N,1,H,W] and int64 labels, split per class (DIGITS_TEST_SHARE)."""
    try:
        import sklearn
        from sklearn import datasets as sk_datasets
    except ImportError as err:
        raise DatasetUnavailable(f"{info.title} comes with scikit-learn, which is not installed: "
                                 f"`pip install scikit-learn` (a dependency in pyproject.toml).") from err
    bunch = getattr(sk_datasets, info.sklearn)()
    x = torch.from_numpy(bunch.images).round().to(torch.uint8).unsqueeze(1)
    y = torch.from_numpy(bunch.target).to(torch.int64)
    g = torch.Generator().manual_seed(DIGITS_SPLIT_SEED)
    test = torch.zeros(len(y), dtype=torch.bool)
    for k in range(info.classes):
        members = (y == k).nonzero().flatten()
        test[members[torch.randperm(len(members), generator=g)[:len(members) // DIGITS_TEST_SHARE]]] = True
    return {"train_x": x[~test].contiguous(), "train_y": y[~test], "test_x": x[test].contiguous(), "test_y": y[test],
            "source": f"scikit-learn {sklearn.__version__} {info.sklearn}, per-class 1/{DIGITS_TEST_SHARE} test "
                      f"split seed {DIGITS_SPLIT_SEED}"}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prepare datasets into --root, one line per dataset; exit 1 with a sentence if one is unavailable."""
    parser = argparse.ArgumentParser(prog="python -m lowrank.data", description=main.__doc__)
    parser.add_argument("names", nargs="+", choices=[n for n, i in DATASETS.items() if i.prepared])
    parser.add_argument("--root", default="data", help="directory for raw downloads and <name>.pt (default: data)")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            print(f"{name}: {prepare(name, args.root)}")
        except DatasetUnavailable as err:
            print(err, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
