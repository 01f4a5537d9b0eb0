"""A pack's training step replayed as CUDA graphs (`gpu_step: graph`): small steps on a GPU are launch-bound
(hundreds of kernels of a few microseconds each, issued one by one from Python), and a graph issues them all at once.

The whole step is captured: the batch gathered from the on-device data through a static index buffer, the forward
and backward passes, the packed SGD update and the epoch's running totals (loss, correct, divergence flags). Its
inputs live at fixed addresses that the graph reads at each replay: the pack's parameters, momenta and BatchNorm
buffers (updated in place), the SGD columns (Pack.set_epoch writes each epoch's learning rates into them), the
totals, and the index buffer, into which each step copies its rows of the epoch's data order. One graph per batch
shape (the last, partial batch of an epoch gets its own), captured after WARMUP_STEPS eager steps of that shape (on
the capture stream, so cuBLAS and cuDNN set up their handles and workspaces outside the capture; they are real
steps of the training, not extra ones).

The eager step (Pack.batch_step) is the reference and the CPU path: the graph replays the same kernels on the same
memory, so under `gpu_kernels: exact` it gives the same bytes as eager; bench/check_device.py checks that on the
device for every architecture. Augmented runs (a per-run Python loop over generators) always step eagerly.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from lowrank.engine.pack import Pack

WARMUP_STEPS = 2  # eager steps of a batch shape before it is captured


class StepGraphs:
    """The captured training steps of one pack on one dataset, one graph per batch size, sharing a memory pool.
    It keeps no reference to its pack (each call is given it): a pack that is dropped frees its graphs' memory at
    once, not at the next cyclic garbage collection."""

    def __init__(self, pack: Pack, xs: torch.Tensor, ys: torch.Tensor):
        self.xs, self.ys, self.device = xs, ys, pack.device
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.index: dict[int, torch.Tensor] = {}  # the static index buffer [K, B] of each captured batch size
        self.eager_steps: Counter[int] = Counter()
        self.pool = None
        self.stream = torch.cuda.Stream(pack.device)
        self.addresses: list[int] | None = None  # of the tensors the step reads and writes, when first captured

    def check(self, pack: Pack) -> None:
        """Refuse to replay on tensors that moved since the capture (a graph would train the old memory)."""
        if self.addresses is not None and pack.step_addresses() != self.addresses:
            raise RuntimeError("a tensor of the pack's step has moved since its CUDA graph was captured")

    def step(self, pack: Pack, idx: torch.Tensor) -> None:
        """One training step of every run of `pack` on the samples idx [K, B] (the pack's totals accumulate it)."""
        batch = idx.shape[1]
        graph = self.graphs.get(batch)
        if graph is not None:
            self.index[batch].copy_(idx)
            graph.replay()
        elif self.eager_steps[batch] < WARMUP_STEPS:
            self.eager_steps[batch] += 1
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                pack.batch_step(self.xs, self.ys, idx)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        else:
            self.capture(pack, idx)

    def capture(self, pack: Pack, idx: torch.Tensor) -> None:
        """Capture the step of idx's batch size around a static copy of idx (capturing runs nothing), then replay
        it once: that replay is this step."""
        batch = idx.shape[1]
        self.index[batch] = idx.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            pack.batch_step(self.xs, self.ys, self.index[batch])
        self.pool = graph.pool()
        self.graphs[batch] = graph
        self.addresses = pack.step_addresses()
        graph.replay()
