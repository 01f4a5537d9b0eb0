"""The command line of the training engine (`python -m lowrank.train`): one run from flags, or a pack of runs from
--spec files (JSON: config, out; the tests write them, the pipeline hands its job the runs directly). It trains
through the same entry as the pipeline's job (lowrank.engine.job.train_pack: one trainer per run), with that
module's defaults. Bad input stops before any work with one sentence."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lowrank import data as datasets
from lowrank import engine, errors, layout, models, registry
from lowrank.config import ConfigError, RunConfig
from lowrank.engine.device import KERNELS, STEPS, parse_device
from lowrank.engine.job import DEFAULTS, exit_status, status_line, train_pack

# --<option> for every architecture size option, typed by its default (read from the models' signatures)
ARCH_FLAGS = registry.arch_option_types()


class _Parser(argparse.ArgumentParser):
    """argparse reporting bad flags in one line (no usage block), like every other input error."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def optional_int(text: str) -> int | None:
    """An integer flag value, or None for 'none' (e.g. --early-stop-epoch none: never stop early)."""
    return None if text.lower() == "none" else int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of one run (flags) or of a pack (--spec files)."""
    ap = _Parser(prog="python -m lowrank.train", description=engine.__doc__.splitlines()[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_run_flags(ap.add_argument_group("one run (ignored with --spec)"))
    arch = ap.add_argument_group("architecture size options (only those the architecture accepts)")
    for name, typ in ARCH_FLAGS.items():
        arch.add_argument(f"--{name.replace('_', '-')}", dest=f"arch_{name}", type=typ)
    ap.add_argument("--spec", type=Path, nargs="+", help="train these runs as one pack (JSON: config, out)")
    ap.add_argument("--ckpt-dir", type=Path, help="checkpoints, outside the outputs (default: <out>.ckpt)")
    ap.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every,
                    help="epochs between checkpoints")
    ap.add_argument("--data-root", type=Path, default=DEFAULTS.data_root)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    ap.add_argument("--kernels", default=DEFAULTS.kernels, choices=KERNELS,
                    help="GPU kernels: exact (no TF32, deterministic cuDNN) or fast (PyTorch's defaults)")
    ap.add_argument("--step", default=DEFAULTS.step, choices=STEPS,
                    help="GPU steps: eager (kernel by kernel) or graph (each step replayed as a CUDA graph)")
    ap.add_argument("--lease-stale-after", type=float, default=DEFAULTS.stale_after, metavar="SECONDS",
                    help="take over a run's lease (lowrank.lease) after this long without its holder's heartbeat")
    args = ap.parse_args(argv)
    if not args.spec:
        missing = [f for f in ("arch", "dataset", "batch_size", "lr", "weight_decay", "out")
                   if getattr(args, f) is None]
        if missing:
            ap.error(f"missing --{missing[0].replace('_', '-')} (needed unless --spec is given)")
    return args


def _add_run_flags(run: argparse._ArgumentGroup) -> None:
    """The flags of one run's settings, defaulting to RunConfig's defaults."""
    d = RunConfig(arch="mlp_bn", dataset="synthetic", batch_size=1, lr=1.0, weight_decay=0.0)
    run.add_argument("--arch", help=f"one of {', '.join(models.ARCHS)}")
    run.add_argument("--dataset", help=f"one of {', '.join(datasets.DATASETS)}")
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float, help="initial learning rate μ")
    run.add_argument("--weight-decay", type=float, help="torch.optim.SGD weight_decay (= 2λ of the paper)")
    run.add_argument("--momentum", type=float, default=d.momentum)
    run.add_argument("--seed", type=int, default=d.seed)
    run.add_argument("--epochs", type=int, default=d.epochs)
    run.add_argument("--milestones", type=int, nargs="*", default=list(d.milestones))
    run.add_argument("--gamma", type=float, default=d.gamma, help="LR decay factor at each milestone")
    run.add_argument("--augmentation", default=d.augmentation, help="none | code | paper")
    run.add_argument("--eval-every", type=int, default=d.eval_every)
    run.add_argument("--no-eval-final", dest="eval_final", action="store_false",
                     help="skip the evaluation after the last epoch (the authors' code never made it)")
    run.add_argument("--eps", type=float, nargs="+", default=list(d.eps), help="rank thresholds")
    run.add_argument("--early-stop-epoch", type=optional_int, default=d.early_stop_epoch,
                     help="first epoch that may stop early; 'none' never stops")
    run.add_argument("--early-stop-acc", type=float, default=d.early_stop_acc)
    run.add_argument("--early-stop-window", type=int, default=d.early_stop_window)
    run.add_argument("--test-batch-size", type=int, default=d.test_batch_size)
    run.add_argument("--dtype", default=d.dtype, help="float32 | float64")
    run.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                     help="dataset option (synthetic: n_train, n_test, channels, size, classes, signal, seed; digits: size)")
    run.add_argument("--out", type=Path, help="the run's output directory")


def read_spec(path: Path) -> tuple[RunConfig, Path]:
    """One --spec file's (config, output dir); any problem with it is one sentence naming the file."""
    try:
        spec = json.loads(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"--spec {path} cannot be read: {err.strerror}.") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"--spec {path} is not valid JSON: {err.msg} at line {err.lineno}.") from None
    missing = [k for k in ("config", "out") if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise ConfigError(f"--spec {path} lacks the key '{missing[0]}' (a spec holds 'config' and 'out').")
    try:
        return RunConfig.from_dict(spec["config"]), Path(spec["out"])
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"--spec {path}: {err}") from None


def _option_value(text: str):
    """A KEY=VALUE option's value as int, float or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def runs_from_args(args: argparse.Namespace) -> list[tuple[RunConfig, Path]]:
    """The (config, output dir) pairs the command line asks for."""
    if args.spec:
        return [read_spec(p) for p in args.spec]
    options = {}
    for item in args.data_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--data-option {item!r} is invalid: write KEY=VALUE.")
        options[key] = _option_value(value)
    arch_options = {k: getattr(args, f"arch_{k}") for k in ARCH_FLAGS if getattr(args, f"arch_{k}") is not None}
    cfg = RunConfig(arch=args.arch, dataset=args.dataset, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, momentum=args.momentum, seed=args.seed, epochs=args.epochs,
                    milestones=tuple(args.milestones), gamma=args.gamma, arch_options=arch_options,
                    data_options=options, augmentation=args.augmentation, eval_every=args.eval_every,
                    eval_final=args.eval_final, eps=tuple(args.eps), early_stop_epoch=args.early_stop_epoch,
                    early_stop_acc=args.early_stop_acc, early_stop_window=args.early_stop_window,
                    test_batch_size=args.test_batch_size, dtype=args.dtype)
    return [(cfg, args.out)]


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: bad input stops before any work with one sentence (exit 2), as does an error the user acts
    on later (lowrank.errors: a full disk, a lease taken over; exit 1); a diverged run exits 0, a pack stopped by a
    signal exits lowrank.engine.stop.RETRY_EXIT (75) once checkpointed."""
    args = parse_args(argv)
    try:
        runs = runs_from_args(args)
        ckpt_dir = args.ckpt_dir or layout.default_checkpoints_dir(runs[0][1])
        device = parse_device(args.device)
        statuses = train_pack(runs, ckpt_dir=ckpt_dir, data_root=args.data_root,
                              checkpoint_every=args.checkpoint_every, device=device, kernels=args.kernels,
                              step=args.step, stale_after=args.lease_stale_after,
                              log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ConfigError, datasets.DatasetUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (errors.UserError, OSError) as err:
        if (sentence := errors.sentence(err)) is None:
            raise
        print(f"error: {sentence}", file=sys.stderr)
        return 1
    for (cfg, out), status in zip(runs, statuses):
        print(status_line(cfg, out, status))
    return exit_status(statuses)
