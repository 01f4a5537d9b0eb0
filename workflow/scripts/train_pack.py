"""Snakemake job: train one pack of runs with lowrank.train (resuming from checkpoints), one trainer per run.

The job holds each run's lease (lowrank.lease; layout.lease_file puts it next to the run's checkpoint) while it
trains, so a second job for the same runs (a restarted controller resubmits the jobs it finds incomplete) waits for
the first to finish and then only writes the outputs from the finished checkpoints; a lease whose holder is gone is
taken over. train_pack calls `log` once per epoch, right before it checkpoints: that call renews the leases'
heartbeat.

Everything goes to the rule's log (Snakemake deletes it when the next attempt starts, so it holds this attempt) and
is appended to the pack's history (params.attempts_log), where every attempt starts with a header naming its SLURM
job, host and attempt number, and every line starts with `job <SLURM job id> | ` (`pid <pid> | ` outside SLURM):
two jobs of one pack may write at once (one trains, the other waits for its leases).
"""

import os
import socket
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

from lowrank import layout, lease
from lowrank.config import RunConfig
from lowrank.train import train_pack

job = snakemake  # noqa: F821 (injected by Snakemake)
history_path = Path(job.params.attempts_log)
history_path.parent.mkdir(parents=True, exist_ok=True)

slurm_job = os.environ.get("SLURM_JOB_ID")
tag = f"job {slurm_job} | " if slurm_job else f"pid {os.getpid()} | "

with open(job.log[0], "a") as log, open(history_path, "a") as history:

    def say(msg: str) -> None:
        print(msg, file=log, flush=True)
        print("".join(tag + line for line in msg.splitlines(keepends=True)), file=history, flush=True)

    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    say(f"=== attempt {job.resources.attempt}: SLURM job {slurm_job or '-'} (restart {restarts}) on "
        f"{socket.gethostname()}, pid {os.getpid()}, {datetime.now(timezone.utc).isoformat(timespec='seconds')} ===")
    sys.stderr = log
    try:
        torch.set_num_threads(job.threads)
        runs = [(RunConfig.from_dict(r["config"]), Path(r["out"])) for r in job.params.runs]
        ckpt_dir = Path(job.params.ckpt_dir)
        leases = [layout.lease_file(ckpt_dir, cfg.run_id) for cfg, _ in runs]
        with lease.holding(leases, stale_after=job.config["lease_stale_after_s"], log=say) as held:

            def epoch_done(msg: str) -> None:
                say(msg)
                for lz in held:
                    lz.renew()

            statuses = train_pack(runs, data_root=Path(job.params.data_root), ckpt_dir=ckpt_dir,
                                  checkpoint_every=job.config["checkpoint_every"], kernels=job.config["gpu_kernels"],
                                  step=job.config["gpu_step"], log=epoch_done)
        for (cfg, out), status in zip(runs, statuses):
            say(f"{status}: {cfg.run_id} -> {out}")
    except BaseException:  # a crash (not a divergence): its traceback goes to the log Snakemake prints
        say(traceback.format_exc().rstrip())
        raise
    finally:
        sys.stderr = sys.__stderr__
