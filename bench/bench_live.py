"""The cost of partial logs (lowrank.engine.live): writing a pack's running runs' logs so far, timed at the last
epoch of each run (the largest write: the logs grow with the epochs), for the largest pack of each architecture of the
paper's grid, against that pack's epoch as the resources table predicts it (plan.Pack.train_seconds).

The runs' records are made up (the numbers do not change the cost, their count does): every epoch's layer rows and
ranks, and the evaluations and spectra at the run's evaluation epochs. Layer shapes come from the real networks,
built on the meta device (no memory, no initialisation).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lowrank import models, plan
from lowrank.config import RunConfig
from lowrank.engine import live
from lowrank.engine.records import RunState, new_state, record_layers

ROOT = Path(__file__).resolve().parents[1]


def logged_state(cfg: RunConfig, layers: list, epoch: int) -> RunState:
    """A running run's state at `epoch` with made-up records for every epoch so far, as the engine keeps them."""
    s = new_state(cfg, None, torch.device("cpu"))
    rng = np.random.default_rng(0)
    for e in range(epoch + 1):
        measured = {l.name: (1.0, torch.from_numpy(np.sort(rng.random(min(l.shape)))[::-1].copy()))
                    for l in layers}
        record_layers(s, e, measured, layers, spectra=e in cfg.eval_epochs())
        if e in cfg.eval_epochs():
            s.evals.append({"epoch": e, "lr": cfg.lr_at(e + 1), "train_loss": 1.0, "train_acc": 0.5,
                            "test_loss": 1.0, "test_acc": 0.5})
    s.epoch, s.wall_time = epoch, 1.0
    return s


def largest_packs(config: dict) -> list[plan.Pack]:
    """Per architecture of the grid, its pack with the most runs (then the most epochs)."""
    best: dict[str, plan.Pack] = {}
    for pack in plan.build(config).packs:
        key = (len(pack.runs), pack.runs[0].epochs)
        arch = pack.runs[0].arch
        if arch not in best or key > (len(best[arch].runs), best[arch].runs[0].epochs):
            best[arch] = pack
    return [best[a] for a in sorted(best)]


def main(argv: list[str] | None = None) -> None:
    """Print one row per architecture: K, rank layers, the epoch timed, the write's seconds there, the predicted
    epoch's, the writes per epoch, and the writes' share of the training time at that epoch (the worst case) and over
    the whole run (half that: a write's cost grows in proportion to the epochs logged)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, help="time the write at this epoch instead of each run's last")
    ap.add_argument("--repeats", type=int, default=3, help="timed writes per pack (the best counts)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    config = plan.load(ROOT / "config.yaml")
    every = config["checkpoint_every"]
    print(f"partial logs of the largest pack per architecture, at the run's last epoch; checkpoint_every {every}; "
          f"best of {args.repeats}")
    print(f"{'arch':>10} {'K':>3} {'layers':>6} {'epoch':>5} {'write s':>8} {'epoch s':>8} {'writes/epoch':>12} "
          f"{'share at the end':>16} {'over the run':>12}")
    for pack in largest_packs(config):
        cfg = pack.runs[0]
        with torch.device("meta"):
            layers = models.rank_layers(models.build(cfg.arch, **cfg.arch_options))
        epoch = args.epochs or cfg.epochs
        states = [logged_state(r, layers, epoch) for r in pack.runs]
        writes = len({e for e in range(1, cfg.epochs + 1) if e in cfg.eval_epochs() or e % every == 0}) / cfg.epochs
        with tempfile.TemporaryDirectory() as tmp:
            seconds = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                live.write(states, layers, {"host": "bench", "started": "-"}, Path(tmp))
                seconds.append(time.perf_counter() - t0)
        epoch_s = pack.train_seconds() / cfg.epochs
        share = min(seconds) * writes / epoch_s
        print(f"{cfg.arch:>10} {len(pack.runs):>3} {len(layers):>6} {epoch:>5} {min(seconds):>8.3f} {epoch_s:>8.1f} "
              f"{writes:>12.2f} {share:>16.2%} {share / 2:>12.2%}")


if __name__ == "__main__":
    main()
