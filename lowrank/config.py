"""The settings of one training run, their validation, and the run's content-addressed id."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property

from lowrank import registry, schema
from lowrank.errors import UserError


class ConfigError(UserError, ValueError):
    """A bad setting; the message is one sentence naming the key and the value."""


AUGMENTATIONS = ("none", "code", "paper")
DTYPES = ("float32", "float64")
# Fields in which runs of one pack may differ; everything else is shared (see pack_key).
PER_RUN_FIELDS = ("lr", "weight_decay", "momentum", "seed")
# Settings whose type and range the config schema states (lowrank.schema.setting_error): checked against it.
SCHEMA_CHECKED = ("batch_size", "lr", "weight_decay", "momentum", "epochs", "gamma", "milestones", "eps",
                  "early_stop_epoch", "early_stop_acc", "early_stop_window", "test_batch_size", "data_options")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run's logs (so it is hashed into the run id)."""

    arch: str
    dataset: str
    batch_size: int
    lr: float
    weight_decay: float
    momentum: float = 0.0
    seed: int = 0
    epochs: int = 500
    milestones: tuple[int, ...] = (60, 100, 200)
    gamma: float = 0.2
    arch_options: dict = field(default_factory=dict)
    data_options: dict = field(default_factory=dict)
    augmentation: str = "none"
    eval_every: int = 10
    eval_final: bool = True
    eps: tuple[float, ...] = (1e-3, 1e-2, 0.04, 0.05)
    early_stop_epoch: int | None = 50  # None: never stop early
    early_stop_acc: float = 0.15
    early_stop_window: int = 3
    test_batch_size: int = 1000
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        object.__setattr__(self, "eps", tuple(float(e) for e in self.eps))
        object.__setattr__(self, "arch_options", dict(sorted(self.arch_options.items())))
        object.__setattr__(self, "data_options", dict(sorted(self.data_options.items())))
        for name in ("lr", "weight_decay", "momentum", "gamma", "early_stop_acc"):
            object.__setattr__(self, name, float(getattr(self, name)))
        validate(self)

    def to_dict(self) -> dict:
        """Plain JSON-able form (tuples become lists)."""
        return json.loads(json.dumps({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}))

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of to_dict; unknown keys are an error naming the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown run setting '{unknown[0]}'; known settings: {', '.join(sorted(known))}.")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"run setting '{missing[0]}' is missing.")
        return cls(**d)

    @cached_property
    def run_id(self) -> str:
        """Readable, content-addressed name: the same settings always give the same id."""
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
        return (f"{self.arch}-{self.dataset}-b{self.batch_size}-lr{self.lr:g}-wd{self.weight_decay:g}"
                f"-m{self.momentum:g}-s{self.seed}-{digest}")

    @cached_property
    def pack_key(self) -> str:
        """Runs with the same pack key can be trained together as one fused pack."""
        shared = {k: v for k, v in self.to_dict().items() if k not in PER_RUN_FIELDS}
        return hashlib.sha1(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def steps_per_epoch(self) -> int:
        """SGD steps in one epoch: ceil(training images / B), the last batch keeping the remainder."""
        return math.ceil(registry.train_size(self.dataset, self.data_options) / self.batch_size)

    def lr_at(self, epoch: int) -> float:
        """Learning rate while training epoch `epoch` (1-based), as MultiStepLR.step(epoch) in the authors' code."""
        return self.lr * self.gamma ** sum(m <= epoch for m in self.milestones)

    def eval_epochs(self) -> list[int]:
        """Completed-epoch counts at which train/test metrics and spectra are logged (0 = initialisation)."""
        points = list(range(0, self.epochs, self.eval_every))
        if self.eval_final or not points:
            points.append(self.epochs)
        return sorted(set(points))


def _require(ok: bool, key: str, value: object, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {why}.")


def _numbers(cfg: RunConfig) -> dict[str, object]:
    """Every number of the settings, by key (options as arch_options.KEY, data_options.KEY)."""
    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    out.update({f"arch_options.{k}": v for k, v in cfg.arch_options.items()})
    out.update({f"data_options.{k}": v for k, v in cfg.data_options.items()})
    out.update({f"eps[{i}]": e for i, e in enumerate(cfg.eps)})
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def validate(cfg: RunConfig) -> None:
    """Reject impossible settings before any work, one sentence naming the key."""
    for key, value in _numbers(cfg).items():
        _require(math.isfinite(value), key, value, "it must be a finite number")
    _require(cfg.arch in registry.ARCHS, "arch", cfg.arch, f"choose one of {', '.join(registry.ARCHS)}")
    _require(cfg.dataset in registry.DATASETS, "dataset", cfg.dataset,
             f"choose one of {', '.join(registry.DATASETS)}")
    for key in cfg.data_options:
        accepted = registry.dataset_options(cfg.dataset)
        _require(key in accepted, f"data_options.{key}", cfg.data_options[key],
                 f"{cfg.dataset} accepts {', '.join(accepted) or 'no options'}")
    for name in SCHEMA_CHECKED:  # the schema's ranges and types (workflow/schemas/config.schema.yaml)
        value = getattr(cfg, name)
        error = schema.setting_error(name, list(value) if isinstance(value, tuple) else value)
        if error:
            _require(False, *error)
    _require(cfg.augmentation in AUGMENTATIONS, "augmentation", cfg.augmentation,
             f"choose one of {', '.join(AUGMENTATIONS)}")
    _require(cfg.dtype in DTYPES, "dtype", cfg.dtype, f"choose one of {', '.join(DTYPES)}")
    _require(cfg.eval_every >= 1, "eval_every", cfg.eval_every, "evaluate every >= 1 epochs")
    size = registry.train_size(cfg.dataset, cfg.data_options)
    _require(cfg.batch_size <= size, "batch_size", cfg.batch_size,
             f"the {cfg.dataset} training set has only {size} samples")
    accepted = registry.arch_options(cfg.arch)
    for key in cfg.arch_options:
        _require(key in accepted, f"arch_options.{key}", cfg.arch_options[key],
                 f"{cfg.arch} accepts {', '.join(accepted) or 'no options'}")
