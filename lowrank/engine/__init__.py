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

On a GPU, `step="graph"` (config `gpu_step`) captures the whole training step once per batch shape as a CUDA graph
and replays it (graphs); the eager step stays the reference and the CPU path.

Modules, each read top to bottom: sgd (the packed SGD), pack (Pack: layout, binding, step, evaluation, layer
metrics), graphs (the step as CUDA graphs), records (RunState, status, logs, checkpoint glue), live (partial logs while a run
trains), device (device,
kernel and step policy), stop (a signal's stop request and the retry exit status), memory (a pack too large for
the device's memory splits; the size that fits, recorded per shape), loop (train_runs: a pack to the
end, or to a signal's stop, checkpointed mid-epoch and resumed at its step), job (train_pack, the one entry: request
checks, leases, signals, defaults, the attempt log), cli (`python -m lowrank.train`).
"""
