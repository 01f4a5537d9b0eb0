"""lowrank.provenance's source hash: the package's code and nothing else, so re-measuring the convolution table
(data) changes no run's recorded code version, while any code edit does."""

from __future__ import annotations

import json
import shutil

from lowrank import provenance
from lowrank.models import packed_conv


def test_the_source_hash_covers_the_code_and_not_the_measured_table(tmp_path):
    package = tmp_path / "lowrank"
    shutil.copytree(provenance.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    assert provenance.source_hash(package) == provenance.source_hash()  # relative paths: the same wherever it lies
    table = package / packed_conv.TABLE_FILE.relative_to(provenance.PACKAGE)
    shape = packed_conv.LayerShape("cuda", 8, 16, 64, 32, 32, 64, (3, 3), (1, 1), (1, 1), (1, 1), 1, False)
    table.write_text(json.dumps({"measured": "Measured on a GPU.", "choices": [
        {"layer": "64>64 3x3/1@32x32", "shape": shape._asdict(), "choice": "unfold_bmm", "ms": {"grouped": 1.0}}]}))
    assert packed_conv.read_table(table) == {shape: "unfold_bmm"}
    assert provenance.source_hash(package) == provenance.source_hash()
    code = package / "models" / "packed_conv.py"
    code.write_text(code.read_text() + "\n")
    assert provenance.source_hash(package) != provenance.source_hash()
