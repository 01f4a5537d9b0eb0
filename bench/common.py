"""What both benchmarks share: the K runs, the plain per-run loop, the fused pack (the engine itself), a timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lowrank import data as datasets
from lowrank import models
from lowrank.config import RunConfig
from lowrank.engine.pack import Pack
from lowrank.engine.records import new_state

Epoch = Callable[[], None]
# small versions of the config.yaml model presets, for `--tiny` smoke runs whose numbers mean nothing
TINY = {"resnet18_leaky": {"width": 4}, "vgg16_bn": {"width": 8}, "mlp_bn_10_100": {"depth": 2, "width": 16},
        "mlp_bn_2_10000": {"depth": 2, "width": 32}, "res_bn_5_500": {"depth": 1, "width": 16},
        "vit_small": {"dim": 32, "depth": 1, "heads": 2, "dim_head": 8, "mlp_dim": 32}}


def configs(arch: str, options: dict, k: int, batch: int, n_train: int, size: int = 32) -> list[RunConfig]:
    """K runs of one model on synthetic data, differing in seed, learning rate and weight decay (momentum 0)."""
    return [RunConfig(arch=arch, dataset="synthetic", batch_size=batch, lr=0.01 * (1 + i % 4),
                      weight_decay=5e-3 * (i % 3), seed=i, arch_options=options,
                      data_options={"n_train": n_train, "n_test": 16, "size": size}) for i in range(k)]


def load(cfg: RunConfig, device: torch.device) -> datasets.Data:
    """The runs' synthetic data as whole tensors on the device (one epoch = n_train / batch_size steps)."""
    return datasets.load("synthetic", "data", device=device, options=cfg.data_options)


def plain_epoch(cfgs: list[RunConfig], data: datasets.Data, device: torch.device) -> Epoch:
    """One epoch of each run, one run after another: an nn.Module, torch.optim.SGD and x[idx] batches."""
    runs = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        model = models.build(cfg.arch, in_channels=data.channels, image_size=data.size, num_classes=data.classes,
                             **cfg.arch_options).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        runs.append((model, opt, torch.Generator().manual_seed(cfg.seed)))
    n, batch = data.train_x.shape[0], cfgs[0].batch_size

    def epoch() -> None:
        for model, opt, order in runs:
            perm = torch.randperm(n, generator=order).to(device)
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return epoch


def fused_epoch(cfgs: list[RunConfig], data: datasets.Data, device: torch.device, step: str = "eager") -> Epoch:
    """One epoch of all runs as one pack, through lowrank.engine.pack.Pack.train_epoch itself, its steps issued by
    `step` (graph: CUDA graphs, captured in the first epoch, which best_seconds does not time)."""
    pack = Pack.build([new_state(cfg, None, device) for cfg in cfgs], data, device, step)
    return lambda: pack.train_epoch(1, data, None)


def synced(device: torch.device, fn: Callable[[], object]) -> float:
    """Wall seconds of fn(), the device's queued work included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def preset_options(preset: dict) -> dict:
    """A config.yaml model preset's architecture options (all but `arch`)."""
    return {k: v for k, v in preset.items() if k != "arch"}


def best_seconds(epochs: dict[str, Epoch], device: torch.device, repeats: int,
                 budget_s: float = float("inf")) -> dict[str, float]:
    """Best wall time of each epoch function after one warm-up call each, timing them in turn (so all see the
    same machine load): `repeats` rounds, fewer once `budget_s` is spent."""
    for epoch in epochs.values():
        synced(device, epoch)
    deadline = time.perf_counter() + budget_s
    best = {name: float("inf") for name in epochs}
    for round_ in range(repeats):
        if round_ and time.perf_counter() > deadline:
            break
        for name, epoch in epochs.items():
            best[name] = min(best[name], synced(device, epoch))
    return best
