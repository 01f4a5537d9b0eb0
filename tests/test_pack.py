"""A pack of K runs is exactly its K runs trained alone: every architecture, float64 and float32, divergence
isolation, resume, and the single-run engine against torch.optim.SGD."""

from __future__ import annotations

import contextlib
import gc
import json
import types
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lowrank import data as datasets
from lowrank import logs, models
from lowrank.config import RunConfig
from lowrank.engine.graphs import WARMUP_STEPS
from lowrank.engine.pack import Pack
from lowrank.engine.records import new_state
from lowrank.engine.sgd import sgd_columns, sgd_product_step_
from lowrank.train import main, train_pack
from conftest import Interrupt, interrupt_at, outputs

CPU = torch.device("cpu")
# small versions of every architecture on 3x16x16 images; the ViT without dropout (see lowrank.engine's docstring)
SMALL = {
    "resnet18": dict(width=4),
    "vgg16_bn": dict(width=8),
    "mlp_bn": dict(depth=3, width=16),
    "res_bn": dict(depth=2, width=16),
    "vit": dict(dim=32, depth=2, heads=2, dim_head=8, mlp_dim=32, dropout=0.0, emb_dropout=0.0),
}
# the per-run settings a pack may mix
RUNS = [dict(lr=0.05, weight_decay=5e-3, momentum=0.0, seed=0),
        dict(lr=0.02, weight_decay=0.0, momentum=0.9, seed=1),
        dict(lr=0.1, weight_decay=1e-2, momentum=0.5, seed=2)]


def configs(arch: str, dtype: str, n_train: int, runs: list[dict] = RUNS, **shared) -> list[RunConfig]:
    """The runs of one pack: `arch` at its small size on synthetic 3x16x16 data, batch 8."""
    settings = dict(arch=arch, dataset="synthetic", batch_size=8, epochs=3, eval_every=1, dtype=dtype,
                    arch_options=SMALL[arch], data_options={"n_train": n_train, "n_test": 16, "size": 16})
    return [RunConfig(**{**settings, **shared, **run}) for run in runs]


def trained(cfgs: list[RunConfig], epochs: int) -> tuple[Pack, datasets.Data]:
    """The runs as one pack after `epochs` epochs, and their data."""
    cfg = cfgs[0]
    data = datasets.load("synthetic", "data", dtype=getattr(torch, cfg.dtype), options=cfg.data_options)
    pack = Pack.build([new_state(c, None, CPU) for c in cfgs], data, CPU)
    for epoch in range(1, epochs + 1):
        assert not pack.train_epoch(epoch, data, None).any()
    return pack, data


def assert_close(actual, expected, rtol: float, what: str) -> None:
    """max |actual - expected| <= rtol · max |expected| (relative to the tensor's scale, so zeros are fine)."""
    actual, expected = (torch.tensor(np.asarray(t, dtype=np.float64)) for t in (actual, expected))
    err, scale = (actual - expected).abs().max().item(), expected.abs().max().item()
    assert err <= rtol * scale, f"{what}: max deviation {err:.3g} vs scale {scale:.3g} (rtol {rtol:g})"


def assert_pack_equals_solo(pack: Pack, solos: list[Pack], data: datasets.Data, rtol: float) -> None:
    """Weights, momentum, BatchNorm buffers, layer metrics and evaluations of run k equal those of its solo run."""
    pack_layers, pack_evals = pack.layer_metrics(), pack.evaluate(data, 1000)
    for k, solo in enumerate(solos):
        assert_close(pack.run_vector(k), solo.run_vector(0), rtol, f"run {k} weights")
        assert_close(pack.run_vector(k, momentum=True), solo.run_vector(0, momentum=True), rtol, f"run {k} momentum")
        for name in pack.net.buffer_names:
            assert_close(pack.buffers[name][k], solo.buffers[name][0], rtol, f"run {k} {name}")
        for layer, (fro, sv) in solo.layer_metrics()[0].items():
            assert_close(pack_layers[k][layer][0], fro, rtol, f"run {k} {layer} norm")
            assert_close(pack_layers[k][layer][1], sv, rtol, f"run {k} {layer} spectrum")
        for key, value in solo.evaluate(data, 1000)[0].items():
            assert_close(pack_evals[k][key], value, rtol, f"run {k} {key}")


@pytest.mark.parametrize("arch", models.ARCHS)
def test_pack_equals_solo_float64(arch):
    cfgs = configs(arch, "float64", n_train=16)  # 2 steps per epoch, 2 epochs
    pack, data = trained(cfgs, epochs=2)
    # measured: bit-equal with one thread; with two, the MLPs' batched matmuls differ by <= 1e-14
    assert_pack_equals_solo(pack, [trained([c], epochs=2)[0] for c in cfgs], data, rtol=1e-9)


@pytest.mark.parametrize("arch", models.ARCHS)
def test_pack_equals_solo_float32(arch):
    # Tolerance 1e-4, from measurement. A pack's convolutions run as one grouped convolution and its matmuls as
    # batched ones, whose float32 (oneDNN/MKL) kernels sum in another order than a single run's, so the runs differ
    # by rounding: after one step at most 8e-6 of a tensor's scale (VGG; ResNet 1.4e-6, MLPs and ViT ~1e-8), where
    # float64 is equal to ~1e-15. Training amplifies the rounding, chaotically for the tiny VGG (BatchNorm over 1x1
    # maps of 8 samples: ~10x per step, 1e-1 after 8 steps), so float32 is compared after one step. 1e-4 is 12x the
    # worst measured deviation, and far below what a run mixed up with its pack mates would show (order 1). On an
    # H200 under kernels="exact" the same check gave at most 1.6e-6 (bench/README.md).
    cfgs = configs(arch, "float32", n_train=8)  # one step
    pack, data = trained(cfgs, epochs=1)
    assert_pack_equals_solo(pack, [trained([c], epochs=1)[0] for c in cfgs], data, rtol=1e-4)


@pytest.mark.parametrize("arch", ["mlp_bn", "resnet18"])
def test_single_run_equals_torch_sgd(arch):
    """The engine at K = 1 against a plain nn.Module trained by torch.optim.SGD on the same batches."""
    (cfg,) = configs(arch, "float64", n_train=16, runs=[dict(lr=0.05, weight_decay=5e-3, momentum=0.9, seed=3)],
                     milestones=(2,))
    pack, data = trained([cfg], epochs=3)
    torch.manual_seed(cfg.seed)
    model = models.build(arch, in_channels=3, image_size=16, **cfg.arch_options).double()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    order = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, 4):
        opt.param_groups[0]["lr"] = cfg.lr_at(epoch)
        perm = torch.randperm(16, generator=order)
        for start in range(0, 16, 8):
            idx = perm[start:start + 8]
            opt.zero_grad()
            F.cross_entropy(model(data.train_x[idx]), data.train_y[idx]).backward()
            opt.step()
    assert_close(pack.run_vector(0), torch.cat([p.detach().flatten() for p in model.parameters()]), 1e-9, "weights")
    assert_close(pack.run_vector(0, momentum=True), torch.cat([opt.state[p]["momentum_buffer"].flatten()
                                                  for p in model.parameters()]), 1e-9, "momentum")
    for name, buf in model.named_buffers():
        assert_close(pack.buffers[name][0], buf, 1e-9, name)


@pytest.mark.parametrize("momenta", [(0.0, 0.0, 0.0), (0.9, 0.5, 0.9), (0.0, 0.9, 0.5)],
                         ids=["plain", "momentum", "mixed"])
def test_product_step_equals_torch_sgd(momenta):
    """A Linear weight stepped from its gradient's factors (grad_out^T x, never formed) equals torch.optim.SGD
    stepping each run's weight on the formed gradient, over 3 steps; runs without momentum keep a zero buffer."""
    runs = [dict(lr=lr, weight_decay=wd, momentum=m, seed=k)
            for k, (lr, wd, m) in enumerate(zip((0.05, 0.02, 0.1), (5e-3, 0.0, 1e-2), momenta))]
    cfgs = configs("mlp_bn", "float64", n_train=16, runs=runs)
    columns = sgd_columns(cfgs, 1, torch.float64, CPU)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 5, 7, dtype=torch.float64, generator=gen)
    buf = torch.zeros_like(weight) if any(momenta) else None
    params = [torch.nn.Parameter(w.clone()) for w in weight]
    opts = [torch.optim.SGD([p], lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
            for p, c in zip(params, cfgs)]
    for _ in range(3):
        grad_out, x = (torch.randn(3, 4, n, dtype=torch.float64, generator=gen) for n in (5, 7))
        sgd_product_step_(weight, grad_out, x, buf, columns.view(-1, 1, 1))
        for k, (p, opt) in enumerate(zip(params, opts)):
            p.grad = grad_out[k].T @ x[k]
            opt.step()
    for k, (p, opt) in enumerate(zip(params, opts)):
        assert_close(weight[k], p.detach(), 1e-12, f"run {k} weight")
        if buf is not None:
            expected = opt.state[p]["momentum_buffer"] if momenta[k] else torch.zeros_like(p)
            assert_close(buf[k], expected, 1e-12, f"run {k} momentum")


def test_steps_leave_nothing_of_their_graph_behind():
    """A step's tape (the Linear layers' inputs and outputs, with autograd's graph behind them) is emptied when
    the step is done: training keeps no tensor alive that it did not hold before (a reference cycle through the
    graph once leaked ~6 MB a step on MLP-BN-10-100 at K = 16)."""
    def live_tensors() -> int:
        gc.collect()
        return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())
    pack, data = trained(configs("mlp_bn", "float64", n_train=16), epochs=1)
    before = live_tensors()
    for epoch in range(2, 5):
        pack.train_epoch(epoch, data, None)
    assert not pack.net.tape and live_tensors() == before


def test_step_reads_and_writes_fixed_memory_across_epochs():
    """A CUDA graph replays a step on the memory it was captured on (lowrank.engine.graphs): every tensor the step
    reads or writes (SGD columns, running totals, parameters, momenta, buffers) stays the tensor it was in epoch 1,
    holding the current epoch's values (the learning rate after its decay at the milestone)."""
    cfgs = configs("mlp_bn", "float64", n_train=20, milestones=(2,))
    pack, data = trained(cfgs, epochs=1)
    before = pack.step_addresses()
    # 7 SGD columns (momentum and plain runs mixed, with weight decay) and their [K, 1, 1] views; 3 totals; the flat
    # rest and its momentum; 4 Linear weights and their momenta; 3 BatchNorms' running mean, variance and count
    assert len(before) == 2 * 7 + 3 + 2 + 2 * 4 + 3 * 3
    for epoch in (2, 3):
        pack.train_epoch(epoch, data, None)
    assert pack.step_addresses() == before
    assert pack.columns.neg_lr.flatten().tolist() == [-c.lr_at(3) for c in cfgs] == pytest.approx([-0.01, -0.004, -0.02])
    assert pack.per_weight.neg_lr.data_ptr() == pack.columns.neg_lr.data_ptr()


def test_columns_copy_refuses_columns_of_other_runs():
    with_momentum, without = (sgd_columns(configs("mlp_bn", "float64", 16, runs=[run])[:1], 1, torch.float64, CPU)
                              for run in (RUNS[1], RUNS[0]))
    with pytest.raises(ValueError, match="columns of different runs: wd is set in only one of them"):
        with_momentum.copy_(without)


def test_graph_steps_are_eager_on_a_cpu():
    """`step="graph"` asks for CUDA graphs; on a CPU the pack steps eagerly, to the same bytes."""
    cfgs = configs("mlp_bn", "float32", n_train=20)
    data = datasets.load("synthetic", "data", dtype=torch.float32, options=cfgs[0].data_options)
    packs = [Pack.build([new_state(c, None, CPU) for c in cfgs], data, CPU, step) for step in ("eager", "graph")]
    for pack in packs:
        for epoch in (1, 2):
            pack.train_epoch(epoch, data, None)
    assert not packs[1].graphed and packs[1].graphs is None
    assert all(torch.equal(packs[0].run_vector(k), packs[1].run_vector(k)) for k in range(len(cfgs)))


class FakeGraph:
    """A stand-in for torch.cuda.CUDAGraph on the CPU: `capture` runs nothing (the pack's tensors are put back as
    they were), `replay` runs the captured step again, reading its inputs from the same memory."""

    def __init__(self):
        self.step, self.replays = None, 0

    def replay(self):
        self.replays += 1
        self.step()

    def pool(self):
        return None


@contextlib.contextmanager
def fake_capture(graph: FakeGraph, pack: Pack, pool=None, stream=None):
    tensors = [pack.flat, pack.momentum_buf, *pack.weights.values(), *pack.momenta.values(), *pack.buffers.values(),
               pack.bad, pack.loss_sum, pack.correct]
    saved = [None if t is None else t.clone() for t in tensors]
    calls = []
    real = weakref.WeakMethod(pack.batch_step)  # the fake graph holds no pack, as a real one holds none
    pack.batch_step = lambda *args: (calls.append(args), real()(*args))
    yield
    del pack.batch_step
    for t, s in zip(tensors, saved):
        if t is not None:
            t.copy_(s)
    graph.step = lambda: real()(*calls[0])


def fake_cuda_graphs(monkeypatch: pytest.MonkeyPatch, pack: Pack) -> None:
    """Let `pack` step by (fake) CUDA graphs on the CPU: FakeGraph for torch.cuda.CUDAGraph, streams that do nothing
    (holding no reference to the pack)."""
    pack.graphed = True
    stream = types.SimpleNamespace(wait_stream=lambda other: None)
    owner = weakref.ref(pack)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g, pool=None, stream=None: fake_capture(g, owner(), pool, stream))


def test_graph_steps_warm_up_capture_once_per_batch_shape_and_replay_the_same_training(monkeypatch):
    """The bookkeeping of lowrank.engine.graphs on the CPU, with a fake graph (capturing runs nothing; a replay
    re-runs the captured step on its static index buffer): WARMUP_STEPS eager steps of each batch shape, one
    capture, then replays; the training equals eager steps byte for byte (each step's indices copied in, the
    capture's step replayed once, no step run twice or skipped). 4 epochs of 2 full batches and a partial one."""
    cfgs = configs("mlp_bn", "float32", n_train=20, epochs=4, milestones=(2,))
    data = datasets.load("synthetic", "data", dtype=torch.float32, options=cfgs[0].data_options)
    eager, graphed = (Pack.build([new_state(c, None, CPU) for c in cfgs], data, CPU) for _ in range(2))
    fake_cuda_graphs(monkeypatch, graphed)
    for epoch in range(1, 5):
        eager.train_epoch(epoch, data, None)
        graphed.train_epoch(epoch, data, None)
        assert torch.equal(eager.loss_sum, graphed.loss_sum) and torch.equal(eager.correct, graphed.correct)
    graphs = graphed.graphs
    assert sorted(graphs.graphs) == [4, 8] and graphs.eager_steps == {8: WARMUP_STEPS, 4: WARMUP_STEPS}
    assert graphs.graphs[8].replays == 4 * 2 - WARMUP_STEPS and graphs.graphs[4].replays == 4 - WARMUP_STEPS
    for k in range(len(cfgs)):
        assert torch.equal(eager.run_vector(k), graphed.run_vector(k))
        assert torch.equal(eager.run_vector(k, momentum=True), graphed.run_vector(k, momentum=True))
    assert all(torch.equal(eager.buffers[n], graphed.buffers[n]) for n in eager.buffers)
    graphed.flat = graphed.flat.clone()  # the graphs would go on training the old tensor
    with pytest.raises(RuntimeError, match="has moved since its CUDA graph was captured"):
        graphed.train_epoch(5, data, None)


def test_run_state_moves_one_run_out_and_in_place():
    """Pack.run_state / load_run_state, what a run's checkpoint holds: run 2's tensors after one epoch (13,114
    parameters and momenta of MLP-BN-3-16, 3 BatchNorms that counted 2 steps) loaded into run 0 of a fresh pack make
    run 0 equal to it, leave run 1 at its initialisation and move no tensor a captured step reads. Momentum buffers
    all zero (a run without momentum, or one not trained yet) are held as None, and loaded as zeros."""
    cfgs = configs("mlp_bn", "float64", n_train=16)
    pack, _ = trained(cfgs, epochs=1)
    fresh, _ = trained(cfgs, epochs=0)
    state, untouched, addresses = pack.run_state(2), fresh.run_state(1), fresh.step_addresses()
    assert state["flat"].shape == state["momentum"].shape == (13114,) and state["momentum"].abs().max() > 0
    assert [int(state["buffers"][f"layers.{i}.bn.num_batches_tracked"]) for i in range(3)] == [2, 2, 2]
    assert pack.run_state(0)["momentum"] is None and untouched["momentum"] is None  # momentum 0; not trained
    fresh.load_run_state(0, state)
    assert fresh.step_addresses() == addresses
    for got, want in ((fresh.run_state(0), state), (fresh.run_state(1), untouched)):
        assert torch.equal(got["flat"], want["flat"])
        assert (got["momentum"] is None and want["momentum"] is None) or torch.equal(got["momentum"], want["momentum"])
        assert got["buffers"].keys() == want["buffers"].keys()
        assert all(torch.equal(got["buffers"][n], b) for n, b in want["buffers"].items())
    assert not torch.equal(fresh.run_state(0)["flat"], untouched["flat"])


def test_a_dropped_graphed_pack_is_freed_at_once(monkeypatch):
    """The graphs hold no pack and no callback into one (each step is handed its step function): a pack stepped by
    (fake) CUDA graphs is freed as soon as it is dropped, without the cyclic garbage collector."""
    cfgs = configs("mlp_bn", "float32", n_train=20)
    data = datasets.load("synthetic", "data", dtype=torch.float32, options=cfgs[0].data_options)
    pack = Pack.build([new_state(c, None, CPU) for c in cfgs], data, CPU)
    fake_cuda_graphs(monkeypatch, pack)
    for epoch in (1, 2, 3):
        pack.train_epoch(epoch, data, None)
    assert sorted(pack.graphs.graphs) == [4, 8] and pack.graphs.graphs[8].replays == 3 * 2 - WARMUP_STEPS
    gc.collect()
    gc.disable()
    try:
        alive = weakref.ref(pack)
        del pack
        assert alive() is None
    finally:
        gc.enable()


def test_step_rejects_a_network_that_runs_a_linear_layer_twice():
    """Each Linear weight is stepped from its one tape entry: a network that runs one layer twice and skips
    another (as many tape entries as layers, so counting alone would not tell) stops with a clear error."""
    pack, data = trained(configs("mlp_bn", "float64", n_train=16), epochs=0)
    pack.net.model.layers[2] = pack.net.model.layers[1]  # both 16 -> 16: hidden layer 1 runs twice, hidden layer 2 never
    with pytest.raises(ValueError, match="every Linear layer of a packed network must run exactly once"):
        pack.train_epoch(1, data, None)


def assert_logs_close(run_dir, ref_dir, rtol: float) -> None:
    """Two runs' logs: the same rows, numbers equal within rtol (relative to each column's scale)."""
    for name in ("evals", "layers", "ranks"):
        actual, expected = logs.read_table(run_dir, name), logs.read_table(ref_dir, name)
        assert list(actual.columns) == list(expected.columns) and len(actual) == len(expected)
        for column in expected.columns:
            if expected[column].dtype.kind == "f":
                assert_close(actual[column].to_numpy(), expected[column].to_numpy(), rtol, f"{name}.{column}")
            else:
                assert actual[column].tolist() == expected[column].tolist(), f"{name}.{column}"
    actual, expected = logs.read_spectra(run_dir), logs.read_spectra(ref_dir)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert_close(actual[key], expected[key], 1e-6, f"spectrum {key}")  # stored as float32
    summary, ref = logs.read_summary(run_dir), logs.read_summary(ref_dir)
    for key in ("run_id", "status", "diverged_epoch", "diverged_reason", "epochs_completed"):
        assert summary[key] == ref[key], key


def test_diverging_run_leaves_its_pack_mates_untouched(tmp_path):
    runs = [RUNS[0], dict(lr=1e300, weight_decay=0.0, momentum=0.0, seed=5), RUNS[1]]
    cfgs = configs("mlp_bn", "float64", n_train=16, runs=runs)
    statuses = train_pack([(c, tmp_path / "pack" / c.run_id) for c in cfgs], ckpt_dir=tmp_path / "pack.ckpt",
                          device=CPU, log=lambda msg: None)
    assert statuses == ["finished", "diverged", "finished"]
    for c in cfgs:
        train_pack([(c, tmp_path / "solo" / c.run_id)], ckpt_dir=tmp_path / "solo.ckpt", device=CPU,
                   log=lambda msg: None)
        assert_logs_close(tmp_path / "pack" / c.run_id, tmp_path / "solo" / c.run_id, rtol=1e-9)
    diverged = logs.read_summary(tmp_path / "pack" / cfgs[1].run_id)
    assert (diverged["diverged_epoch"], diverged["diverged_reason"]) == (1, "nonfinite_loss")


def test_pack_resumes_after_interrupt(tmp_path):
    cfgs = configs("mlp_bn", "float32", n_train=16)
    ref = [(c, tmp_path / "ref" / c.run_id) for c in cfgs]
    train_pack(ref, ckpt_dir=tmp_path / "ref.ckpt", device=CPU, log=lambda msg: None)
    runs = [(c, tmp_path / "run" / c.run_id) for c in cfgs]
    with pytest.raises(Interrupt):
        train_pack(runs, ckpt_dir=tmp_path / "ckpt", checkpoint_every=1, device=CPU, log=interrupt_at(2))
    assert not any((out / "summary.json").exists() for _, out in runs)
    assert train_pack(runs, ckpt_dir=tmp_path / "ckpt", checkpoint_every=1, device=CPU,
                      log=lambda msg: None) == ["finished"] * 3
    for (_, out), (_, ref_out) in zip(runs, ref):
        assert outputs(out) == outputs(ref_out)


def test_pack_with_dropout_resumes_exactly(tmp_path):
    """Dropout masks come from the global RNG (see lowrank.engine): the checkpoint restores it."""
    cfgs = configs("vit", "float32", n_train=16, arch_options={**SMALL["vit"], "dropout": 0.1, "emb_dropout": 0.1})
    ref = [(c, tmp_path / "ref" / c.run_id) for c in cfgs]
    train_pack(ref, ckpt_dir=tmp_path / "ref.ckpt", device=CPU, log=lambda msg: None)
    runs = [(c, tmp_path / "run" / c.run_id) for c in cfgs]
    with pytest.raises(Interrupt):
        train_pack(runs, ckpt_dir=tmp_path / "ckpt", checkpoint_every=1, device=CPU, log=interrupt_at(3))
    train_pack(runs, ckpt_dir=tmp_path / "ckpt", device=CPU, log=lambda msg: None)
    for (_, out), (_, ref_out) in zip(runs, ref):
        assert outputs(out) == outputs(ref_out)


def test_runs_resumed_at_different_epochs_train_as_sub_packs(tmp_path):
    cfgs = configs("mlp_bn", "float32", n_train=16)[:2]
    runs = [(c, tmp_path / "run" / c.run_id) for c in cfgs]
    for (cfg, out), stop in zip(runs, (3, 2)):  # checkpoints at epochs 2 and 1
        with pytest.raises(Interrupt):
            train_pack([(cfg, out)], ckpt_dir=tmp_path / "ckpt", checkpoint_every=1, device=CPU,
                       log=interrupt_at(stop))
    messages = []
    assert train_pack(runs, ckpt_dir=tmp_path / "ckpt", device=CPU, log=messages.append) == ["finished"] * 2
    assert messages[0] == f"resumed run {cfgs[1].run_id} at epoch 2 step 0 of 2"  # the one furthest behind first
    assert messages[3] == f"resumed run {cfgs[0].run_id} at epoch 3 step 0 of 2"
    epochs = [m for m in messages if not m.startswith("resumed ")]
    assert len(epochs) == 2 + 1 and all("K=1]" in m for m in epochs)  # epochs 2-3 of one, epoch 3 of the other
    for cfg, out in runs:
        train_pack([(cfg, tmp_path / "ref" / cfg.run_id)], ckpt_dir=tmp_path / "ref.ckpt", device=CPU,
                   log=lambda msg: None)
        assert outputs(out) == outputs(tmp_path / "ref" / cfg.run_id)


def test_spec_files_train_one_pack(tmp_path, capsys):
    cfgs = configs("res_bn", "float64", n_train=16)
    specs = []
    for c in cfgs:
        specs.append(tmp_path / f"{c.run_id}.json")
        specs[-1].write_text(json.dumps({"config": c.to_dict(), "out": str(tmp_path / "pack" / c.run_id)}))
    assert main(["--spec", *map(str, specs), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count("finished: ") == 3
    for c in cfgs:
        train_pack([(c, tmp_path / "solo" / c.run_id)], ckpt_dir=tmp_path / "solo.ckpt", device=CPU,
                   log=lambda msg: None)
        assert_logs_close(tmp_path / "pack" / c.run_id, tmp_path / "solo" / c.run_id, rtol=1e-9)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"config": {**cfgs[0].to_dict(), "batch_size": 4}, "out": str(tmp_path / "o")}))
    assert main(["--spec", str(specs[0]), str(other), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pack" in err


def test_spectra_dtype_is_float32(tmp_path):
    (cfg,) = configs("mlp_bn", "float64", n_train=8, runs=RUNS[:1], epochs=1)
    train_pack([(cfg, tmp_path / "run")], ckpt_dir=tmp_path / "ckpt", device=CPU, log=lambda msg: None)
    spectra = logs.read_spectra(tmp_path / "run")
    assert all(v.dtype == np.float32 for k, v in spectra.items() if k != "epochs")
