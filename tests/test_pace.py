"""Time limits that learn (lowrank.pace): each attempt records its pack's measured seconds per step next to the
runs' checkpoints; the next attempt's time limit (plan.Pack.minutes) comes from that pace for the steps left, not
from the resources table; a retry after an attempt that made no progress stops, saying why."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest
import torch
import yaml

from lowrank import pace, plan
from lowrank.engine.loop import train_runs
from lowrank.engine.pack import Pack
from lowrank.train import train_pack
from test_job import snakemake_job
from test_stop import EPOCHS, STEPS, pack_configs

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
TABLE = yaml.safe_load((ROOT / "config.yaml").read_text())["resources"]


def stopped_after(tmp_path: Path, cfgs, steps: int) -> list[str]:
    """Train the pack until a stop request after `steps` steps (as a signal would); return the statuses."""
    trained, step = [], Pack.step

    def counted(self, x, y):
        step(self, x, y)
        trained.append(1)

    Pack.step = counted
    try:
        return train_runs([(c, tmp_path / "run" / c.run_id) for c in cfgs], data_root=Path("data"),
                          ckpt_dir=tmp_path / "ckpt", checkpoint_every=10, device=CPU, kernels="exact",
                          step="eager", log=lambda msg: None, live_dir=None, stop=lambda: len(trained) >= steps)
    finally:
        Pack.step = step


def test_a_stopped_pack_records_its_pace_and_the_next_time_limit_comes_from_it(tmp_path):
    cfgs = pack_configs("mlp_bn", 4, "none")
    assert stopped_after(tmp_path, cfgs, 5) == ["running"] * 4
    records = [pace.read(tmp_path / "ckpt", c.run_id) for c in cfgs]
    assert {(r["pack_runs"], r["steps_done"], r["steps_done_at_start"], r["steps_left"]) for r in records} == {
        (4, 5, 0, EPOCHS * STEPS - 5)}
    rate = records[0]["seconds_per_step"]
    assert 0 < rate < 5 and all(r["seconds_per_step"] == rate for r in records)  # one pack, one pace

    pack = plan.Pack(tuple(cfgs), TABLE["mlp_bn"], TABLE)
    table_minutes = [pack.minutes(a) for a in (1, 2)]
    assert table_minutes == [pack.minutes(a, tmp_path / "elsewhere") for a in (1, 2)]  # no record: the table
    learned = math.ceil(rate * 7 * TABLE["runtime_margin"] / 60 + TABLE["runtime_overhead_min"])
    assert [pack.minutes(a, tmp_path / "ckpt") for a in (1, 2, 3)] == [learned] * 3  # 7 steps left, any attempt
    # a pace 1,000x slower: the steps left at that pace, capped by max_runtime_min, whatever the table says
    for c in cfgs:
        pace.write(tmp_path / "ckpt", c.run_id, seconds_per_step=rate * 1000)
    slow = math.ceil(rate * 1000 * 7 * TABLE["runtime_margin"] / 60 + TABLE["runtime_overhead_min"])
    assert pack.minutes(2, tmp_path / "ckpt") == min(slow, TABLE["max_runtime_min"])

    statuses = train_pack([(c, tmp_path / "run" / c.run_id) for c in cfgs], ckpt_dir=tmp_path / "ckpt", device=CPU,
                          log=lambda msg: None)
    assert statuses == ["finished"] * 4
    assert {pace.read(tmp_path / "ckpt", c.run_id)["steps_left"] for c in cfgs} == {0}
    assert pack.minutes(2, tmp_path / "ckpt") == TABLE["runtime_overhead_min"]  # done: only writes the outputs


def test_packs_trained_one_after_another_add_their_times(tmp_path):
    """Two sub-packs (a pack split for memory, or runs at different places) take the sum of their times."""
    ckpt, ids = tmp_path / "ckpt", ["a", "b", "c"]
    for run_id, (rate, k, left) in zip(ids, [(0.3, 2, 100), (0.3, 2, 100), (0.2, 1, 50)]):
        pace.write(ckpt, run_id, seconds_per_step=rate, pack_runs=k, steps_left=left, steps_done=1,
                   steps_done_at_start=0)
    assert pace.seconds_left(ckpt, ids) == pytest.approx(0.3 * 100 + 0.2 * 50)
    pace.write(ckpt, "d", steps_left=0)  # a run done before any pace was measured counts for nothing
    assert pace.seconds_left(ckpt, [*ids, "d"]) == pytest.approx(0.3 * 100 + 0.2 * 50)
    assert pace.seconds_left(ckpt, [*ids, "e"]) is None  # a run never trained: the table's estimate


def test_a_retry_after_an_attempt_without_progress_stops_saying_why(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    cfgs = pack_configs("mlp_bn", 1, "none")
    job = snakemake_job(cfgs, tmp_path)
    ckpt = Path(job.params.ckpt_dir)
    pace.write(ckpt, cfgs[0].run_id, seconds_per_step=0.1, pack_runs=1, steps_done=5, steps_done_at_start=5,
               steps_left=7, job="77")  # the last attempt, SLURM job 77, started and ended at step 5
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "workflow" / "scripts" / "train_pack.py"), init_globals={"snakemake": job})
    assert exit_.value.code == 1
    said = Path(job.log[0]).read_text().splitlines()[1:]
    assert said == ["no run of this pack advanced in its last attempt (it started and ended with 5 steps done of "
                    "12): it failed or was stopped before its first checkpoint, or its time limit is shorter than "
                    "its start-up; not retrying it (its attempts log says more; run snakemake again to try once "
                    "more)."]
    assert not (tmp_path / "job" / cfgs[0].run_id).exists()
    # job 77 requeued (preempted) trains: its earlier start may have been preempted before its first step
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    runpy.run_path(str(ROOT / "workflow" / "scripts" / "train_pack.py"), init_globals={"snakemake": job})
    assert (tmp_path / "job" / cfgs[0].run_id / "summary.json").exists()
    monkeypatch.delenv("SLURM_JOB_ID")
    (tmp_path / "job" / cfgs[0].run_id / "summary.json").unlink()
    pace.write(ckpt, cfgs[0].run_id, steps_done=5, steps_done_at_start=5, steps_left=7, job="78")
    job.resources.attempt = 1  # a new snakemake: its first attempt trains
    runpy.run_path(str(ROOT / "workflow" / "scripts" / "train_pack.py"), init_globals={"snakemake": job})
    assert (tmp_path / "job" / cfgs[0].run_id / "summary.json").exists()
    assert pace.stalled(ckpt, [cfgs[0].run_id], "") is None

