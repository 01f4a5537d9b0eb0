"""The docs' examples run: every Python and shell block of README.md, docs/*.md and bench/README.md, unless the line
right above it says why not (``<!-- no-run: reason -->``); ``<!-- slow: reason -->`` puts a block in the slow suite.

Python blocks are doctests: each ``>>>`` line must print what the block shows. Shell blocks (bash, sh) run in bash
with -e and pipefail; ``console`` blocks give commands after ``$ `` (continued after ``> ``) and, on the other lines,
their exact standard output. Shell blocks run from a stand-in repository root: a temporary directory whose entries
link to this checkout (so outputs land there) and whose ``.venv`` is the environment running the tests, first on
PATH."""

from __future__ import annotations

import doctest
import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
SHELLS = ("bash", "sh", "console")
FENCE = re.compile(r"```(\w*)$")
MARK = re.compile(r"<!-- (no-run|slow): (.+) -->$")
TIMEOUT_S = 300  # per shell block
NOT_LINKED = {".git", ".venv", ".snakemake", ".pytest_cache", "results", "data", "out"}  # outputs, or replaced


class Block(NamedTuple):
    """A fenced code block: where it starts, its language, its text and the marker on the line above (or None)."""

    doc: str
    line: int
    lang: str
    text: str
    mark: tuple[str, str] | None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            end = lines.index("```", i + 1)
            mark = MARK.match(lines[i - 1]) if i else None
            found.append(Block(str(path.relative_to(ROOT)), i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                               mark.groups() if mark else None))
            i = end
        i += 1
    return found


EXAMPLES = [b for doc in DOCS for b in blocks(doc) if b.lang in ("python", *SHELLS)]
RUN = [pytest.param(b, id=f"{b.doc}:{b.line}", marks=[pytest.mark.slow] if b.mark and b.mark[0] == "slow" else [])
       for b in EXAMPLES if not (b.mark and b.mark[0] == "no-run")]


def run_python(block: Block) -> None:
    """Run a Python block as a doctest; fail with doctest's report."""
    test = doctest.DocTestParser().get_doctest(block.text, {}, f"{block.doc}:{block.line}", block.doc, block.line)
    assert test.examples, f"{block.doc}:{block.line}: a Python example is written as a doctest (>>>)"
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


def repository_stand_in(tmp_path: Path) -> Path:
    """A directory that looks like this checkout's root, with this interpreter's environment as .venv."""
    tree = tmp_path / "repo"
    tree.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            (tree / entry.name).symlink_to(entry)
    (tree / ".venv").symlink_to(sys.prefix)
    return tree


def run_shell(block: Block, tmp_path: Path) -> None:
    """Run a shell block from a stand-in repository root; a console block's output must be the one shown."""
    lines = block.text.splitlines()
    if block.lang == "console":
        script = "\n".join(line[2:] for line in lines if line[:2] in ("$ ", "> "))
        expected = [line for line in lines if line[:2] not in ("$ ", "> ")]
    else:
        script, expected = block.text, None
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(["bash", "-c", "set -eo pipefail\n" + script], cwd=repository_stand_in(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # every process the block started, not only bash
            raise
    assert proc.returncode == 0, f"{block.doc}:{block.line} exited {proc.returncode}:\n{err[-3000:]}"
    if expected is not None:
        assert out.splitlines() == expected


def run_example(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one example block, its files written under tmp_path."""
    monkeypatch.chdir(tmp_path)
    if block.lang == "python":
        run_python(block)
    else:
        run_shell(block, tmp_path)


@pytest.mark.parametrize("block", RUN)
def test_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_example(block, tmp_path, monkeypatch)


def test_every_marker_stands_above_an_example_and_says_why() -> None:
    marked = [b for b in EXAMPLES if b.mark]
    written = [line for doc in DOCS for line in doc.read_text().splitlines() if line.startswith("<!-- ")]
    assert len(written) == len(marked)  # none misspelt, none above prose or output
    assert all(len(b.mark[1]) > 10 for b in marked)
    assert {b.doc for b in EXAMPLES if not b.mark} >= {"README.md", "docs/slurm.md"}  # each runs something


@pytest.mark.parametrize("old, new, says", [
    ("metrics.eps_rank", "metrics.rank", "AttributeError: module 'lowrank.metrics' has no attribute 'rank'"),
    ("lowrank.train", "lowrank.trainer", "No module named lowrank.trainer"),
], ids=["python", "shell"])
def test_a_readme_example_with_a_wrong_name_fails(old, new, says, tmp_path, monkeypatch) -> None:
    (block,) = [b for b in EXAMPLES if b.doc == "README.md" and old in b.text and not b.mark]
    with pytest.raises(AssertionError, match=re.escape(says)):
        run_example(block._replace(text=block.text.replace(old, new)), tmp_path, monkeypatch)
