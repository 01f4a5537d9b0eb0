"""CPU benchmark: K runs of MLP-BN-10-100 at B = 16 as one fused pack (lowrank.engine.pack.Pack) against the same K
runs trained one after another by a plain loop (nn.Module + torch.optim.SGD), in the same process.

Rates are model-steps per second (K x optimizer steps per second): the best of several timed epochs after a
warm-up epoch, plain and fused timed in turn so both see the same machine load. Last, the cost of the signal check
the training loop makes after every step (lowrank.engine.stop), as a fraction of the fastest fused step.
"""

from __future__ import annotations

import argparse
import timeit

import torch

from bench.common import best_seconds, configs, fused_epoch, load, plain_epoch
from lowrank.engine import stop

CPU = torch.device("cpu")
MLP_BN_10_100 = {"depth": 10, "width": 100, "activation": "relu"}
BATCH = 16
CIFAR_TRAIN = 50_000


def main() -> None:
    """Print one table: K, plain and fused model-steps/s, their ratio, and each one's time per 50k-sample epoch."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16], help="pack sizes K")
    ap.add_argument("--n-train", type=int, default=2048, help="samples per timed epoch (steps = n / 16)")
    ap.add_argument("--repeats", type=int, default=10, help="timed epochs per method and K (the best counts)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = -(-args.n_train // BATCH)
    print(f"MLP-BN-10-100, B={BATCH}, synthetic 3x32x32, {args.n_train} samples ({steps} steps) per timed epoch, "
          f"best of {args.repeats}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'K':>3} {'plain steps/s':>14} {'fused steps/s':>14} {'ratio':>6} "
          f"{'plain s/epoch/run':>18} {'fused s/epoch/run':>18}   (epoch = 50k samples, extrapolated)")
    fastest_step = float("inf")
    for k in args.ks:
        cfgs = configs("mlp_bn", MLP_BN_10_100, k, BATCH, args.n_train)
        data = load(cfgs[0], CPU)
        sec = best_seconds({"plain": plain_epoch(cfgs, data, CPU), "fused": fused_epoch(cfgs, data, CPU)}, CPU,
                           args.repeats)
        rate = {name: k * steps / s for name, s in sec.items()}
        epoch_s = {name: s / k * CIFAR_TRAIN / args.n_train for name, s in sec.items()}
        print(f"{k:>3} {rate['plain']:>14.0f} {rate['fused']:>14.0f} {rate['fused'] / rate['plain']:>6.2f} "
              f"{epoch_s['plain']:>18.1f} {epoch_s['fused']:>18.1f}")
        fastest_step = min(fastest_step, sec["fused"] / steps)
    check = signal_check_seconds()
    print(f"signal check (lowrank.engine.stop: asked after every step): {check * 1e9:.0f} ns, "
          f"{check / fastest_step:.1e} of the fastest fused step ({fastest_step * 1e3:.2f} ms)")


def signal_check_seconds(calls: int = 1_000_000) -> float:
    """Seconds of the check the training loop makes after every step: a StopRequest, never set, asked once."""
    request = stop.StopRequest()
    return min(timeit.repeat(request, number=calls, repeat=5)) / calls


if __name__ == "__main__":
    main()
