"""The results layout: one module places every file, and the package's writers and readers use it."""

from __future__ import annotations

from pathlib import Path

from lowrank import layout


def test_every_location_of_a_build():
    res = Path("res")
    assert layout.run_files(layout.runs_dir(res), "r1") == [res / "runs" / "r1" / name for name in (
        "evals.csv", "layers.csv", "ranks.csv", "singular_values.npz", "summary.json")]
    assert layout.checkpoint_file(layout.checkpoints_dir(res), "r1") == res / "checkpoints" / "r1.pt"
    assert layout.lease_file(layout.checkpoints_dir(res), "r1") == res / "checkpoints" / "r1.lease"
    assert layout.default_checkpoints_dir(res / "runs" / "r1") == res / "runs" / "r1.ckpt"
    assert layout.dataset_file("data", "mnist") == Path("data/mnist.pt")
    assert layout.table_file(res, "fig04") == res / "tables" / "fig04.csv"
    assert layout.figure_file(res, "fig04", "pdf") == res / "figures" / "fig04.pdf"
    assert layout.scorecard_file(res, "md") == res / "scorecard.md"
    assert layout.provenance_file(res) == res / "provenance.md"
    assert layout.front_page_file(res) == res / "report" / "front_page.rst"
    assert layout.log_file(res, "render", "fig04") == res / "logs" / "render" / "fig04.log"


def test_checkpoints_and_prepared_data_are_where_the_layout_says(tmp_path):
    from lowrank import checkpoints, data
    from lowrank.config import RunConfig

    cfg = RunConfig(arch="mlp_bn", dataset="synthetic", batch_size=8, lr=0.1, weight_decay=0.0)
    assert checkpoints.checkpoint_path(tmp_path, cfg) == layout.checkpoint_file(tmp_path, cfg.run_id)
    assert layout.lease_file(tmp_path, cfg.run_id) == checkpoints.checkpoint_path(tmp_path, cfg).with_suffix(".lease")
    assert data.prepare("digits", tmp_path) == layout.dataset_file(tmp_path, "digits")
    assert layout.dataset_file(tmp_path, "digits").is_file()
