"""lowrank.data: conversion from the datasets' own raw formats, normalisation, synthetic data, augmentation."""

import os
import pickle
import struct
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from lowrank import data
from lowrank.data import DatasetUnavailable, augment, load, make_synthetic, prepare
from lowrank.registry import DATASETS

N_TRAIN, N_TEST = 10, 3  # CIFAR: 5 batches x 2 images


@pytest.fixture(autouse=True)
def skip_md5(monkeypatch):
    """Tiny stand-in files cannot match torchvision's md5 sums: patch only the checksum, keep the existence check."""
    monkeypatch.setattr(torchvision.datasets.utils, "check_md5", lambda *args, **kwargs: True)


@pytest.fixture
def offline(monkeypatch):
    """Every download fails as it does without network."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def write_cifar10(root, rng):
    """cifar-10-batches-py: pickled dicts with 'data' uint8 [n, 3072] (CHW per row) and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", N_TRAIN // 5) for i in range(1, 6)] + [("test_batch", N_TEST)]:
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))


def write_idx(path, array):
    """IDX ubyte file: big-endian magic 0x08<ndim>, the dims, then the bytes."""
    path.write_bytes(struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.tobytes())


def write_mnist(root, rng, folder="MNIST"):
    """<Class>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte with 28x28 images."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for split, n in [("train", N_TRAIN), ("t10k", N_TEST)]:
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(1, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))


def write_svhn(root, rng):
    """{train,test}_32x32.mat: X uint8 [32, 32, 3, n], y [n, 1] with digit 0 labelled 10."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n in [("train", N_TRAIN), ("test", N_TEST)]:
        y = rng.integers(1, 11, (n, 1), dtype=np.uint8)
        y[0] = 10
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})


WRITERS = {
    "cifar10": write_cifar10,
    "mnist": write_mnist,
    "fashion_mnist": lambda root, rng: write_mnist(root, rng, "FashionMNIST"),
    "svhn": write_svhn,
}


def authors_pipeline(name, root, train):
    """The authors' per-sample PIL transforms (Pad for (F)MNIST, ToTensor, Normalize) through torchvision."""
    info = DATASETS[name]
    transform = T.Compose([T.Pad(info.pad), T.ToTensor(), T.Normalize(info.mean, info.std)])
    cls = getattr(torchvision.datasets, info.torchvision)
    split = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
    ds = cls(root, transform=transform, **split)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs), torch.tensor(ys)


@pytest.mark.parametrize("name", list(WRITERS))
def test_prepare_and_load_match_the_authors_transforms(name, tmp_path):
    WRITERS[name](tmp_path, np.random.default_rng(0))
    path = prepare(name, tmp_path, download=False)
    assert path == tmp_path / f"{name}.pt"
    blob = torch.load(path, weights_only=True)
    info = DATASETS[name]
    assert blob["train_x"].dtype == torch.uint8 and blob["train_x"].shape == (N_TRAIN, info.channels, 32, 32)
    assert blob["test_y"].dtype == torch.int64 and blob["test_y"].shape == (N_TEST,)
    assert blob["source"].startswith(f"torchvision {info.torchvision} ")

    d = load(name, tmp_path)
    assert (d.channels, d.size, d.classes) == (info.channels, 32, 10)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    for train, x, y in [(True, d.train_x, d.train_y), (False, d.test_x, d.test_y)]:
        ref_x, ref_y = authors_pipeline(name, tmp_path, train)
        torch.testing.assert_close(x, ref_x, rtol=0, atol=1e-6)
        assert torch.equal(y, ref_y)
    assert 0 <= int(d.train_y.min()) and int(d.train_y.max()) <= 9  # SVHN's label 10 is digit 0


def test_known_pixels_and_mnist_padding(tmp_path):
    rng = np.random.default_rng(1)
    write_cifar10(tmp_path, rng)
    write_mnist(tmp_path, rng)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        row = pickle.load(f)["data"][0]  # R plane, then G, then B; row-major 32x32 each
    cifar = load("cifar10", tmp_path)
    for c, (h, w) in [(0, (0, 0)), (1, (5, 7)), (2, (31, 2))]:
        raw = row[c * 1024 + h * 32 + w]
        expected = (raw / 255 - DATASETS["cifar10"].mean[c]) / DATASETS["cifar10"].std[c]
        assert cifar.train_x[0, c, h, w].item() == pytest.approx(expected, abs=1e-6)

    mnist = load("mnist", tmp_path)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert torch.allclose(mnist.train_x[:, 0, border], torch.tensor(-0.1307 / 0.3081))
    assert (mnist.train_x[:, 0, 2:30, 2:30] > -0.1307 / 0.3081).all()  # raw pixels were written as >= 1
    assert DATASETS["mnist"].fill == pytest.approx((-0.1307 / 0.3081,))


def test_prepare_is_idempotent_and_atomic(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(2))
    path = prepare("mnist", tmp_path, download=False)
    stamp = path.stat().st_mtime_ns
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").unlink()  # the raw files are no longer needed
    assert prepare("mnist", tmp_path, download=False) == path
    assert path.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(tmp_path)) == ["MNIST", "mnist.pt"]  # no temporary file left behind


@pytest.mark.parametrize("name", ["cifar10", "mnist", "svhn"])
def test_unavailable_offline_is_one_clear_sentence(name, tmp_path, offline):
    with pytest.raises(DatasetUnavailable) as err:
        prepare(name, tmp_path, download=True)
    msg = str(err.value)
    assert msg.startswith(f"{DATASETS[name].title} is not in {tmp_path}/ and could not be downloaded (offline?)")
    assert f"`python -m lowrank.data {name} --root {tmp_path}`" in msg and f"copy {name}.pt" in msg
    assert "\n" not in msg
    assert not (tmp_path / f"{name}.pt").exists()


def test_load_never_downloads_and_cli_reports(tmp_path, offline, capsys):
    with pytest.raises(DatasetUnavailable, match="downloading is disabled here"):
        load("cifar10", tmp_path)
    assert data.main(["fashion_mnist", "--root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("FashionMNIST is not in") and "Traceback" not in err

    write_svhn(tmp_path, np.random.default_rng(3))
    assert data.main(["svhn", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"svhn: {tmp_path / 'svhn.pt'}\n"
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare("synthetic", tmp_path)


def test_synthetic_is_seeded_standardised_and_learnable(tmp_path):
    a, b, c = make_synthetic(seed=0), make_synthetic(seed=0), make_synthetic(seed=1)
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
        assert not torch.equal(getattr(a, name), getattr(c, name))
    assert a.train_x.shape == (2048, 3, 32, 32) and a.test_x.shape == (512, 3, 32, 32)
    assert a.train_y.dtype == torch.int64 and a.train_x.dtype == torch.float32
    assert abs(a.train_x.mean().item()) < 0.02 and abs(a.train_x.std().item() - 1) < 0.02

    # Nearest class centroid, fitted on train, classifies held-out test samples.
    centroids = torch.stack([a.train_x[a.train_y == k].mean(0) for k in range(10)]).flatten(1)
    pred = torch.cdist(a.test_x.flatten(1), centroids).argmin(1)
    assert (pred == a.test_y).float().mean() > 0.5

    mnist_like = load("synthetic", tmp_path / "never", options={"channels": 1, "size": 32, "n_train": 64,
                                                                  "n_test": 16, "seed": 5}, dtype=torch.float64)
    assert mnist_like.train_x.shape == (64, 1, 32, 32) and mnist_like.train_x.dtype == torch.float64
    assert (mnist_like.channels, mnist_like.size, mnist_like.classes) == (1, 32, 10)
    assert not (tmp_path / "never").exists()
    assert load("synthetic", tmp_path).train_x.shape == (2048, 3, 32, 32)


def batch(seed=0, n=16, c=3, size=32):
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_augment_is_seeded_shape_preserving_and_changes_samples(mode):
    x = batch()
    out1 = augment(x, torch.Generator().manual_seed(7), mode, fill=DATASETS["cifar10"].fill)
    out2 = augment(x, torch.Generator().manual_seed(7), mode, fill=DATASETS["cifar10"].fill)
    out3 = augment(x, torch.Generator().manual_seed(8), mode, fill=DATASETS["cifar10"].fill)
    assert out1.shape == x.shape and out1.dtype == x.dtype
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)
    assert not torch.equal(out1, x)
    assert augment(x, torch.Generator(), "none") is x
    with pytest.raises(ValueError):
        augment(x, torch.Generator(), "mixup")


def test_warp_identity_flip_quarter_turn_and_crop():
    x = batch(n=4, c=2)
    fill = (-0.5, 2.0)
    no_shift, no_flip, zero = torch.zeros(4, 2, dtype=torch.long), torch.ones(4, dtype=torch.long), torch.zeros(4)

    # 15 * 24 = 360 degrees: the identity (paper mode, k = 24).
    assert torch.equal(data._warp(x, no_shift, no_flip, torch.full((4,), 360.0), fill), x)
    # Flip = horizontal mirror.
    assert torch.equal(data._warp(x, no_shift, -no_flip, zero, fill), x.flip(-1))
    # 90 degrees = an exact quarter turn (direction is immaterial: both rotation laws are symmetric).
    turned = data._warp(x, no_shift, no_flip, torch.full((4,), 90.0), fill)
    assert torch.equal(turned, x.rot90(1, (2, 3))) or torch.equal(turned, x.rot90(-1, (2, 3)))
    # Shift = RandomCrop(32, padding=4, fill) at offset (4 + dx, 4 + dy), then the flip is applied to the crop.
    shift = torch.tensor([[-4, 0], [4, -4], [1, 3], [0, 0]])
    flip = torch.tensor([1, 1, -1, -1])
    out = data._warp(x, shift, flip, zero, fill)
    padded = torch.cat([torch.nn.functional.pad(x[:, [c]], (4,) * 4, value=v) for c, v in enumerate(fill)], 1)
    for i, ((dx, dy), f) in enumerate(zip(shift.tolist(), flip.tolist())):
        crop = padded[i, :, 4 + dy:36 + dy, 4 + dx:36 + dx]
        assert torch.equal(out[i], crop if f == 1 else crop.flip(-1))
    assert (out[0, 0, :, :4] == -0.5).all() and (out[0, 1, :, :4] == 2.0).all()


def test_warp_equals_sequential_torchvision_crop_flip_rotate():
    """Pixel for pixel, except at odd multiples of 45 degrees where sample points fall exactly between pixels."""
    g = torch.Generator().manual_seed(3)
    n, fill = 48, (-1.7, 0.3, 2.0)
    x = batch(n=n)
    shift = torch.randint(-4, 5, (n, 2), generator=g)
    flip = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    k = torch.tensor([k for k in range(1, 25) if k % 6 != 3])[torch.randint(20, (n // 2,), generator=g)]
    angle = torch.cat([torch.rand(n // 2, generator=g) * 30 - 15, 15.0 * k])
    out = data._warp(x, shift, flip, angle, fill)
    padded = torch.cat([torch.nn.functional.pad(x[:, [c]], (4,) * 4, value=v) for c, v in enumerate(fill)], 1)
    for i in range(n):
        (dx, dy), f, a = shift[i].tolist(), flip[i].item(), angle[i].item()
        crop = padded[i, :, 4 + dy:36 + dy, 4 + dx:36 + dx]
        crop = crop if f == 1 else TF.hflip(crop)
        assert torch.equal(out[i], TF.rotate(crop, a, interpolation=T.InterpolationMode.NEAREST, fill=list(fill)))


def test_augment_draws_shift_flip_and_angle_as_documented():
    """Replays the draws: shift in [-4, 4]^2, fair flip, then 15k degrees (k in 1..24) or uniform in [-15, 15]."""
    x = batch(n=64)
    for mode in ("paper", "code"):
        g = torch.Generator().manual_seed(0)
        shift = torch.randint(-4, 5, (64, 2), generator=g)
        flip = torch.randint(0, 2, (64,), generator=g) * 2 - 1
        if mode == "paper":
            angle = 15.0 * torch.randint(1, 25, (64,), generator=g)
        else:
            angle = torch.rand(64, generator=g) * 30 - 15
        assert torch.equal(augment(x, torch.Generator().manual_seed(0), mode), data._warp(x, shift, flip, angle, None))


def test_digits_load_offline_split_balanced_and_standardised(tmp_path, offline):
    from sklearn.datasets import load_digits

    d = load("digits", tmp_path, options={"size": 32})  # prepares digits.pt from scikit-learn's bundled copy
    assert (tmp_path / "digits.pt").exists()
    assert d.train_x.shape == (1442, 1, 32, 32) and d.test_x.shape == (355, 1, 32, 32)
    assert (d.channels, d.size, d.classes) == (1, 32, 10)
    # Per class, the test split holds floor(n/5) images: 178 zeros -> 35 test, 143 train.
    per_class = np.bincount(load_digits().target)
    assert per_class.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert torch.bincount(d.test_y).tolist() == (per_class // 5).tolist()
    assert torch.bincount(d.train_y).tolist() == (per_class - per_class // 5).tolist()
    # Standardised with the train split's statistics (the test split is near, not exactly, 0 and 1).
    assert abs(d.train_x.mean().item()) < 1e-5 and d.train_x.std().item() == pytest.approx(1, abs=1e-5)
    assert abs(d.test_x.mean().item()) < 0.05 and abs(d.test_x.std().item() - 1) < 0.05
    assert d.train_x.min().item() == pytest.approx(d.fill[0], abs=1e-5)  # a blank pixel pads augmentation


def test_digits_at_native_size_are_sklearns_images_split_by_a_fixed_seed(tmp_path):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    d, again = load("digits", tmp_path), load("digits", tmp_path / "again")
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.test_y, again.test_y)  # seeded, not random
    assert d.train_x.shape == (1442, 1, 8, 8) and d.test_x.shape == (355, 1, 8, 8)
    # Undo the standardisation: the 17 grey levels map back to 0..16, and the two splits hold each image once.
    x = torch.cat([d.train_x, d.test_x]).flatten(1)
    levels = x.unique()
    assert len(levels) == 17
    raw = ((x - levels[0]) / (levels[1] - levels[0])).round().to(torch.uint8)
    assert raw.max() == 16
    key = sorted(zip(map(bytes, raw.numpy()), torch.cat([d.train_y, d.test_y]).tolist()))
    sk_images = torch.from_numpy(bunch.images).to(torch.uint8).flatten(1)
    assert key == sorted(zip(map(bytes, sk_images.numpy()), bunch.target.tolist()))
    # The scale is the train split's: raw / 16 standardised by its mean and std.
    train_raw = raw[:1442].double() / 16
    torch.testing.assert_close(d.train_x.flatten(1).double(), (train_raw - train_raw.mean()) / train_raw.std(),
                               rtol=0, atol=1e-5)


def test_digits_reject_foreign_options_and_need_scikit_learn(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="data option 'n_train' is invalid for dataset 'digits': it accepts size"):
        load("digits", tmp_path, options={"n_train": 100})
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(DatasetUnavailable, match="scikit-learn, which is not installed"):
        prepare("digits", tmp_path)
    assert not (tmp_path / "digits.pt").exists()


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"", lambda b: bytes(range(256)) * 8])
def test_a_corrupt_dataset_file_is_one_sentence_naming_it(tmp_path, damage):
    path = tmp_path / "cifar10.pt"
    blob = {"train_x": torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "train_y": torch.zeros(2, dtype=torch.int64),
            "test_x": torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "test_y": torch.zeros(1, dtype=torch.int64)}
    torch.save(blob, path)
    assert load("cifar10", tmp_path).train_x.shape == (2, 3, 32, 32)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetUnavailable, match=rf"{path} is corrupt .*delete it and run `python -m lowrank.data"):
        load("cifar10", tmp_path)


def test_a_dataset_file_that_would_run_code_is_refused(tmp_path):
    torch.save({"train_x": print}, tmp_path / "cifar10.pt")  # weights_only=False would unpickle a callable
    with pytest.raises(DatasetUnavailable, match="is corrupt"):
        load("cifar10", tmp_path)
