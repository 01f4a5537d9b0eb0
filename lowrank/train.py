"""One training engine for a pack of K runs trained as one fused model (K = 1 is the ordinary run).

Runs in a pack share architecture, data, batch size and schedule (RunConfig.pack_key) and differ in learning
rate, weight decay, momentum and seed. Their BatchNorm buffers and parameters are stacked: the weights of Linear
layers as [K, out, in] tensors, every other parameter in one flat [K, P] tensor. The forward pass is the network
with its layers swapped for packed ones (lowrank.models.packed: grouped convolutions, batched matrix products,
BatchNorm over K·C channels), so each run keeps its own initialisation, data order, BatchNorm statistics and
schedule, and logs what it would log alone.

The pack's tensors are bound into the packed network once per epoch (packed.bind; in-place updates keep them
bound), not passed by functional_call on every step. The K runs' losses are summed, so one backward pass gives
every run the gradient of its own loss. The SGD update is torch.optim.SGD's (g += wd·w; b = mom·b + g; w -= lr·b)
with per-run columns of learning rates, weight decays and momenta: on the flat tensor a handful of whole-pack
operations (sgd_step_); on a Linear weight, whose gradient is the product of two thin factors (the layer's input,
which the layer keeps on the pack's tape, and the gradient of its output, which the backward pass gives), one
batched GEMM sums that product straight into the weight or its momentum (sgd_product_step_): the gradient is
never formed. That saves its write and read (and the concatenation into [K, P]), which dominate a wide layer's
step in a pack; it equals sgd_step_ up to rounding.

On a GPU, training runs by default under `kernels="exact"` (cuDNN without TF32, deterministic algorithms): a pack
then equals its runs alone within float32 rounding (with TF32 they differed by 0.2 after one step), and a killed
and resumed run writes the same bytes as an uninterrupted one. `kernels="fast"` trains under PyTorch's defaults
instead (TF32 convolutions, non-deterministic algorithms: ~2-3x faster convolutional packs, no byte-identical
resume); bench/README.md gives the measurements.

Limitation: dropout (the ViT's) draws one mask for the whole packed activation from the global RNG, so with
dropout > 0 a run's masks depend on its pack mates and a pack is not bit-equal to its runs trained alone
(everything else is per run: initialisation, data order, augmentation, BatchNorm statistics).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import lowrank
from lowrank import data as datasets
from lowrank import checkpoints, logs, metrics, models, provenance
from lowrank.checkpoints import checkpoint_path
from lowrank.config import ConfigError, RunConfig
from lowrank.models.packed import pack as packed_model
from lowrank.models.packed import PackedLinear, bind, gather_packed, per_run, shared_input, to_packed

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class RunState:
    """What one run of a pack carries between epochs (and into its checkpoint)."""

    cfg: RunConfig
    out: Path
    epoch: int = 0
    order: torch.Generator = field(default_factory=torch.Generator)  # data order, on the CPU
    aug: torch.Generator | None = None  # augmentation, on the training device
    evals: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    ranks: list = field(default_factory=list)
    spectra: dict = field(default_factory=dict)  # layer -> list of arrays, one per evaluation
    spectra_epochs: list = field(default_factory=list)
    status: str = logs.RUNNING
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    wall_time: float = 0.0


def new_state(cfg: RunConfig, out: Path | None, device: torch.device) -> RunState:
    """A run at epoch 0: its data-order (and augmentation) generator seeded from the run's seed."""
    s = RunState(cfg=cfg, out=Path(out) if out is not None else None)
    s.order.manual_seed(cfg.seed)
    if cfg.augmentation != "none":
        s.aug = torch.Generator(device=device)
        s.aug.manual_seed(cfg.seed + 1)
    return s


@dataclass(frozen=True)
class Columns:
    """One epoch's per-run SGD settings as [K, 1] columns (None where no run of the pack needs one)."""

    neg_lr: torch.Tensor  # minus the learning rate
    wd: torch.Tensor | None  # weight decay
    mom: torch.Tensor | None  # momentum (None: no run has momentum)
    mom_mask: torch.Tensor | None  # 1 for the runs with momentum, 0 for the others (None: all have momentum)
    mom_wd: torch.Tensor | None  # weight decay of the runs with momentum, 0 for the others
    plain_lr: torch.Tensor | None  # minus the learning rate of the runs without momentum, 0 for the others
    plain_decay: torch.Tensor | None  # 1 - lr·wd for the runs without momentum, 1 for the others

    def view(self, *shape: int) -> Columns:
        """The same columns viewed as `shape` (-1, 1, 1 broadcasts them over [K, out, in] weights)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Columns(**{name: None if t is None else t.view(*shape) for name, t in values.items()})


def sgd_columns(cfgs: list[RunConfig], epoch: int, dtype: torch.dtype, device: torch.device) -> Columns:
    """The runs' SGD settings for training epoch `epoch` as columns (see Columns)."""
    def column(values):
        return torch.tensor(values, dtype=dtype, device=device).unsqueeze(1)
    lr = [c.lr_at(epoch) for c in cfgs]
    wd, mom = [c.weight_decay for c in cfgs], [c.momentum for c in cfgs]
    plain = [not m for m in mom]
    mixed = any(mom) and any(plain)
    return Columns(neg_lr=column([-r for r in lr]), wd=column(wd) if any(wd) else None,
                   mom=column(mom) if any(mom) else None,
                   mom_mask=column([float(not p) for p in plain]) if mixed else None,
                   mom_wd=column([0.0 if p else d for d, p in zip(wd, plain)]) if any(mom) and any(wd) else None,
                   plain_lr=column([-r if p else 0.0 for r, p in zip(lr, plain)]) if any(plain) else None,
                   plain_decay=column([1 - r * d if p else 1.0 for r, d, p in zip(lr, wd, plain)])
                   if any(plain) and any(wd) else None)


def sgd_step_(w: torch.Tensor, grad: torch.Tensor, buf: torch.Tensor | None, c: Columns) -> None:
    """torch.optim.SGD's step on [K, P] rows (g += wd·w; b = mom·b + g; w -= lr·b), in place; consumes grad.
    Runs without momentum keep b = 0 and step by g, exactly as alone."""
    if c.wd is not None:
        grad.addcmul_(w, c.wd)
    if c.mom is not None:
        buf.mul_(c.mom)
        if c.mom_mask is None:
            buf.add_(grad)
        else:
            buf.addcmul_(grad, c.mom_mask)
        w.addcmul_(buf, c.neg_lr)
    if c.plain_lr is not None:
        w.addcmul_(grad, c.plain_lr)


def sgd_product_step_(w: torch.Tensor, grad_out: torch.Tensor, x: torch.Tensor, buf: torch.Tensor | None,
                      c: Columns) -> None:
    """The same step for weights w [K, O, I] whose gradient is the product grad_out^T x (grad_out [K, M, O], x
    [K, M, I]; columns viewed as [K, 1, 1]): the product is summed by one batched GEMM straight into b, or, for
    runs without momentum, into w = (1 - lr·wd)·w - lr·grad_out^T x; it is never formed. Equal to sgd_step_ up to
    rounding; it saves the gradient's write and read, the dominant cost of a wide layer's step in a pack."""
    if c.mom is not None:
        buf.mul_(c.mom)
        if c.mom_wd is not None:
            buf.addcmul_(w, c.mom_wd)
        buf.baddbmm_((grad_out if c.mom_mask is None else grad_out * c.mom_mask).transpose(1, 2), x)
        w.addcmul_(buf, c.neg_lr)
    if c.plain_lr is not None:
        if c.plain_decay is not None:
            w.mul_(c.plain_decay)
        w.baddbmm_((grad_out * c.plain_lr).transpose(1, 2), x)


class Pack:
    """K runs as one model: stacked parameters and buffers, per-run SGD hyperparameters.

    The weights of Linear layers are held as [K, out, in] tensors, stepped from their gradients' factors
    (sgd_product_step_); every other parameter lives in one flat [K, P] tensor, stepped as a whole (sgd_step_)."""

    def __init__(self, states: list[RunState], data: datasets.Data, device: torch.device):
        cfg = states[0].cfg
        self.states, self.device, self.dtype = states, device, DTYPES[cfg.dtype]
        template = models.build(cfg.arch, in_channels=data.channels, image_size=data.size,
                                num_classes=data.classes, **cfg.arch_options)
        self.layers = models.rank_layers(template)
        self.names = [n for n, _ in template.named_parameters()]
        self.numel = sum(p.numel() for p in template.parameters())
        self.buffer_names = [n for n, _ in template.named_buffers()]
        self.model = packed_model(template)
        self.linears = {m: f"{name}.weight" if name else "weight" for name, m in self.model.named_modules()
                        if isinstance(m, PackedLinear)}  # module -> its weight's name
        linear_weights = set(self.linears.values())
        self.rest = [n for n in self.names if n not in linear_weights]
        self.rest_shapes = [p.shape for n, p in template.named_parameters() if n not in linear_weights]
        runs, buffers = [], []
        for s in states:  # each run's own initialisation, exactly as if it were built alone
            torch.manual_seed(s.cfg.seed)
            m = models.build(cfg.arch, in_channels=data.channels, image_size=data.size,
                             num_classes=data.classes, **cfg.arch_options).to(self.dtype)
            runs.append(dict(m.named_parameters()))
            buffers.append(dict(m.named_buffers()))
        with torch.no_grad():
            self.flat = torch.stack([torch.cat([r[n].reshape(-1) for n in self.rest]) for r in runs]).to(device)
            self.weights = {n: torch.stack([r[n] for r in runs]).to(device) for n in self.linears.values()}
        self.buffers = {n: torch.stack([b[n] for b in buffers]).to(device) for n in self.buffer_names}
        momentum = any(s.cfg.momentum for s in states)
        self.momentum_buf = torch.zeros_like(self.flat) if momentum else None
        self.momenta = {n: torch.zeros_like(w) if momentum else None for n, w in self.weights.items()}
        self.leaves: list[torch.Tensor] = []  # the flat rest's views, as bound for autograd (see bind)
        self.tape: list[tuple] = []  # the Linear layers' (layer, input, output) of the step in progress

    # --- parameters ---------------------------------------------------------------------------------------
    def params(self, flat: torch.Tensor, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every parameter as a [K, ...] tensor: views into the flat [K, P] tensor, and the Linear weights."""
        k = flat.shape[0]
        views = flat.split([math.prod(shape) for shape in self.rest_shapes], 1)
        return {**{n: t.view(k, *shape) for n, t, shape in zip(self.rest, views, self.rest_shapes)}, **weights}

    def _tensors(self, momentum: bool) -> dict[str, torch.Tensor] | None:
        """Every parameter (or momentum buffer) as a [K, ...] tensor; None for the buffers of a pack without
        momentum."""
        if not momentum:
            return self.params(self.flat, self.weights)
        return None if self.momentum_buf is None else self.params(self.momentum_buf, self.momenta)

    def run_vector(self, k: int, momentum: bool = False) -> torch.Tensor:
        """Run k's parameters (or momentum buffers: zeros in a pack without momentum) as one vector in the
        network's parameter order, as torch.cat of its model's parameters would give."""
        tensors = self._tensors(momentum)
        if tensors is None:
            return torch.zeros(self.numel, dtype=self.dtype, device=self.device)
        return torch.cat([tensors[n][k].reshape(-1) for n in self.names])

    def set_run(self, k: int, vector: torch.Tensor, momentum: bool = False) -> None:
        """Inverse of run_vector: overwrite run k's parameters (or momentum buffers) from one vector."""
        tensors = self._tensors(momentum)
        if tensors is None:
            return  # no run of this pack has momentum: its buffers stay zero
        parts = vector.to(self.device).split([tensors[n][k].numel() for n in self.names])
        for n, part in zip(self.names, parts):
            tensors[n][k] = part.view(tensors[n][k].shape)

    def bind(self) -> None:
        """Bind this pack's tensors into its model (which sub-packs share): the flat rest as leaf views for autograd
        to differentiate, the Linear weights (stepped by hand: no gradient, the tape gives their factors) and
        the buffers. In-place updates keep them bound; each epoch binds again, after keep() replaced them."""
        views = self.params(self.flat, {})
        self.leaves = [views[n].detach().requires_grad_() for n in self.rest]
        bind(self.model, {**dict(zip(self.rest, self.leaves)), **self.weights, **self.buffers})
        self.tape.clear()
        for module in self.linears:
            module.tape = self.tape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [K, B, classes] of the K runs (as last bound) on packed inputs x [B, K·C, ...]."""
        return per_run(self.model(x), len(self.states))

    def keep(self, mask: list[bool]) -> None:
        """Drop the runs whose mask is False (diverged or finished): the others go on untouched."""
        idx = torch.tensor([i for i, k in enumerate(mask) if k], dtype=torch.long, device=self.device)
        self.states = [s for s, k in zip(self.states, mask) if k]
        self.flat = self.flat.index_select(0, idx)
        self.weights = {n: w.index_select(0, idx) for n, w in self.weights.items()}
        if self.momentum_buf is not None:
            self.momentum_buf = self.momentum_buf.index_select(0, idx)
            self.momenta = {n: b.index_select(0, idx) for n, b in self.momenta.items()}
        self.buffers = {n: b.index_select(0, idx) for n, b in self.buffers.items()}

    # --- one epoch ----------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int, data: datasets.Data, fill: torch.Tensor | None) -> torch.Tensor:
        """One epoch of SGD for every run; returns a [K] bool tensor: did the run diverge (a non-finite loss,
        or weights that overflowed in the epoch's last step, which only the next loss would show)."""
        cfg = self.states[0].cfg
        n, batch = data.train_x.shape[0], cfg.batch_size
        columns = sgd_columns([s.cfg for s in self.states], epoch, self.dtype, self.device)
        per_weight = columns.view(-1, 1, 1)
        order = torch.stack([torch.randperm(n, generator=s.order) for s in self.states]).to(self.device)
        bad = torch.zeros(len(self.states), dtype=torch.bool, device=self.device)
        loss_sum = torch.zeros(len(self.states), dtype=torch.float64, device=self.device)
        correct = torch.zeros(len(self.states), dtype=torch.int64, device=self.device)
        self.bind()
        self.model.train()
        for start in range(0, n, batch):  # drop_last=False, as the authors' DataLoader
            idx = order[:, start:start + batch]
            if cfg.augmentation == "none":
                x = gather_packed(data.train_x, idx)
            else:
                x = to_packed(torch.stack([datasets.augment(data.train_x[i], s.aug, cfg.augmentation, fill)
                                           for i, s in zip(idx, self.states)]))
            loss, hits = self.step(x, data.train_y[idx], columns, per_weight)
            bad |= ~torch.isfinite(loss)
            loss_sum += loss.double() * idx.shape[1]
            correct += hits
        for w in (self.flat, *self.weights.values()):
            bad |= ~torch.isfinite(w).flatten(1).all(1)
        self.epoch_loss, self.epoch_acc = loss_sum / n, correct.double() / n  # for the progress line
        return bad

    def step(self, x: torch.Tensor, y: torch.Tensor, columns: Columns,
             per_weight: Columns) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of every run on its own batch (x packed [B, K·C, ...], y [K, B]) with the epoch's columns
        ([K, 1], and viewed [K, 1, 1] for the Linear weights); returns the K batch losses and correct counts (before
        the step). One backward pass gives the flat rest's gradient and each Linear weight's gradient factors."""
        logits = self.forward(x)
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
        if len(self.tape) != len(self.linears) or len({layer for layer, _, _ in self.tape}) != len(self.linears):
            raise ValueError("every Linear layer of a packed network must run exactly once per training step")
        grads = torch.autograd.grad(loss.sum(), [*self.leaves, *(out for _, _, out in self.tape)],
                                    materialize_grads=True)  # a parameter the loss does not use: zero gradient
        with torch.no_grad():  # run k's rows of each gradient are those of its own loss
            grad = torch.cat([g.flatten(1) for g in grads[:len(self.leaves)]], 1)
            sgd_step_(self.flat, grad, self.momentum_buf, columns)
            # the Linear weights last and the first layer's last of all: a pack's largest weights (an MLP's first
            # layer) are then the freshest in cache when the next step's forward pass reads them (~4 % faster)
            for (module, x_in, _), grad_out in zip(reversed(self.tape), reversed(grads[len(self.leaves):])):
                n = self.linears[module]
                sgd_product_step_(self.weights[n], grad_out, x_in, self.momenta[n], per_weight)
        self.tape.clear()
        return loss.detach(), (logits.detach().argmax(-1) == y).sum(1)

    @torch.no_grad()
    def evaluate(self, data: datasets.Data, batch: int) -> list[dict]:
        """Mean loss and accuracy of every run on the whole train and test sets (eval mode, no augmentation)."""
        self.bind()
        self.model.eval()
        runs = len(self.states)
        result = [{} for _ in self.states]
        for split, xs, ys in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
            loss_sum = torch.zeros(runs, dtype=torch.float64, device=self.device)
            correct = torch.zeros(runs, dtype=torch.int64, device=self.device)
            for start in range(0, xs.shape[0], batch):
                x, y = xs[start:start + batch], ys[start:start + batch]
                logits = self.forward(shared_input(x, runs))
                loss_sum += F.cross_entropy(logits.transpose(1, 2), y.expand(runs, -1), reduction="none").sum(1).double()
                correct += (logits.argmax(-1) == y).sum(1)
            for k, (ls, c) in enumerate(zip(loss_sum.tolist(), correct.tolist())):
                result[k][f"{split}_loss"] = ls / xs.shape[0]
                result[k][f"{split}_acc"] = c / xs.shape[0]
        return result

    @torch.no_grad()
    def layer_metrics(self) -> list[dict[str, tuple]]:
        """Per run and rank layer: (Frobenius norm, singular values of W/‖W‖_F), computed batched on the device."""
        params = self._tensors(momentum=False)
        out = [{} for _ in self.states]
        for layer in self.layers:
            fro = metrics.frobenius_norm(params[layer.param], batch_dims=1)
            sv = metrics.singular_values(params[layer.param], batch_dims=1).float().cpu()
            for k, f in enumerate(fro.tolist()):
                out[k][layer.name] = (f, sv[k])
        return out

    # --- checkpoints --------------------------------------------------------------------------------------
    def state_of(self, k: int) -> dict:
        """Everything run k needs to continue exactly where it is."""
        s = self.states[k]
        return {"epoch": s.epoch, "flat": self.run_vector(k).cpu(), "momentum": self.run_vector(k, True).cpu(),
                "buffers": {n: b[k].cpu() for n, b in self.buffers.items()}, "order": s.order.get_state(),
                "aug": s.aug.get_state() if s.aug is not None else None, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "logs": log_state(s)}

    def load(self, k: int, ckpt: dict) -> None:
        """Restore run k from its checkpoint."""
        s = self.states[k]
        self.set_run(k, ckpt["flat"])
        self.set_run(k, ckpt["momentum"], momentum=True)
        for n in self.buffer_names:
            self.buffers[n][k] = ckpt["buffers"][n].to(self.device)
        s.order.set_state(ckpt["order"])
        if s.aug is not None:
            s.aug.set_state(ckpt["aug"])
        torch.set_rng_state(ckpt["rng"])
        if ckpt["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        restore_logs(s, ckpt["logs"])
        s.epoch = ckpt["epoch"]


def log_state(s: RunState) -> dict:
    """The run's logs so far (kept in its checkpoint so a resumed run writes them unchanged); the spectra as
    tensors, which a weights_only load accepts."""
    state = {k: getattr(s, k) for k in ("evals", "layers", "ranks", "spectra_epochs", "status", "diverged_epoch",
                                        "diverged_reason", "wall_time")}
    return {**state, "spectra": {n: [torch.from_numpy(a) for a in sv] for n, sv in s.spectra.items()}}


def restore_logs(s: RunState, saved: dict) -> None:
    """Inverse of log_state."""
    for k, v in saved.items():
        setattr(s, k, v)
    s.spectra = {n: [t.numpy() for t in sv] for n, sv in saved["spectra"].items()}


def record_layers(s: RunState, epoch: int, measured: dict, layers: list, spectra: bool) -> None:
    """Append one epoch of per-layer norms and ranks (and, at evaluations, the spectra) to the run's logs."""
    for layer in layers:
        fro, sv = measured[layer.name]
        s.layers.append({"epoch": epoch, "layer": layer.name, "m": layer.m, "rows": layer.shape[0],
                         "cols": layer.shape[1], **metrics.layer_norms(fro, sv)})
        for eps in s.cfg.eps:
            s.ranks.append({"epoch": epoch, "layer": layer.name, "eps": eps, "rank": int(metrics.eps_rank(sv, eps))})
        if spectra:
            s.spectra.setdefault(layer.name, []).append(sv.numpy())
    if spectra:
        s.spectra_epochs.append(epoch)


def summary_of(s: RunState, layers: list, runtime: dict) -> dict:
    """The run's summary.json: config, outcome, final metrics, versions; `runtime` holds what varies by host
    (device, kernels, host, start; wall time and end are added here)."""
    final = dict(s.evals[-1]) if s.evals else {}
    last = max((r["epoch"] for r in s.ranks), default=None)
    final["avg_rank"] = {str(eps): float(np.mean([r["rank"] for r in s.ranks
                                                   if r["epoch"] == last and r["eps"] == eps]))
                         for eps in s.cfg.eps} if last is not None else {}
    return {
        "run_id": s.cfg.run_id, "config": s.cfg.to_dict(), "status": s.status,
        "diverged_epoch": s.diverged_epoch, "diverged_reason": s.diverged_reason, "epochs_completed": s.epoch,
        "final": final, "layers": [{"name": l.name, "param": l.param, "shape": list(l.shape), "m": l.m}
                                   for l in layers],
        "code": provenance.code_version(),
        "versions": {"lowrank": lowrank.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "runtime": {**runtime, "wall_time_s": round(s.wall_time, 3),
                    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def write_outputs(s: RunState, layers: list, runtime: dict) -> None:
    """Write the run's final logs (atomically, summary last)."""
    names = [l.name for l in layers]
    spectra = {"epochs": np.asarray(s.spectra_epochs, dtype=np.int64)}
    spectra.update({n: np.stack(s.spectra[n]) for n in names if n in s.spectra})
    logs.write_run(s.out, evals=s.evals, layers=s.layers, ranks=s.ranks, spectra=spectra,
                   summary=summary_of(s, layers, runtime))


# cuDNN settings per `kernels`. exact: no TF32 and deterministic algorithms (no effect on the CPU), so float32
# stays float32, a pack equals its runs alone within float32 rounding, and a resumed run repeats the uninterrupted
# one bit for bit. fast: PyTorch's defaults (TF32 convolutions, non-deterministic algorithms), as the authors'
# code ran on Ampere or newer GPUs.
KERNELS = {"exact": {"deterministic": True, "allow_tf32": False},
           "fast": {"deterministic": False, "allow_tf32": True}}


def kernel_flags(kernels: str):
    """A context that trains under the cuDNN settings named `kernels` (see KERNELS)."""
    if kernels not in KERNELS:
        raise ConfigError(f"kernels={kernels!r} is invalid: choose one of {', '.join(KERNELS)}.")
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, **KERNELS[kernels])


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_pack(runs: list[tuple[RunConfig, Path]], *, data_root: Path = Path("data"), ckpt_dir: Path,
               checkpoint_every: int = 10, device: torch.device | None = None, kernels: str = "exact",
               log=print) -> list[str]:
    """Train K runs as one pack, resuming from their checkpoints; write each run's logs; return the statuses."""
    if not runs:
        return []
    keys = {cfg.pack_key for cfg, _ in runs}
    if len(keys) != 1:
        raise ConfigError("runs of one pack must share everything but lr, weight_decay, momentum and seed.")
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every={checkpoint_every!r} is invalid: it must be >= 1.")
    kernel_flags(kernels)  # reject a bad value before any work
    for what, path in [*(("output directory", out) for _, out in runs), ("checkpoint directory", ckpt_dir)]:
        check_writable(what, Path(path))
    device = device or default_device()
    cfg0 = runs[0][0]
    data = datasets.load(cfg0.dataset, data_root, device=device, dtype=DTYPES[cfg0.dtype],
                         options=cfg0.data_options)
    if cfg0.batch_size > data.train_x.shape[0]:
        raise ConfigError(f"batch_size={cfg0.batch_size} is invalid: the {cfg0.dataset} training set has only "
                          f"{data.train_x.shape[0]} samples.")
    fill = torch.tensor(data.fill, device=device)  # raw 0, as torchvision pads
    runtime = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "kernels": kernels if device.type == "cuda" else "cpu", "host": socket.gethostname(),
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    states = [new_state(cfg, out, device) for cfg, out in runs]
    pack = Pack(states, data, device)
    for k, s in enumerate(states):
        ckpt = checkpoints.load_latest(ckpt_dir, s.cfg, log)
        if ckpt is None:
            continue
        if "flat" in ckpt:
            pack.load(k, ckpt)
        else:  # a finished run keeps only its logs: it is written out again, never trained again
            restore_logs(s, ckpt["logs"])
            s.epoch = ckpt["epoch"]
    _write_finished(pack, ckpt_dir, runtime)
    for epoch in sorted({s.epoch for s in pack.states}):  # runs resumed at different epochs: one sub-pack each
        sub = copy.copy(pack)
        sub.keep([s.epoch == epoch for s in pack.states])
        with kernel_flags(kernels):
            _train(sub, data, fill, ckpt_dir, checkpoint_every, runtime, log)
    return [s.status for s in states]


def check_writable(what: str, path: Path) -> None:
    """Create directory `path` and write a probe file into it: a location that cannot hold the run's files is
    refused before the first step, not after the last."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(f"{what} {path} is not a writable directory: {err.strerror or err}.") from None


def _write_finished(pack: Pack, ckpt_dir: Path, runtime: dict) -> None:
    """Write the logs of runs that stopped (finished or diverged), shrink their checkpoint to logs, drop them."""
    done = [s.status != logs.RUNNING for s in pack.states]
    for s, d in zip(pack.states, done):
        if d:
            checkpoints.save(checkpoint_path(ckpt_dir, s.cfg), s.cfg, {"epoch": s.epoch, "logs": log_state(s)},
                             keep_previous=False)
            write_outputs(s, pack.layers, runtime)
    if any(done):
        pack.keep([not d for d in done])


def _train(pack: Pack, data, fill, ckpt_dir: Path, checkpoint_every: int, runtime: dict, log) -> None:
    """Train a pack whose runs all stand at the same epoch until every run has finished or diverged."""
    cfg = pack.states[0].cfg
    eval_at = set(cfg.eval_epochs())
    if pack.states[0].epoch == 0:
        _observe(pack, data, 0, eval_at)
        _write_finished(pack, ckpt_dir, runtime)
    started, first = time.perf_counter(), pack.states[0].epoch + 1
    while pack.states:
        epoch = pack.states[0].epoch + 1
        t0 = time.perf_counter()
        bad = pack.train_epoch(epoch, data, fill).tolist()
        fit = train_fit(pack)
        for s, b in zip(pack.states, bad):
            s.epoch = epoch
            if b:
                s.status, s.diverged_epoch, s.diverged_reason = "diverged", epoch, "nonfinite_loss"
        _write_finished(pack, ckpt_dir, runtime)
        if not pack.states:
            break
        _observe(pack, data, epoch, eval_at)
        elapsed = time.perf_counter() - t0
        for s in pack.states:
            s.wall_time += elapsed
            if s.status == "running" and epoch == cfg.epochs:
                s.status = "finished"
        per_epoch = (time.perf_counter() - started) / (epoch - first + 1)
        eta = timedelta(seconds=round(per_epoch * (cfg.epochs - epoch)))
        log(f"[{cfg.arch} {cfg.dataset} B={cfg.batch_size} K={len(pack.states)}] epoch {epoch}/{cfg.epochs} "
            f"{elapsed:.2f}s ({per_epoch:.2f} s/epoch, ETA {eta}) {fit}")
        if epoch % checkpoint_every == 0:
            for k, s in enumerate(pack.states):
                if s.status == "running":
                    checkpoints.save(checkpoint_path(ckpt_dir, s.cfg), s.cfg, pack.state_of(k))
        _write_finished(pack, ckpt_dir, runtime)


def train_fit(pack: Pack) -> str:
    """The pack's mean training loss and accuracy over its last epoch's batches (runs that diverged left out)."""
    loss, acc = pack.epoch_loss.cpu(), pack.epoch_acc.cpu()
    ok = torch.isfinite(loss)
    if not ok.any():
        return "train loss nan"
    return f"train loss {loss[ok].mean().item():.4f} acc {acc[ok].mean().item():.3f} (mean of {int(ok.sum())} runs)"


def _observe(pack: Pack, data, epoch: int, eval_at: set[int]) -> None:
    """Log the layer metrics of `epoch` and, at evaluation epochs, losses, accuracies and spectra."""
    is_eval = epoch in eval_at
    metrics = pack.layer_metrics()
    for s, m in zip(pack.states, metrics):
        record_layers(s, epoch, m, pack.layers, spectra=is_eval)
    if is_eval:
        for s, r in zip(pack.states, pack.evaluate(data, pack.states[0].cfg.test_batch_size)):
            s.evals.append({"epoch": epoch, "lr": s.cfg.lr_at(epoch + 1), **r})
            if not all(math.isfinite(v) for v in r.values()):
                s.status, s.diverged_epoch, s.diverged_reason = "diverged", epoch, "nonfinite_loss"
    for s in pack.states:
        if s.status == "running" and early_stop(s.cfg, s.evals, epoch):
            s.status, s.diverged_epoch, s.diverged_reason = "diverged", epoch, "early_stop"


def early_stop(cfg: RunConfig, evals: list[dict], epoch: int) -> bool:
    """The authors' early stop after training `epoch`: from early_stop_epoch on (None: never), the last
    early_stop_window evaluations *before* this epoch's all have train accuracy ≤ early_stop_acc.

    Their loop evaluates at the start of an epoch and judges after training it, so after epoch 50 it judges the
    evaluations of epochs 20, 30, 40 (the one of epoch 50 is judged from epoch 51 on).
    """
    window = [e["train_acc"] for e in evals if e["epoch"] < epoch][-cfg.early_stop_window:]
    return (cfg.early_stop_epoch is not None and epoch >= cfg.early_stop_epoch
            and len(window) == cfg.early_stop_window and max(window) <= cfg.early_stop_acc)


ARCH_FLAGS = {"depth": int, "width": int, "activation": str, "patch": int, "dim": int, "heads": int,
              "dim_head": int, "mlp_dim": int, "dropout": float, "emb_dropout": float}


class _Parser(argparse.ArgumentParser):
    """argparse reporting bad flags in one line (no usage block), like every other input error."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def optional_int(text: str) -> int | None:
    """An integer flag value, or None for 'none' (e.g. --early-stop-epoch none: never stop early)."""
    return None if text.lower() == "none" else int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of one run (flags) or of a pack (--spec files written by the pipeline)."""
    d = RunConfig(arch="mlp_bn", dataset="synthetic", batch_size=1, lr=1.0, weight_decay=0.0)
    ap = _Parser(prog="python -m lowrank.train", description=__doc__.splitlines()[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = ap.add_argument_group("one run (ignored with --spec)")
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
    arch = ap.add_argument_group("architecture size options (only those the architecture accepts)")
    for name, typ in ARCH_FLAGS.items():
        arch.add_argument(f"--{name.replace('_', '-')}", dest=f"arch_{name}", type=typ)
    ap.add_argument("--spec", type=Path, nargs="+", help="train these runs as one pack (JSON: config, out)")
    ap.add_argument("--ckpt-dir", type=Path, help="checkpoints, outside the outputs (default: <out>.ckpt)")
    ap.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints")
    ap.add_argument("--data-root", type=Path, default=Path("data"))
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    ap.add_argument("--kernels", default="exact", choices=KERNELS,
                    help="GPU kernels: exact (no TF32, deterministic cuDNN) or fast (PyTorch's defaults)")
    args = ap.parse_args(argv)
    if not args.spec:
        missing = [f for f in ("arch", "dataset", "batch_size", "lr", "weight_decay", "out")
                   if getattr(args, f) is None]
        if missing:
            ap.error(f"missing --{missing[0].replace('_', '-')} (needed unless --spec is given)")
    return args


def _option_value(text: str):
    """A KEY=VALUE option's value as int, float or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_device(text: str | None) -> torch.device:
    """The --device flag as a device (default: cuda if available), rejecting one this machine lacks."""
    if text is None:
        return default_device()
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise ConfigError(f"device={text!r} is invalid: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={text!r} is invalid: no CUDA GPU is visible here.")
    return device


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
    """CLI entry point: bad input stops before any work with one sentence; a diverged run exits 0."""
    args = parse_args(argv)
    try:
        runs = runs_from_args(args)
        ckpt_dir = args.ckpt_dir or Path(f"{runs[0][1]}.ckpt")
        device = parse_device(args.device)
        statuses = train_pack(runs, data_root=args.data_root, ckpt_dir=ckpt_dir,
                              checkpoint_every=args.checkpoint_every, device=device, kernels=args.kernels,
                              log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ConfigError, datasets.DatasetUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for (cfg, out), status in zip(runs, statuses):
        print(f"{status}: {cfg.run_id} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
