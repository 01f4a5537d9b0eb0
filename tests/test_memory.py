"""A pack too large for its device's memory splits into sub-packs that fit (lowrank.engine.memory): out of memory
injected above K = 2 (LOWRANK_TEST_OOM_ABOVE_K), a pack of 4 finishes as two packs of 2 with the logs of the pack
of 4, from scratch or from its last checkpoint, and later packs of that shape start at 2."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lowrank import layout
from lowrank.engine import memory
from lowrank.train import train_pack
from conftest import Interrupt, interrupt_at, outputs
from test_stop import pack_configs

CPU = torch.device("cpu")


def reference(tmp_path, cfgs) -> None:
    """The pack trained whole, as on a device large enough, into tmp_path/ref."""
    train_pack([(c, tmp_path / "ref" / c.run_id) for c in cfgs], ckpt_dir=tmp_path / "ref.ckpt", device=CPU,
               log=lambda msg: None)


def test_a_pack_out_of_memory_finishes_as_sub_packs_and_later_packs_start_there(tmp_path, monkeypatch):
    cfgs = pack_configs("resnet18", 4, "code")
    reference(tmp_path, cfgs)
    monkeypatch.setenv(memory.FAKE_OOM, "2")
    said = []
    runs = [(c, tmp_path / "run" / c.run_id) for c in cfgs]
    assert train_pack(runs, ckpt_dir=tmp_path / "ckpt", device=CPU, log=said.append) == ["finished"] * 4
    fit = memory.fit_file(tmp_path / "ckpt", cfgs[0], CPU)
    assert said[0] == (f"out of memory ({memory.FAKE_OOM}=2: a pack of 4 runs does not fit (a test's stand-in)): "
                       "training the pack as sub-packs of 2 runs, each run from its last checkpoint; later packs of "
                       f"its shape on cpu start at 2 ({fit})")
    assert [m.split("]")[0] for m in said[1:] if "] epoch " in m] == ["[resnet18 synthetic B=8 K=2"] * 8
    for c in cfgs:
        assert outputs(tmp_path / "run" / c.run_id) == outputs(tmp_path / "ref" / c.run_id)
    recorded = json.loads(fit.read_text())
    assert (recorded["runs"], recorded["device"], recorded["arch"], recorded["batch_size"]) == (2, "cpu", "resnet18", 8)

    later = [dataclasses.replace(c, seed=c.seed + 10) for c in cfgs]  # other runs of the same shape
    said.clear()
    assert train_pack([(c, tmp_path / "later" / c.run_id) for c in later], ckpt_dir=tmp_path / "ckpt", device=CPU,
                      log=said.append) == ["finished"] * 4
    assert said[0] == f"packs of this shape fit 2 runs on cpu ({fit}): training the 4 runs as sub-packs of 2"
    assert not any(m.startswith("out of memory") for m in said)


def test_a_pack_out_of_memory_falls_back_to_its_last_checkpoint(tmp_path, monkeypatch):
    cfgs = pack_configs("mlp_bn", 4, "none")
    reference(tmp_path, cfgs)
    runs = [(c, tmp_path / "run" / c.run_id) for c in cfgs]
    with pytest.raises(Interrupt):  # killed after epoch 3, before its checkpoint: the one of epoch 2 stands
        train_pack(runs, ckpt_dir=tmp_path / "ckpt", checkpoint_every=1, device=CPU, log=interrupt_at(3))
    monkeypatch.setenv(memory.FAKE_OOM, "1")
    said = []
    assert train_pack(runs, ckpt_dir=tmp_path / "ckpt", device=CPU, log=said.append) == ["finished"] * 4
    halvings = [m.split(" runs, ")[0].split()[-1] for m in said if m.startswith("out of memory")]
    assert halvings == ["2", "1", "1"]  # 4 -> 2 + 2, each 2 -> 1 + 1
    a, b, c, d = (f"{c.run_id}" for c in cfgs)
    assert [m.split(" at epoch 3 step 0 of 3")[0] for m in said if m.startswith("resumed ")] == [
        f"resumed pack of 4 runs {a}, {b}, {c}, {d}", f"resumed pack of 2 runs {a}, {b}", f"resumed run {a}",
        f"resumed run {b}", f"resumed pack of 2 runs {c}, {d}", f"resumed run {c}", f"resumed run {d}"]
    assert sum("] epoch " in m for m in said) == 4 * 2  # epochs 3 and 4 of each run, alone
    for c in cfgs:
        assert outputs(tmp_path / "run" / c.run_id) == outputs(tmp_path / "ref" / c.run_id)
    assert json.loads(memory.fit_file(tmp_path / "ckpt", cfgs[0], CPU).read_text())["runs"] == 1


def test_a_single_run_that_does_not_fit_raises(tmp_path, monkeypatch):
    monkeypatch.setenv(memory.FAKE_OOM, "0")
    (cfg,) = pack_configs("mlp_bn", 1, "none")
    with pytest.raises(torch.OutOfMemoryError, match="a pack of 1 runs does not fit"):
        train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=CPU, log=lambda msg: None)
    assert not layout.checkpoint_file(tmp_path / "ckpt", cfg.run_id).exists()
    assert not memory.fit_file(tmp_path / "ckpt", cfg, CPU).exists()
