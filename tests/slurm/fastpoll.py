"""`python tests/slurm/fastpoll.py ARGS...` = `snakemake ARGS...` with the SLURM executor's status polling capped.

Test-only. snakemake-executor-plugin-slurm (2.8) waits 10 s longer after every status poll in which no job
completed (up to 180 s) and does not reset the wait after a failure; on a real cluster that spares the scheduler,
but in tests/test_slurm.py it would add up to a minute per timed-out, cancelled or finished job. This wrapper caps
the wait at LOWRANK_SLURM_POLL seconds (default 2; 0 = keep the plugin's back-off) and changes nothing else: the
jobs, sbatch calls, status queries and retries are the plugin's own.
"""

import os
import sys

from snakemake.cli import main
from snakemake_executor_plugin_slurm import Executor

POLL = float(os.environ.get("LOWRANK_SLURM_POLL", "2"))

if POLL > 0:
    _sleep = Executor.sleep

    async def sleep(self):
        if self.next_seconds_between_status_checks is None or self.next_seconds_between_status_checks > POLL:
            self.next_seconds_between_status_checks = POLL
        await _sleep(self)

    Executor.sleep = sleep

if __name__ == "__main__":
    sys.argv[0] = "snakemake"
    sys.exit(main())
