"""The results layout: one module places every file, and the package's writers and readers use it."""

from __future__ import annotations

import ast
from pathlib import Path

from lowrank import layout

ROOT = Path(__file__).resolve().parents[1]


def test_every_location_of_a_build():
    res = Path("res")
    assert layout.run_files(layout.runs_dir(res), "r1") == [res / "runs" / "r1" / name for name in (
        "evals.csv", "layers.csv", "ranks.csv", "singular_values.npz", "summary.json")]
    assert layout.run_files(layout.live_dir(res), "r1")[0] == res / "live" / "r1" / "evals.csv"
    assert layout.checkpoint_file(layout.checkpoints_dir(res), "r1") == res / "checkpoints" / "r1.pt"
    assert layout.lease_file(layout.checkpoints_dir(res), "r1") == res / "checkpoints" / "r1.lease"
    assert layout.default_checkpoints_dir(res / "runs" / "r1") == res / "runs" / "r1.ckpt"
    assert layout.dataset_file("data", "mnist") == Path("data/mnist.pt")
    assert layout.table_file(res, "fig04") == res / "tables" / "fig04.csv"
    assert layout.figure_file(res, "fig04", "pdf") == res / "figures" / "fig04.pdf"
    assert layout.preview_file(res, "fig04", "png") == res / "preview" / "fig04.png"
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


def string_constants(path: Path) -> list[str]:
    """The string constants of a Python file, docstrings left out (f-strings' literal parts included)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_layout_is_the_one_place_that_names_a_runs_files():
    """layout imports nothing of the package (the path table depends on no schema), and no other module of the
    package, the workflow's scripts or the benchmarks spells a run's file names: they take them from layout."""
    imports = [node for node in ast.walk(ast.parse(Path(layout.__file__).read_text()))
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not [ast.unparse(node) for node in imports if "lowrank" in ast.unparse(node)]
    code = [p for folder in ("lowrank", "workflow/scripts", "bench") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(code) > 40 and Path(layout.__file__).resolve() in code
    spelled = {f"{p.relative_to(ROOT)}: {text!r}" for p in code if p != Path(layout.__file__).resolve()
               for text in string_constants(p) for name in layout.RUN_FILES.values() if name in text}
    assert not spelled


def test_the_previous_checkpoint_sits_next_to_the_latest():
    latest = layout.checkpoint_file(Path("res") / "checkpoints", "r1")
    assert layout.previous_checkpoint_file(latest) == Path("res") / "checkpoints" / "r1.prev.pt"
