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
from collections.abc import Callable

import torch

WARMUP_STEPS = 2  # eager steps of a batch shape before it is captured

Step = Callable[[torch.Tensor], None]  # one training step on the rows idx [K, B] of the data (Pack.train_epoch's)


class StepGraphs:
    """The captured training steps of one pack on one dataset, one graph per batch size, sharing a memory pool.
    It holds no pack and no callback into one: each call is given the step to run or capture, and check is given
    the addresses of the step's tensors (Pack.step_addresses), so a pack that is dropped frees its graphs' memory at
    once, not at the next cyclic garbage collection."""

    def __init__(self, xs: torch.Tensor, device: torch.device, addresses: list[int]):
        self.xs, self.device = xs, device  # the training inputs the steps gather from
        self.addresses = addresses  # of the tensors the step reads and writes, which its graphs will use
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.index: dict[int, torch.Tensor] = {}  # the static index buffer [K, B] of each captured batch size
        self.eager_steps: Counter[int] = Counter()
        self.pool = None
        self.stream = torch.cuda.Stream(device)

    def check(self, addresses: list[int]) -> None:
        """Refuse to replay on tensors that moved since the graphs were made (a graph would train the old memory)."""
        if addresses != self.addresses:
            raise RuntimeError("a tensor of the pack's step has moved since its CUDA graph was captured")

    def step(self, train_step: Step, idx: torch.Tensor) -> None:
        """One training step on the samples idx [K, B]: eager while its batch shape warms up, then captured, then
        replayed."""
        batch = idx.shape[1]
        graph = self.graphs.get(batch)
        if graph is not None:
            self.index[batch].copy_(idx)
            graph.replay()
        elif self.eager_steps[batch] < WARMUP_STEPS:
            self.eager_steps[batch] += 1
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                train_step(idx)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        else:
            self.capture(train_step, idx)

    def capture(self, train_step: Step, idx: torch.Tensor) -> None:
        """Capture the step of idx's batch size around a static copy of idx (capturing runs nothing), then replay
        it once: that replay is this step."""
        batch = idx.shape[1]
        self.index[batch] = idx.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            train_step(self.index[batch])
        self.pool = graph.pool()
        self.graphs[batch] = graph
        graph.replay()
