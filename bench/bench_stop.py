"""CPU benchmark: from a SIGTERM to the exit of `python -m lowrank.train`, per paper model (config.yaml `models`).

The signal lands just as a step starts (the worst case: the whole step is in flight); the process finishes that
step, writes every run's mid-epoch checkpoint (lowrank.engine.stop) and exits. SLURM sends SIGKILL KillWait
seconds after SIGTERM (30 s by default), so this must stay well inside it. Printed per model and pack size K: the
checkpoint size, the seconds from the signal to the end of the step in flight, from there to the exit (the
checkpoint write and the process's exit), and in all. Synthetic 3x32x32 data (CIFAR's shape), one torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import configs, preset_options
from lowrank import plan

ROOT = Path(__file__).resolve().parents[1]
# `python -m lowrank.train ARGV` whose pack appends "start <wall time>" and "end <wall time>" of every step to STAMPS
CHILD = """
import sys, time
import torch
from lowrank.engine.pack import Pack
from lowrank.train import main
stamps, *argv = sys.argv[1:]
torch.set_num_threads(1)
step = Pack.step
def stamped(self, x, y):
    with open(stamps, "a") as fh:
        print("start", time.time(), file=fh, flush=True)
        step(self, x, y)
        print("end", time.time(), file=fh, flush=True)
Pack.step = stamped
sys.exit(main(argv))
"""


def stop_seconds(preset: dict, k: int, batch: int, tmp: Path) -> tuple[float, float, float, int]:
    """(step in flight, checkpoint and exit, signal to exit) seconds and the checkpoints' bytes of K runs of
    `preset`, signalled as their third step starts."""
    cfgs = configs(preset["arch"], preset_options(preset), k, batch, n_train=batch * 8)
    specs = []
    for c in cfgs:
        specs.append(tmp / f"{c.run_id}.json")
        specs[-1].write_text(json.dumps({"config": c.to_dict(), "out": str(tmp / "run" / c.run_id)}))
    stamps = tmp / "stamps"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(stamps), "--spec", *map(str, specs), "--ckpt-dir",
                              str(tmp / "ckpt"), "--device", "cpu"], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
    while not stamps.exists() or stamps.read_text().count("start") < 3:  # the third step has started
        if child.poll() is not None:
            raise RuntimeError(child.stderr.read().decode()[-2000:])
        time.sleep(0.001)
    signalled = time.time()
    child.send_signal(signal.SIGTERM)
    code = child.wait(timeout=600)
    ended = time.time()
    if code != 75:
        raise RuntimeError(f"exit status {code}: {child.stderr.read().decode()[-2000:]}")
    step_end = float(stamps.read_text().split("end ")[3].split()[0])
    size = sum(p.stat().st_size for p in (tmp / "ckpt").glob("*.pt"))
    return step_end - signalled, ended - step_end, ended - signalled, size


def main() -> None:
    """Print one line per paper model and K."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 8], help="pack sizes K (MLP-BN-2-10000: K = 1 only, "
                    "the paper's one run)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--models", nargs="+", help="config.yaml model presets (default: all)")
    args = ap.parse_args()
    models = plan.load(ROOT / "config.yaml")["models"]
    print(f"SIGTERM to exit of python -m lowrank.train, CPU, 1 thread, B={args.batch_size}, synthetic 3x32x32")
    print(f"{'model':<16} {'K':>2} {'checkpoints MB':>15} {'step in flight s':>17} {'checkpoint+exit s':>18} "
          f"{'signal to exit s':>17}")
    for name in args.models or models:
        for k in [1] if name == "mlp_bn_2_10000" else args.ks:
            with tempfile.TemporaryDirectory() as tmp:
                step, rest, total, size = stop_seconds(models[name], k, args.batch_size, Path(tmp))
            print(f"{name:<16} {k:>2} {size / 1e6:>15.0f} {step:>17.2f} {rest:>18.2f} {total:>17.2f}", flush=True)


if __name__ == "__main__":
    main()
