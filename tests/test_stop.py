"""A signal stops training after the step in flight and the same command resumes at that step (lowrank.engine.stop):
SIGTERM, SIGUSR1 or SIGINT at a random step of a random epoch, for K = 1 and K = 4, an MLP and a small ResNet,
with and without augmentation, with a last partial batch, momentum and an LR milestone in range; the resumed logs
equal the uninterrupted run's byte for byte and no step is trained twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lowrank import checkpoints, layout
from lowrank.config import RunConfig
from lowrank.engine import stop
from lowrank.engine.loop import train_runs
from lowrank.engine.pack import Pack
from lowrank.train import train_pack
from conftest import outputs

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
N_TRAIN, BATCH, EPOCHS = 20, 8, 4  # 3 steps per epoch, the last of 4 samples; 12 steps in all
STEPS = -(-N_TRAIN // BATCH)
SMALL = {"mlp_bn": {"depth": 3, "width": 16}, "resnet18": {"width": 4}}
# K = 4 mixes runs without momentum, with it, and with weight decay or none
RUNS = [dict(lr=0.05, weight_decay=5e-3, momentum=0.9, seed=0), dict(lr=0.02, weight_decay=0.0, momentum=0.0, seed=1),
        dict(lr=0.1, weight_decay=1e-2, momentum=0.5, seed=2), dict(lr=0.03, weight_decay=1e-3, momentum=0.0, seed=3)]

# `python -m lowrank.train ARGS` (the job's command), its pack's steps counted; after step TARGET the process sends
# itself SIGNAL, as SLURM or a user would (0: never). The steps it trained are written to COUNT_FILE at its end.
CHILD = """
import os, signal, sys
import torch
from lowrank.engine.loop import train_runs
from lowrank.engine.pack import Pack
from lowrank.train import main
count_file, target, name, *argv = sys.argv[1:]
torch.set_num_threads(1)
trained, step = 0, Pack.step
def counted(self, x, y):
    global trained
    step(self, x, y)
    trained += 1
    if trained == int(target):
        os.kill(os.getpid(), getattr(signal, name))
Pack.step = counted
try:
    code = main(argv)
finally:
    open(count_file, "w").write(str(trained))
sys.exit(code)
"""


def pack_configs(arch: str, k: int, augmentation: str) -> list[RunConfig]:
    """K runs of a small `arch` on 20 synthetic 3x16x16 images at B = 8, LR milestones at epochs 2 and 3."""
    return [RunConfig(arch=arch, dataset="synthetic", batch_size=BATCH, epochs=EPOCHS, eval_every=2, milestones=(2, 3),
                      augmentation=augmentation, arch_options=SMALL[arch],
                      data_options={"n_train": N_TRAIN, "n_test": 16, "size": 16}, **run) for run in RUNS[:k]]


def command(tmp_path: Path, cfgs: list[RunConfig], target: int, name: str) -> subprocess.CompletedProcess:
    """Run CHILD on the pack's spec files (output in tmp_path/run, checkpoints in tmp_path/ckpt, the default
    checkpoint_every of 10: no ordinary checkpoint); the steps it trained land in tmp_path/steps."""
    specs = []
    for c in cfgs:
        specs.append(tmp_path / f"{c.run_id}.json")
        specs[-1].write_text(json.dumps({"config": c.to_dict(), "out": str(tmp_path / "run" / c.run_id)}))
    argv = ["--spec", *map(str, specs), "--ckpt-dir", str(tmp_path / "ckpt"), "--device", "cpu"]
    return subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "steps"), str(target), name, *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def uninterrupted(tmp_path: Path, cfgs: list[RunConfig], monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """Train the pack here without a signal into tmp_path/ref; return the steps it took and its training fits."""
    trained, said, step = [], [], Pack.step
    monkeypatch.setattr(Pack, "step", lambda self, x, y: (step(self, x, y), trained.append(1)))
    train_pack([(c, tmp_path / "ref" / c.run_id) for c in cfgs], ckpt_dir=tmp_path / "ref.ckpt", device=CPU,
               log=said.append)
    monkeypatch.undo()
    return len(trained), fits("\n".join(said))


def fits(log: str) -> list[str]:
    """Each progress line's epoch and training fit (the epoch's running totals), without its timings."""
    return [f"{line.split('] epoch ')[1].split()[0]} {line.split(' train ')[1]}" for line in log.splitlines()
            if "] epoch " in line]


def where(cfgs: list[RunConfig], epoch: int, step: int) -> str:
    """The position line's subject and place (lowrank.engine.loop.position)."""
    who = f"run {cfgs[0].run_id}" if len(cfgs) == 1 else \
        f"pack of {len(cfgs)} runs {', '.join(c.run_id for c in cfgs)}"
    return f"{who} at epoch {epoch} step {step} of {STEPS}"


@pytest.mark.parametrize("arch, k, augmentation, name, at", [
    ("mlp_bn", 1, "none", "SIGTERM", None),  # None: a random step (seeded by the case), never the last
    ("mlp_bn", 4, "code", "SIGUSR1", None),
    ("resnet18", 4, "none", "SIGTERM", None),
    ("resnet18", 1, "paper", "SIGUSR1", None),
    ("mlp_bn", 4, "none", "SIGINT", None),
    ("mlp_bn", 4, "code", "SIGTERM", 2 * STEPS),  # in an epoch's last step: stops after it (and its evaluation)
])
def test_a_signal_at_a_random_step_resumes_there_to_identical_logs(tmp_path, monkeypatch, arch, k, augmentation,
                                                                   name, at):
    cfgs = pack_configs(arch, k, augmentation)
    total, ref_fits = uninterrupted(tmp_path, cfgs, monkeypatch)
    assert total == EPOCHS * STEPS
    target = at or random.Random(f"{arch} {k} {augmentation} {name}").randrange(1, total)
    epoch, step = target // STEPS + 1, target % STEPS  # where the run stands after `target` steps
    stopped = command(tmp_path, cfgs, target, name)
    assert stopped.returncode == stop.RETRY_EXIT, stopped.stderr[-3000:]
    assert f"stopped {where(cfgs, epoch, step)}: checkpointed there\n" in stopped.stderr, stopped.stderr
    assert f"stopped by {name}: " in stopped.stderr
    assert stopped.stdout.splitlines() == [f"stopped: {c.run_id} -> {tmp_path / 'run' / c.run_id}" for c in cfgs]
    assert not any((tmp_path / "run" / c.run_id / "summary.json").exists() for c in cfgs)
    first = int((tmp_path / "steps").read_text())
    resumed = command(tmp_path, cfgs, 0, name)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.splitlines()[0] == f"resumed {where(cfgs, epoch, step)}"
    assert (first, first + int((tmp_path / "steps").read_text())) == (target, total)  # no step twice, none lost
    for c in cfgs:
        assert outputs(tmp_path / "run" / c.run_id) == outputs(tmp_path / "ref" / c.run_id)
    assert fits(stopped.stderr) + fits(resumed.stderr) == ref_fits  # the stopped epoch's totals carried over


def test_the_checkpoint_of_a_stopped_run_holds_its_place_in_the_epoch(tmp_path, monkeypatch):
    """A checkpoint in the middle of an epoch holds the step, the epoch's data order (a permutation of the 20
    samples) and the running totals of the steps trained so far."""
    cfg = pack_configs("mlp_bn", 1, "none")[0]
    trained, step = [], Pack.step
    monkeypatch.setattr(Pack, "step", lambda self, x, y: (step(self, x, y), trained.append(1)))
    statuses = train_runs([(cfg, tmp_path / "run")], data_root=Path("data"), ckpt_dir=tmp_path / "ckpt",
                          checkpoint_every=10, device=CPU, kernels="exact", step="eager", log=lambda msg: None,
                          live_dir=None, stop=lambda: len(trained) == 2)
    assert statuses == ["running"] and len(trained) == 2
    ckpt = checkpoints.read(layout.checkpoint_file(tmp_path / "ckpt", cfg.run_id), cfg)
    assert (ckpt["epoch"], ckpt["step"]) == (0, 2)
    assert sorted(ckpt["in_epoch"]["order"].tolist()) == list(range(N_TRAIN))
    assert ckpt["in_epoch"]["loss_sum"] > 0 and 0 <= ckpt["in_epoch"]["correct"] <= 2 * BATCH
    assert not ckpt["in_epoch"]["bad"]


def test_the_first_sigint_asks_to_stop_a_second_stops_at_once():
    before = {sig: signal.getsignal(sig) for sig in stop.SIGNALS}
    with stop.on_signals() as request:
        assert not request()
        os.kill(os.getpid(), signal.SIGINT)
        assert request() and request.signal is signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # a later signal changes nothing
        assert request.signal is signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {sig: signal.getsignal(sig) for sig in stop.SIGNALS} == before
