"""lowrank.train (the engine, lowrank.engine) end to end on tiny runs: determinism, kill and resume, divergence, early stop, bad input."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from lowrank import checkpoints, layout, logs, provenance
from lowrank.config import ConfigError, RunConfig
from lowrank.checkpoints import checkpoint_path
from lowrank.engine.device import KERNELS, STEPS
from lowrank.engine.loop import early_stop
from lowrank.train import main, train_pack
from conftest import Interrupt, interrupt_at, outputs

ROOT = Path(__file__).resolve().parents[1]
# a tiny MLP-BN on 64 synthetic 3x8x8 images: 8 steps per epoch, well under a second per run
TINY = ["--arch", "mlp_bn", "--depth", "2", "--width", "8", "--dataset", "synthetic", "--batch-size", "8",
        "--lr", "0.1", "--weight-decay", "5e-3", "--momentum", "0.9", "--epochs", "4", "--eval-every", "2",
        "--data-option", "n_train=64", "--data-option", "n_test=32", "--data-option", "size=8",
        "--device", "cpu"]


def tiny_config(**overrides) -> RunConfig:
    """The TINY run as a RunConfig."""
    settings = dict(arch="mlp_bn", dataset="synthetic", batch_size=8, lr=0.1, weight_decay=5e-3, momentum=0.9,
                    epochs=4, eval_every=2, arch_options={"depth": 2, "width": 8},
                    data_options={"n_train": 64, "n_test": 32, "size": 8})
    return RunConfig(**{**settings, **overrides})


def assert_complete(run_dir: Path, last_epoch: int, eval_epochs: list[int]) -> None:
    """The logs hold every epoch 0..last_epoch exactly once per layer (and eps), and the given evaluations."""
    summary = logs.read_summary(run_dir)
    n_layers, n_eps = len(summary["layers"]), len(summary["config"]["eps"])
    layers, ranks = logs.read_table(run_dir, "layers"), logs.read_table(run_dir, "ranks")
    assert layers.groupby("epoch").size().to_dict() == {e: n_layers for e in range(last_epoch + 1)}
    assert ranks.groupby("epoch").size().to_dict() == {e: n_layers * n_eps for e in range(last_epoch + 1)}
    assert not layers.duplicated(["epoch", "layer"]).any()
    assert logs.read_table(run_dir, "evals")["epoch"].tolist() == eval_epochs
    assert logs.read_spectra(run_dir)["epochs"].tolist() == eval_epochs
    assert logs.check_run(run_dir) == summary  # the consumer's validation accepts every real run


def test_same_seed_gives_identical_logs(tmp_path):
    assert main([*TINY, "--out", str(tmp_path / "a")]) == 0
    assert main([*TINY, "--out", str(tmp_path / "b")]) == 0
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert_complete(tmp_path / "a", 4, [0, 2, 4])
    summary = logs.read_summary(tmp_path / "a")
    assert summary["status"] == "finished" and summary["epochs_completed"] == 4
    assert sorted(summary["runtime"]) == ["device", "finished", "host", "kernels", "started", "step", "wall_time_s"]
    assert [summary["runtime"][k] for k in ("device", "kernels", "step")] == ["cpu", "cpu", "cpu"]
    assert main([*TINY, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    assert outputs(tmp_path / "c")["layers.csv"] != outputs(tmp_path / "a")["layers.csv"]


def test_interrupted_run_resumes_to_identical_logs(tmp_path):
    cfg = tiny_config()
    train_pack([(cfg, tmp_path / "ref")], ckpt_dir=tmp_path / "ref.ckpt", device=torch.device("cpu"),
               log=lambda msg: None)
    with pytest.raises(Interrupt):
        train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", checkpoint_every=1,
                   device=torch.device("cpu"), log=interrupt_at(3))
    assert not (tmp_path / "run" / "summary.json").exists()  # nothing half-done looks finished
    assert checkpoints.read(checkpoint_path(tmp_path / "ckpt", cfg), cfg)["epoch"] == 2
    trained = []
    statuses = train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", checkpoint_every=1,
                          device=torch.device("cpu"), log=trained.append)
    assert statuses == ["finished"] and trained[0] == f"resumed run {cfg.run_id} at epoch 3 step 0 of 8"
    assert len(trained) == 3  # epochs 3 and 4 only
    assert outputs(tmp_path / "run") == outputs(tmp_path / "ref")
    assert_complete(tmp_path / "run", 4, [0, 2, 4])


def test_partial_logs_of_a_killed_run_are_continued_not_duplicated(tmp_path):
    """A running run's logs so far are in its live folder after every evaluation (epochs 0, 2, 4, 6) and checkpoint
    (3, 6), valid logs of status "running". Killed in epoch 4 they stand at the checkpoint, epoch 3; killed again in
    epoch 6 at epoch 4, ahead of the checkpoint it resumes from: trained again, epoch 4 is in them once, as in an
    uninterrupted run's logs; the final logs replace them."""
    cfg, live = tiny_config(epochs=8), tmp_path / "live"
    train_pack([(cfg, tmp_path / "ref")], ckpt_dir=tmp_path / "ref.ckpt", device=torch.device("cpu"),
               log=lambda msg: None)

    def train(log) -> list[str]:
        return train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", checkpoint_every=3,
                          device=torch.device("cpu"), log=log, live_dir=live)

    partial = layout.run_dir(live, cfg.run_id)
    for kill, last, evaluated in [(4, 3, [0, 2]), (6, 4, [0, 2, 4]), (7, 6, [0, 2, 4, 6])]:
        with pytest.raises(Interrupt):
            train(interrupt_at(kill))
        assert logs.read_summary(partial)["status"] == "running" and list((tmp_path / "run").iterdir()) == []
        assert_complete(partial, last, evaluated)
    ref = logs.read_table(tmp_path / "ref", "layers")
    pd.testing.assert_frame_equal(logs.read_table(partial, "layers"), ref[ref["epoch"] <= 6])
    assert train(lambda msg: None) == ["finished"]
    assert list(live.iterdir()) == [] and outputs(tmp_path / "run") == outputs(tmp_path / "ref")


def test_finished_run_is_written_again_without_training(tmp_path):
    cfg = tiny_config()
    train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"),
               log=lambda msg: None)
    first = outputs(tmp_path / "run")
    assert "flat" not in checkpoints.read(checkpoint_path(tmp_path / "ckpt", cfg), cfg)  # logs only
    for name in layout.RUN_FILES.values():
        (tmp_path / "run" / name).unlink()

    def no_training(msg: str) -> None:
        raise AssertionError(f"a finished run was trained again: {msg}")

    statuses = train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"),
                          log=no_training)
    assert statuses == ["finished"] and outputs(tmp_path / "run") == first


def test_a_truncated_log_is_reported_naming_the_file_and_rewritten_from_the_checkpoint(tmp_path):
    cfg, run = tiny_config(), tmp_path / "run"
    train_pack([(cfg, run)], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), log=lambda msg: None)
    first = outputs(run)
    text = (run / "ranks.csv").read_text()
    (run / "ranks.csv").write_text(text[:len(text) * 2 // 3 + 3])  # cut mid-line
    with pytest.raises(logs.DamagedRun, match=r"run run: .*ranks\.csv is damaged: a row has no .* value") as err:
        logs.check_run(run)
    (run / "ranks.csv").write_text(text[:text.rindex("\n", 0, len(text) - 1) + 1])  # the last row lost
    with pytest.raises(logs.DamagedRun, match=r"ranks\.csv is damaged: it has 39 rows, expected 40 "
                                              r"\(5 epochs × 2 layers × 4 eps\)"):
        logs.check_run(run)
    assert "Marked it retired" in logs.retire(err.value) and (run / "retired.txt").is_file()

    def no_training(msg: str) -> None:
        raise AssertionError(f"a finished run was trained again: {msg}")

    train_pack([(cfg, run)], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), log=no_training)
    assert outputs(run) == first and logs.check_run(run) and not (run / "retired.txt").exists()


def cut_evals_after_train_acc(path: Path) -> None:
    """The last row of evals.csv cut right after its train_acc (a copy or a disk that gave out mid-write)."""
    *rows, last, _ = path.read_text().split("\n")
    path.write_text("\n".join([*rows, ",".join(last.split(",")[:4])]))


def lose_evaluation(epoch: int):
    """A damage dropping the evaluation row of `epoch` from evals.csv (the file otherwise intact)."""
    return lambda p: p.write_text("".join(line for line in p.read_text().splitlines(keepends=True)
                                          if not line.startswith(f"{epoch},")))


@pytest.mark.parametrize("name, damage, why", [
    ("summary.json", lambda p: p.write_text("{"), "cannot be read"),
    ("layers.csv", lambda p: p.write_text(p.read_text().rsplit("\n", 3)[0] + "\n"), "last epoch is 3"),
    ("evals.csv", lambda p: p.unlink(), "missing"),
    ("singular_values.npz", lambda p: p.write_bytes(p.read_bytes()[:100]), "cannot be read"),
    # issue 25, case 2: each of these passed check_run, or was blamed on singular_values.npz, before
    ("evals.csv", cut_evals_after_train_acc, r"a row has no test_loss/test_acc value \(truncated\?\)"),
    ("evals.csv", lose_evaluation(4), r"it lacks the run's last evaluation, at epoch 4 \(truncated\?\)"),
    ("evals.csv", lose_evaluation(2), r"it lacks the evaluations at epochs \[2\] that singular_values\.npz holds"),
    ("evals.csv", lambda p: p.write_text(p.read_text().replace("\n4,", "\n4,x", 1)),
     "a value of column lr is not a number"),
    ("ranks.csv", lambda p: p.write_text(p.read_text()[:-1]), r"its last row has no line end \(truncated\?\)"),
])
def test_every_damaged_log_file_is_named(tmp_path, name, damage, why):
    run = tmp_path / "run"
    train_pack([(tiny_config(), run)], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), log=lambda m: None)
    damage(run / name)
    with pytest.raises(logs.DamagedRun, match=rf"{name} is damaged: .*{why}"):
        logs.check_run(run)


def test_a_finished_run_whose_matrix_decayed_to_zero_is_not_damaged(tmp_path):
    """Weight decay can take a matrix to zero (seen in the digits demo at λ = 0.05, B = 4): its spectral norm and
    stable rank are NaN, written as empty fields, in a finished run."""
    run = tmp_path / "run"
    train_pack([(tiny_config(), run)], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), log=lambda m: None)
    path = run / "layers.csv"
    *head, last, end = path.read_text().split("\n")
    path.write_text("\n".join([*head, ",".join(last.split(",")[:5] + ["0.0", "", ""]), end]))
    assert logs.check_run(run)["status"] == "finished"


def test_a_summary_copied_from_another_run_is_refused_naming_both(tmp_path):  # issue 25, case 3
    a, b = tiny_config(batch_size=16), tiny_config(batch_size=4)
    for cfg in (a, b):
        train_pack([(cfg, tmp_path / cfg.run_id)], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"),
                   log=lambda m: None)
    assert logs.check_run(tmp_path / b.run_id, b.run_id)["config"]["batch_size"] == 4
    (tmp_path / b.run_id / "summary.json").write_bytes((tmp_path / a.run_id / "summary.json").read_bytes())
    with pytest.raises(logs.DamagedRun, match=rf"{b.run_id}/summary.json is damaged: it is the summary of run "
                                              rf"{a.run_id} \(config of {a.run_id}\), not of {b.run_id}"):
        logs.check_run(tmp_path / b.run_id, b.run_id)


def interrupted(tmp_path: Path, cfg: RunConfig, epoch: int = 3) -> Path:
    """Train `cfg` with a checkpoint per epoch and stop it when it reports `epoch`; return the checkpoint dir."""
    with pytest.raises(Interrupt):
        train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", checkpoint_every=1,
                   device=torch.device("cpu"), log=interrupt_at(epoch))
    return tmp_path / "ckpt"


def test_another_runs_checkpoint_is_refused_naming_the_file(tmp_path, capsys):
    other, cfg = tiny_config(lr=0.2), tiny_config()
    ckpt = interrupted(tmp_path, other)
    checkpoint_path(ckpt, other).rename(checkpoint_path(ckpt, cfg))  # lr = 0.2's state under lr = 0.1's name
    code = main([*TINY, "--ckpt-dir", str(ckpt), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"checkpoint {checkpoint_path(ckpt, cfg)} belongs to run {other.run_id}" in err
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"", lambda b: bytes(range(256)) * 4,
                                    lambda b: b[:-100] + bytes(100)])
def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    cfg = tiny_config()
    train_pack([(cfg, tmp_path / "ref")], ckpt_dir=tmp_path / "ref.ckpt", device=torch.device("cpu"),
               log=lambda msg: None)
    path = checkpoint_path(interrupted(tmp_path, cfg), cfg)  # epoch 2, and epoch 1 kept as the previous one
    assert checkpoints.read(layout.previous_checkpoint_file(path), cfg)["epoch"] == 1
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(checkpoints.CorruptCheckpoint, match=f"checkpoint {path} is corrupt"):
        checkpoints.read(path, cfg)
    said = []
    train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", checkpoint_every=1,
               device=torch.device("cpu"), log=said.append)
    assert said[0].startswith(f"checkpoint {path} is corrupt") and "resuming from the previous" in said[0]
    assert sum("] epoch " in m for m in said) == 3  # epochs 2, 3 and 4: one epoch lost, not the run
    assert outputs(tmp_path / "run") == outputs(tmp_path / "ref")
    assert not layout.previous_checkpoint_file(path).exists()  # a finished run keeps one logs-only checkpoint


def test_a_corrupt_checkpoint_without_a_previous_one_restarts_the_run(tmp_path):
    cfg = tiny_config()
    path = checkpoint_path(interrupted(tmp_path, cfg, epoch=2), cfg)
    layout.previous_checkpoint_file(path).unlink(missing_ok=True)
    path.write_bytes(b"")
    said = []
    train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"), log=said.append)
    assert f"run {cfg.run_id} restarts from epoch 0" in said[0]
    assert sum("] epoch " in m for m in said) == 4


def test_a_checkpoint_is_written_raw_and_an_older_one_still_reads(tmp_path):
    """The payload is held as a uint8 tensor, written raw (bytes pickled to ~1.5x their size: a stop by a signal
    writes every run's checkpoint); a checkpoint of an older version, its payload bytes, reads the same."""
    cfg = tiny_config()
    payload = {"epoch": 3, "flat": torch.arange(100_000, dtype=torch.float32)}
    path = checkpoint_path(tmp_path, cfg)
    checkpoints.save(path, cfg, payload)
    assert path.stat().st_size < 1.05 * 400_000 + 10_000
    wrapper = torch.load(path, weights_only=True)
    older = tmp_path / "older.pt"
    torch.save({**wrapper, "payload": wrapper["payload"].numpy().tobytes()}, older)
    for p in (path, older):
        got = checkpoints.read(p, cfg)
        assert got["epoch"] == 3 and torch.equal(got["flat"], payload["flat"])


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    cfg = tiny_config()
    path = checkpoint_path(tmp_path, cfg)
    torch.save({"epoch": 1, "evil": print}, path)  # loading this with weights_only=False would call code
    with pytest.raises(checkpoints.CorruptCheckpoint, match="cannot be read"):
        checkpoints.read(path, cfg)


def test_summary_records_the_code_and_each_epoch_prints_progress(tmp_path):
    said = []
    train_pack([(tiny_config(), tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=torch.device("cpu"),
               log=said.append)
    code = logs.read_summary(tmp_path / "run")["code"]
    assert code["source_sha256"] == provenance.source_hash() and len(code["source_sha256"]) == 64
    assert len(code["commit"]) == 40 and isinstance(code["dirty"], bool)  # the tests run in a git checkout
    assert len(said) == 4 and re.fullmatch(r"\[mlp_bn synthetic B=8 K=1\] epoch 2/4 \d+\.\d\ds \(\d+\.\d\d s/epoch, "
                                           r"ETA \d:\d\d:\d\d\) train loss \d\.\d{4} acc 0\.\d{3} \(mean of 1 runs\)",
                                           said[1]), said[1]


def test_divergence_is_recorded_and_exits_zero(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--lr", "1e10", "--weight-decay", "0", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("diverged: ")
    summary = logs.read_summary(out)
    assert (summary["status"], summary["diverged_epoch"], summary["diverged_reason"]) == (
        "diverged", 1, "nonfinite_loss")
    assert summary["epochs_completed"] == 1
    assert_complete(out, 0, [0])  # everything observed before the diverging epoch, nothing after


def test_early_stop_on_unlearnable_data(tmp_path):
    # pure-noise images with a tiny learning rate: train accuracy stays near chance (0.1)
    out = tmp_path / "run"
    args = [*TINY, "--lr", "1e-6", "--data-option", "signal=0", "--eval-every", "1", "--epochs", "6",
            "--early-stop-epoch", "2", "--early-stop-window", "2", "--early-stop-acc", "0.4", "--out", str(out)]
    assert main(args) == 0
    summary = logs.read_summary(out)
    assert (summary["status"], summary["diverged_reason"]) == ("diverged", "early_stop")
    # after epoch 2 (= early_stop_epoch) the evaluations before it, at 0 and 1, fill the window
    assert summary["diverged_epoch"] == 2 and summary["epochs_completed"] == 2
    assert max(logs.read_table(out, "evals")["train_acc"]) <= 0.4
    assert_complete(out, 2, [0, 1, 2])


def accuracies(*acc: float) -> list[dict]:
    """Evaluations every 10 epochs from 0 with the given train accuracies."""
    return [{"epoch": 10 * i, "train_acc": a} for i, a in enumerate(acc)]


def test_early_stop_judges_the_evaluations_the_authors_loop_judges():
    cfg = RunConfig(arch="mlp_bn", dataset="synthetic", batch_size=4, lr=0.1, weight_decay=0.0)  # 50, 0.15, 3
    # at chance through epoch 40, recovered at 50: after epoch 50 the authors judge 20, 30, 40 and stop
    # (the old window, 30, 40, 50 at epoch 50, trained on)
    recovered = accuracies(0.1, 0.1, 0.1, 0.1, 0.1, 0.6)
    assert [early_stop(cfg, recovered, e) for e in (49, 50)] == [False, True]
    # fine at 20, at chance at 30, 40, 50: the authors stop after epoch 51, not 50 (the old window's)
    late = accuracies(0.1, 0.3, 0.5, 0.1, 0.1, 0.1)
    assert [early_stop(cfg, late, e) for e in (50, 51)] == [False, True]
    never = dataclasses.replace(cfg, early_stop_epoch=None)
    assert not any(early_stop(never, late, e) for e in range(0, 500, 7))


@pytest.mark.parametrize("change, key", [
    (["--arch", "lenet"], "arch"),
    (["--lr", "-0.1"], "lr"),
    (["--batch-size", "65"], "batch_size"),  # the synthetic train set has 64 samples
    (["--heads", "4"], "heads"),  # a ViT option given to an MLP
    (["--data-option", "n_train"], "n_train"),
    (["--lr", "fast"], "--lr"),
    (["--device", "tpu9"], "device"),
    (["--eps", "2"], "eps"),
    (["--kernels", "turbo"], "kernels"),
    (["--step", "compiled"], "step"),
    (["--lr", "inf"], "lr=inf"),
    (["--weight-decay", "nan"], "weight_decay=nan"),
    (["--data-option", "signal=inf"], "data_options.signal=inf"),
    (["--data-option", "n_trian=64"], "data_options.n_trian"),
    (["--data-option", "n_train=many"], "data_options.n_train='many'"),
    (["--spec", "/nonexistent/spec.json"], "--spec /nonexistent/spec.json cannot be read"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, capsys, change, key):
    out = tmp_path / "run"
    assert exit_code([*TINY, *change, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("text, why", [('{"config": {}}', "lacks the key 'out'"),
                                       ('{"config": {', "is not valid JSON"),
                                       ('{"config": {"arch": "mlp_bn"}, "out": "x"}', "'dataset' is missing")])
def test_a_bad_spec_file_is_one_line_naming_it(tmp_path, capsys, text, why):
    spec = tmp_path / "spec.json"
    spec.write_text(text)
    assert exit_code(["--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--spec {spec}" in err and why in err, err


@pytest.mark.parametrize("flag, make", [("--out", lambda p: p), ("--ckpt-dir", lambda p: p / "ckpt")])
def test_an_unwritable_location_is_refused_before_the_first_step(tmp_path, capsys, flag, make):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be made at (or under) a file
    args = [*TINY, "--out", str(tmp_path / "run"), flag, str(make(blocker))]
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{make(blocker)} is not a writable directory" in err, err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_failed_atomic_write_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "ranks.csv"
    target.write_bytes(b"old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logs.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        logs.atomic_write_bytes(target, b"new" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["ranks.csv"] and target.read_bytes() == b"old"


def test_a_full_disk_ends_the_command_in_one_sentence_naming_the_file_and_the_resume_is_whole(tmp_path, capsys,
                                                                                              monkeypatch):
    """Issue 25, case 8: the disk filling up during a checkpoint ended `python -m lowrank.train` with a raw
    `OSError: [Errno 28]` traceback (a write names no file). Now one sentence names the checkpoint and the way out
    (exit 1), and the same command, once there is space, ends with the logs of an uninterrupted run."""
    args = [*TINY, "--checkpoint-every", "2", "--out", str(tmp_path / "run")]
    assert main([*TINY, "--out", str(tmp_path / "whole")]) == 0
    real_fsync, calls = logs.os.fsync, []

    def disk_full_at_the_second_checkpoint(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(logs.os, "fsync", disk_full_at_the_second_checkpoint)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    ckpt = checkpoint_path(tmp_path / "run.ckpt", tiny_config())
    assert "Traceback" not in err and err.splitlines()[-1] == (
        f"error: {ckpt}: No space left on device; no space is left on its filesystem: free some there, then run it "
        f"again (finished runs and checkpoints are kept).")
    monkeypatch.setattr(logs.os, "fsync", real_fsync)
    assert main(args) == 0 and outputs(tmp_path / "run") == outputs(tmp_path / "whole")


def test_a_directory_where_a_checkpoint_belongs_is_refused_before_any_work(tmp_path, capsys):
    """Issue 25, case 8: a checkpoint replaced by a directory was read as a corrupt checkpoint (the run restarted
    from epoch 0) and then failed every start on renaming it (IsADirectoryError on .prev.pt); now the command stops
    before any work naming it."""
    cfg, ckpt = tiny_config(), tmp_path / "ckpt"
    checkpoint_path(ckpt, cfg).mkdir(parents=True)
    assert main([*TINY, "--ckpt-dir", str(ckpt), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {checkpoint_path(ckpt, cfg)} is not a file (a directory?) where run {cfg.run_id}'s "
                   f"checkpoint or lease belongs: move it away or remove it, then run again.\n")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize("setting", [{"kernels": "turbo"}, {"step": "compiled"}])
def test_train_pack_rejects_bad_gpu_settings_before_any_work(tmp_path, setting):
    (key, value), = setting.items()
    with pytest.raises(ConfigError, match=f"{key}='{value}' is invalid"):
        train_pack([(tiny_config(), tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", **setting)
    assert not (tmp_path / "run").exists() and not (tmp_path / "ckpt").exists()


def exit_code(argv: list[str]) -> int:
    """main's exit status, whether it returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_bad_input_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowrank.train", *TINY, "--heads", "4", "--out",
                           str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "heads" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_killed_process_resumes_to_identical_logs(tmp_path):
    # 512 samples: ~0.2 s per epoch, so the kill lands mid-run; one checkpoint per epoch
    args = [sys.executable, "-m", "lowrank.train", *TINY, "--epochs", "12", "--data-option", "n_train=512",
            "--checkpoint-every", "1", "--out", str(tmp_path / "run")]
    cfg = tiny_config(epochs=12, data_options={"n_train": 512, "n_test": 32, "size": 8})
    ckpt = checkpoint_path(tmp_path / "run.ckpt", cfg)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed_at = wait_for_checkpoint(ckpt, min_epoch=2, proc=proc, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL and 2 <= killed_at < 12
    assert not (tmp_path / "run" / "summary.json").exists()  # a killed run never looks finished
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=300)
    subprocess.run([*args[:-1], str(tmp_path / "ref")], cwd=ROOT, check=True, capture_output=True, timeout=300)
    assert outputs(tmp_path / "run") == outputs(tmp_path / "ref")
    assert_complete(tmp_path / "run", 12, [0, 2, 4, 6, 8, 10, 12])


def wait_for_checkpoint(path: Path, min_epoch: int, proc: subprocess.Popen, timeout: float) -> int:
    """Poll a (atomically replaced) checkpoint until it holds epoch >= min_epoch; return that epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        try:  # a save moves the checkpoint to its .prev name first: it may be absent for a moment
            epoch = torch.load(path, weights_only=True)["epoch"]
        except FileNotFoundError:
            continue
        if epoch >= min_epoch:
            return epoch
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint for epoch >= {min_epoch} within {timeout} s")


def test_the_schemas_gpu_settings_are_the_engines():
    """config.yaml's gpu_kernels and gpu_step accept exactly what the engine does (lowrank.engine.device)."""
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "schemas" /
                             "config.schema.yaml").read_text())
    assert schema["properties"]["gpu_kernels"]["enum"] == list(KERNELS)
    assert schema["properties"]["gpu_step"]["enum"] == list(STEPS)
