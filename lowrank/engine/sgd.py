"""The packed SGD: torch.optim.SGD's step (g += wd·w; b = mom·b + g; w -= lr·b) for K runs at once, with per-run
columns of learning rates, weight decays and momenta.

On a flat [K, P] tensor it is a handful of whole-pack operations (sgd_step_). On a Linear weight [K, O, I], whose
gradient is the product of two thin factors (the layer's input, kept on the pack's tape, and the gradient of its
output, which the backward pass gives), one batched GEMM sums that product straight into the weight or its
momentum (sgd_product_step_): the gradient is never formed, which saves its write and read (and the concatenation
into [K, P]), the dominant cost of a wide layer's step in a pack. Both equal torch.optim.SGD run by run up to
rounding (tests/test_pack.py compares them to it); another optimiser would be a sibling module, tested the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from lowrank.config import RunConfig


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

    def copy_(self, other: Columns) -> None:
        """Overwrite these columns' values with another epoch's of the same runs, in place: a captured step (CUDA
        graph) reads its learning rates from these tensors' memory, so a new epoch writes into it."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if (mine is None) != (theirs is None):
                raise ValueError(f"columns of different runs: {f.name} is set in only one of them")
            if mine is not None:
                mine.copy_(theirs)


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
