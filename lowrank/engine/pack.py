"""K runs as one model: their stacked parameters and buffers, bound into one packed network, stepped by the packed
SGD (lowrank.engine.sgd), evaluated and measured together.

The weights of Linear layers are held as [K, out, in] tensors, stepped from their gradients' factors
(sgd_product_step_); every other parameter lives in one flat [K, P] tensor, stepped as a whole (sgd_step_). The
tensors are bound into the packed network once per epoch (packed.bind; in-place updates keep them bound), not
passed by functional_call on every step. The K runs' losses are summed, so one backward pass gives every run the
gradient of its own loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from lowrank import config
from lowrank import data as datasets
from lowrank import metrics, models
from lowrank.engine.graphs import StepGraphs
from lowrank.engine.memory import check_fake_oom
from lowrank.engine.records import RunState
from lowrank.engine.sgd import Columns, sgd_columns, sgd_product_step_, sgd_step_
from lowrank.models.packed import pack as packed_model
from lowrank.models.packed import PackedLinear, bind, gather_packed, per_run, shared_input, to_packed

DTYPES = {name: getattr(torch, name) for name in config.DTYPES}  # RunConfig.dtype -> torch dtype


@dataclass
class Network:
    """A pack's packed network and its parameter layout. The sub-packs of one pack (runs resumed at different
    epochs) share it and train one after another: each binds its own tensors into it first (Pack.bind), and the
    tape (the Linear layers' (layer, input, output) of the step in progress) is emptied after every step."""

    model: nn.Module
    layers: list[models.RankLayer]
    names: list[str]  # every parameter, in the network's order
    numel: int
    buffer_names: list[str]
    linears: dict[nn.Module, str]  # PackedLinear module -> its weight's name
    rest: list[str]  # the other parameters, held in the flat [K, P] tensor
    rest_shapes: list[torch.Size]
    tape: list[tuple] = field(default_factory=list)

    def params(self, flat: torch.Tensor, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every parameter as a [K, ...] tensor: views into the flat [K, P] tensor, and the Linear weights."""
        k = flat.shape[0]
        views = flat.split([math.prod(shape) for shape in self.rest_shapes], 1)
        return {**{n: t.view(k, *shape) for n, t, shape in zip(self.rest, views, self.rest_shapes)}, **weights}


def network(template: nn.Module) -> Network:
    """The packed network of `template` (one run's model) and its layout."""
    layers = models.rank_layers(template)
    names = [n for n, _ in template.named_parameters()]
    model = packed_model(template)
    linears = {m: f"{name}.weight" if name else "weight" for name, m in model.named_modules()
               if isinstance(m, PackedLinear)}
    linear_weights = set(linears.values())
    return Network(model=model, layers=layers, names=names, numel=sum(p.numel() for p in template.parameters()),
                   buffer_names=[n for n, _ in template.named_buffers()], linears=linears,
                   rest=[n for n in names if n not in linear_weights],
                   rest_shapes=[p.shape for n, p in template.named_parameters() if n not in linear_weights])


class Pack:
    """K runs as one model: stacked parameters and buffers on a shared Network, per-run SGD hyperparameters.

    Its interface to the rest of the engine: `states` (the runs' RunStates, in pack order), `net.layers` (the rank
    layers), build and subset, train_epoch (then `epoch_loss` and `epoch_acc`), evaluate and layer_metrics;
    run_state and load_run_state (one run's trained tensors out and in, as its checkpoint holds them:
    lowrank.engine.records); step_addresses (the memory a training step reads and writes, on which a captured step
    relies: lowrank.engine.graphs). Its tensors and their layout are its own.
    """

    def __init__(self, states: list[RunState], net: Network, *, flat: torch.Tensor, weights: dict[str, torch.Tensor],
                 buffers: dict[str, torch.Tensor], momentum_buf: torch.Tensor | None,
                 momenta: dict[str, torch.Tensor | None], device: torch.device, graphed: bool = False):
        self.states, self.net, self.device, self.dtype = states, net, device, flat.dtype
        self.flat, self.weights, self.buffers = flat, weights, buffers
        self.momentum_buf, self.momenta = momentum_buf, momenta
        self.leaves: list[torch.Tensor] = []  # the flat rest's views, as bound for autograd (see bind)
        # the epoch's SGD columns ([K, 1], and viewed [K, 1, 1] for the Linear weights), written in place each epoch
        self.columns: Columns | None = None
        self.per_weight: Columns | None = None
        # the epoch's data order ([K, n] sample indices, kept for a checkpoint in the middle of the epoch) and its
        # running totals per run: a non-finite loss seen, the summed batch losses, the correct samples
        k = len(states)
        self.order: torch.Tensor | None = None
        self.bad = torch.zeros(k, dtype=torch.bool, device=device)
        self.loss_sum = torch.zeros(k, dtype=torch.float64, device=device)
        self.correct = torch.zeros(k, dtype=torch.int64, device=device)
        # the last epoch's mean training loss and accuracy per run (train_epoch sets them; for the progress line)
        self.epoch_loss: torch.Tensor | None = None
        self.epoch_acc: torch.Tensor | None = None
        self.graphed = graphed  # step by CUDA graphs (lowrank.engine.graphs, made on the first epoch): see build
        self.graphs: StepGraphs | None = None

    @classmethod
    def build(cls, states: list[RunState], data: datasets.Data, device: torch.device, step: str = "eager") -> Pack:
        """The runs at initialisation: each run's own, exactly as if it were built alone (seeded by its seed).
        step: "graph" replays each training step as a CUDA graph on a GPU (lowrank.engine.graphs); eager otherwise,
        and always for augmented runs (their batches come from a per-run Python loop over generators)."""
        cfg = states[0].cfg
        def build_model() -> nn.Module:
            return models.build(cfg.arch, in_channels=data.channels, image_size=data.size,
                                num_classes=data.classes, **cfg.arch_options)
        net = network(build_model())
        runs, buffers = [], []
        for s in states:
            torch.manual_seed(s.cfg.seed)
            m = build_model().to(DTYPES[cfg.dtype])
            runs.append(dict(m.named_parameters()))
            buffers.append(dict(m.named_buffers()))
        with torch.no_grad():
            flat = torch.stack([torch.cat([r[n].reshape(-1) for n in net.rest]) for r in runs]).to(device)
            weights = {n: torch.stack([r[n] for r in runs]).to(device) for n in net.linears.values()}
        momentum = any(s.cfg.momentum for s in states)
        return cls(states, net, flat=flat, weights=weights,
                   buffers={n: torch.stack([b[n] for b in buffers]).to(device) for n in net.buffer_names},
                   momentum_buf=torch.zeros_like(flat) if momentum else None,
                   momenta={n: torch.zeros_like(w) if momentum else None for n, w in weights.items()}, device=device,
                   graphed=step == "graph" and device.type == "cuda" and cfg.augmentation == "none")

    def subset(self, mask: list[bool]) -> Pack:
        """The runs whose mask is True (the others diverged, finished or stand at another epoch), as a pack of
        their own on the same Network; the pack itself is left as it is."""
        idx = torch.tensor([i for i, k in enumerate(mask) if k], dtype=torch.long, device=self.device)
        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.index_select(0, idx)
        sub = Pack([s for s, k in zip(self.states, mask) if k], self.net, flat=pick(self.flat),
                   weights={n: pick(w) for n, w in self.weights.items()},
                   buffers={n: pick(b) for n, b in self.buffers.items()}, momentum_buf=pick(self.momentum_buf),
                   momenta={n: pick(b) for n, b in self.momenta.items()}, device=self.device, graphed=self.graphed)
        sub.order, sub.bad, sub.loss_sum, sub.correct = map(pick, (self.order, self.bad, self.loss_sum, self.correct))
        return sub

    # --- parameters ---------------------------------------------------------------------------------------
    def _tensors(self, momentum: bool) -> dict[str, torch.Tensor] | None:
        """Every parameter (or momentum buffer) as a [K, ...] tensor; None for the buffers of a pack without
        momentum."""
        if not momentum:
            return self.net.params(self.flat, self.weights)
        return None if self.momentum_buf is None else self.net.params(self.momentum_buf, self.momenta)

    def run_vector(self, k: int, momentum: bool = False) -> torch.Tensor:
        """Run k's parameters (or momentum buffers: zeros in a pack without momentum) as one vector in the
        network's parameter order, as torch.cat of its model's parameters would give."""
        tensors = self._tensors(momentum)
        if tensors is None:
            return torch.zeros(self.net.numel, dtype=self.dtype, device=self.device)
        return torch.cat([tensors[n][k].reshape(-1) for n in self.net.names])

    def _set_run(self, k: int, vector: torch.Tensor, momentum: bool = False) -> None:
        """Inverse of run_vector: overwrite run k's parameters (or momentum buffers) from one vector."""
        tensors = self._tensors(momentum)
        if tensors is None:
            return  # no run of this pack has momentum: its buffers stay zero
        parts = vector.to(self.device).split([tensors[n][k].numel() for n in self.net.names])
        for n, part in zip(self.net.names, parts):
            tensors[n][k] = part.view(tensors[n][k].shape)

    def run_state(self, k: int) -> dict:
        """Run k's trained tensors on the CPU, as its checkpoint holds them: "flat" and "momentum" (run_vector of its
        parameters and of its momentum buffers; None when those are all zero, as a run's without momentum stay: half
        the checkpoint of the paper's runs), "buffers" (its BatchNorm buffers by name) and "in_epoch": None at
        an epoch's end, else, for a run stopped in the middle of an epoch (its RunState.step > 0), that epoch's data
        order and its running totals so far (bad, loss_sum, correct)."""
        in_epoch = None if self.states[k].step == 0 else {
            "order": self.order[k].cpu(), **{n: getattr(self, n)[k].cpu() for n in ("bad", "loss_sum", "correct")}}
        momentum = self.run_vector(k, momentum=True).cpu()
        return {"flat": self.run_vector(k).cpu(), "momentum": momentum if momentum.any() else None,
                "buffers": {n: b[k].cpu() for n, b in self.buffers.items()}, "in_epoch": in_epoch}

    def load_run_state(self, k: int, state: dict) -> None:
        """Inverse of run_state: overwrite run k's tensors in place (a captured step keeps reading the same memory)."""
        self._set_run(k, state["flat"])
        momentum = state["momentum"]
        self._set_run(k, torch.zeros_like(state["flat"]) if momentum is None else momentum, momentum=True)
        for n, b in self.buffers.items():
            b[k] = state["buffers"][n].to(self.device)
        in_epoch = state.get("in_epoch")  # absent from the checkpoints of older versions: all at an epoch's end
        if in_epoch is not None:
            if self.order is None:
                self.order = torch.zeros(len(self.states), in_epoch["order"].numel(), dtype=torch.long,
                                         device=self.device)
            self.order[k] = in_epoch["order"].to(self.device)
            for n in ("bad", "loss_sum", "correct"):
                getattr(self, n)[k] = in_epoch[n].to(self.device)

    def bind(self) -> None:
        """Bind this pack's tensors into the shared network: the flat rest as leaf views for autograd to
        differentiate, the Linear weights (stepped by hand: no gradient, the tape gives their factors) and the
        buffers. In-place updates keep them bound; each epoch binds again (another sub-pack may have bound since)."""
        views = self.net.params(self.flat, {})
        self.leaves = [views[n].detach().requires_grad_() for n in self.net.rest]
        bind(self.net.model, {**dict(zip(self.net.rest, self.leaves)), **self.weights, **self.buffers})
        self.net.tape.clear()
        for module in self.net.linears:
            module.tape = self.net.tape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [K, B, classes] of the K runs (as last bound) on packed inputs x [B, K·C, ...]."""
        return per_run(self.net.model(x), len(self.states))

    # --- one epoch ----------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Write the runs' SGD settings of training epoch `epoch` into the pack's columns (in place after the first
        epoch: a captured step reads them from their memory)."""
        columns = sgd_columns([s.cfg for s in self.states], epoch, self.dtype, self.device)
        if self.columns is None:
            self.columns, self.per_weight = columns, columns.view(-1, 1, 1)
        else:
            self.columns.copy_(columns)

    def train_epoch(self, epoch: int, data: datasets.Data, fill: torch.Tensor | None,
                    stop: Callable[[], bool] = lambda: False) -> torch.Tensor | None:
        """One epoch of SGD for every run, from the step its runs stand at (RunState.step: a run resumed in the
        middle of the epoch continues its data order and running totals); returns a [K] bool tensor: did the run
        diverge (a non-finite loss, or weights that overflowed in the epoch's last step, which only the next loss
        would show). stop is asked after every step: True before the epoch's last step leaves the epoch where it
        stands (each RunState.step says how far) and returns None."""
        cfg = self.states[0].cfg
        n, batch = data.train_x.shape[0], cfg.batch_size
        first = self.states[0].step  # the same for every run of a pack (the loop packs runs by where they stand)
        check_fake_oom(len(self.states))
        self.set_epoch(epoch)
        if first == 0:
            self.order = torch.stack([torch.randperm(n, generator=s.order) for s in self.states]).to(self.device)
            for total in (self.bad, self.loss_sum, self.correct):
                total.zero_()
        order = self.order
        if self.graphed and (self.graphs is None or self.graphs.xs is not data.train_x):
            self.graphs = StepGraphs(data.train_x, self.device, self.step_addresses())
        if self.graphs is not None:
            self.graphs.check(self.step_addresses())

        def data_step(idx: torch.Tensor) -> None:  # one step on the rows idx of this epoch's data
            self.batch_step(data.train_x, data.train_y, idx)

        self.bind()
        self.net.model.train()
        for start in range(first * batch, n, batch):  # drop_last=False, as the authors' DataLoader
            idx = order[:, start:start + batch]
            if cfg.augmentation != "none":
                self.step(to_packed(torch.stack([datasets.augment(data.train_x[i], s.aug, cfg.augmentation, fill)
                                                 for i, s in zip(idx, self.states)])), data.train_y[idx])
            elif self.graphs is not None:
                self.graphs.step(data_step, idx)
            else:
                data_step(idx)
            if stop() and start + batch < n:
                for s in self.states:
                    s.step = start // batch + 1
                return None
        for s in self.states:
            s.step = 0
        bad = self.bad.clone()
        for w in (self.flat, *self.weights.values()):
            bad |= ~torch.isfinite(w).flatten(1).all(1)
        self.epoch_loss, self.epoch_acc = self.loss_sum / n, self.correct.double() / n
        return bad

    def step_addresses(self) -> list[int]:
        """Where every tensor a training step reads or writes lives (SGD columns, running totals, parameters,
        momenta, buffers): a captured step (CUDA graph) is valid only while these stay put."""
        columns = [getattr(c, f.name) for c in (self.columns, self.per_weight) if c is not None for f in fields(c)]
        tensors = [*columns, self.bad, self.loss_sum, self.correct, self.flat, self.momentum_buf,
                   *self.weights.values(), *self.momenta.values(), *self.buffers.values()]
        return [t.data_ptr() for t in tensors if t is not None]

    def batch_step(self, xs: torch.Tensor, ys: torch.Tensor, idx: torch.Tensor) -> None:
        """One SGD step of every run on its samples idx [K, B] of the on-device data (xs, ys), gathered straight
        into the packed layout: the whole step a CUDA graph captures (lowrank.engine.graphs)."""
        self.step(gather_packed(xs, idx), ys[idx])

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One SGD step of every run on its own batch (x packed [B, K·C, ...], y [K, B]) with the epoch's columns,
        adding the batch losses and correct counts (before the step) to the pack's totals. One backward pass gives
        the flat rest's gradient and each Linear weight's gradient factors."""
        tape, linears = self.net.tape, self.net.linears
        try:
            logits = self.forward(x)
            loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
            if len(tape) != len(linears) or len({layer for layer, _, _ in tape}) != len(linears):
                raise ValueError("every Linear layer of a packed network must run exactly once per training step")
            grads = torch.autograd.grad(loss.sum(), [*self.leaves, *(out for _, _, out in tape)],
                                        materialize_grads=True)  # a parameter the loss does not use: zero gradient
            with torch.no_grad():  # run k's rows of each gradient are those of its own loss
                grad = torch.cat([g.flatten(1) for g in grads[:len(self.leaves)]], 1)
                sgd_step_(self.flat, grad, self.momentum_buf, self.columns)
                # the Linear weights last and the first layer's last of all: a pack's largest weights (an MLP's
                # first layer) are then the freshest in cache when the next step's forward pass reads them (~4 %)
                for (module, x_in, _), grad_out in zip(reversed(tape), reversed(grads[len(self.leaves):])):
                    n = linears[module]
                    sgd_product_step_(self.weights[n], grad_out, x_in, self.momenta[n], self.per_weight)
                loss = loss.detach()
                self.bad |= ~torch.isfinite(loss)
                self.loss_sum += loss.double() * y.shape[1]
                self.correct += (logits.detach().argmax(-1) == y).sum(1)
        finally:  # the tape holds the step's activations: never keep them past it, even when it fails
            tape.clear()

    @torch.no_grad()
    def evaluate(self, data: datasets.Data, batch: int) -> list[dict]:
        """Mean loss and accuracy of every run on the whole train and test sets (eval mode, no augmentation)."""
        self.bind()
        self.net.model.eval()
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
        for layer in self.net.layers:
            fro = metrics.frobenius_norm(params[layer.param], batch_dims=1)
            sv = metrics.singular_values(params[layer.param], batch_dims=1).float().cpu()
            for k, f in enumerate(fro.tolist()):
                out[k][layer.name] = (f, sv[k])
        return out
