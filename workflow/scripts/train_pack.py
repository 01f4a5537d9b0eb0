"""Snakemake job: train one pack of runs with lowrank.train (resuming from checkpoints), logging to the job log."""

import sys
import traceback
from pathlib import Path

import torch

from lowrank.config import RunConfig
from lowrank.train import train_pack

with open(snakemake.log[0], "a") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = log
    try:
        torch.set_num_threads(snakemake.threads)  # noqa: F821
        runs = [(RunConfig.from_dict(r["config"]), Path(r["out"])) for r in snakemake.params.runs]  # noqa: F821
        statuses = train_pack(runs, data_root=Path(snakemake.params.data_root),  # noqa: F821
                              ckpt_dir=Path(snakemake.params.ckpt_dir),  # noqa: F821
                              checkpoint_every=snakemake.params.checkpoint_every,  # noqa: F821
                              kernels=snakemake.params.kernels,  # noqa: F821
                              log=lambda msg: print(msg, file=log, flush=True))
        for (cfg, out), status in zip(runs, statuses):
            print(f"{status}: {cfg.run_id} -> {out}", file=log, flush=True)
    except BaseException:  # a crash (not a divergence): its traceback goes to the log Snakemake prints
        traceback.print_exc(file=log)
        raise
    finally:
        sys.stderr = sys.__stderr__
