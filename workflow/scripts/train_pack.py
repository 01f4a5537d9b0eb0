"""Snakemake job: train one pack of runs through the engine's entry, as `python -m lowrank.train` does
(lowrank.engine.job: one trainer per run, resuming from checkpoints), this attempt logged to the rule's log and
appended to the pack's history (params.attempts_log). How it trains (checkpoint_every, gpu_kernels, gpu_step,
lease_stale_after_s) comes from the config, not params: workflow/rules/train.smk says why. A signal (SLURM's time
limit, preemption, scancel) stops it checkpointed, with exit status lowrank.engine.stop.RETRY_EXIT: the next attempt
resumes where it stopped, under a time limit learnt from this one's pace (lowrank.pace). An attempt after one that
made no progress stops at once, saying why (exit 1)."""

import os
import sys
from pathlib import Path

import torch

from lowrank import errors, pace
from lowrank.config import RunConfig
from lowrank.engine.job import attempt_log, exit_status, status_line
from lowrank.train import train_pack

sys.excepthook = errors.excepthook  # an error the user acts on, even before the log opens: one sentence
job = snakemake  # noqa: F821 (injected by Snakemake)
ckpt_dir = Path(job.params.ckpt_dir)
with attempt_log(Path(job.log[0]), Path(job.params.attempts_log), job.resources.attempt) as say:
    torch.set_num_threads(job.threads)
    runs = [(RunConfig.from_dict(r["config"]), Path(r["out"])) for r in job.params.runs]
    # a retry of a pack whose last attempt made no progress says why and stops (exit 1): retrying would not help
    ids, slurm_job = [cfg.run_id for cfg, _ in runs], os.environ.get("SLURM_JOB_ID", "")
    stalled = pace.stalled(ckpt_dir, ids, slurm_job) if job.resources.attempt > 1 else None
    if stalled:
        say(stalled)
    else:
        statuses = train_pack(runs, ckpt_dir=ckpt_dir, data_root=Path(job.params.data_root),
                              checkpoint_every=job.config["checkpoint_every"], kernels=job.config["gpu_kernels"],
                              step=job.config["gpu_step"], stale_after=job.config["lease_stale_after_s"], log=say,
                              live_dir=Path(job.params.live_dir))
        for (cfg, out), status in zip(runs, statuses):
            say(status_line(cfg, out, status))
code = 1 if stalled else exit_status(statuses)  # exit_status: RETRY_EXIT after a signal, a failed attempt retried
if code:
    sys.exit(code)
