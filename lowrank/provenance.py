"""Which code trained a run: the git commit (and whether the tree had uncommitted changes) and a hash of the lowrank
package sources, recorded in summary.json; and the report's note when one figure mixes versions of those sources.

The source hash is the stable part: the same sources give the same hash wherever and whenever they run, so a
resumed run records what an uninterrupted one does. It covers the package's code (its .py files) and not its data:
the measured convolution table (lowrank/models/conv_table.json, rewritten by `python -m bench.bench_conv --write`)
chooses among candidates equal up to rounding, and re-measuring it changes no run's code version.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

import pandas as pd

PACKAGE = Path(__file__).resolve().parent
SOURCES = "*.py"  # what the source hash covers: the package's code, not its data files


@lru_cache(maxsize=1)
def source_hash(package: Path = PACKAGE) -> str:
    """SHA-256 over the package's SOURCES (relative path and bytes, in path order)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob(SOURCES)):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(PACKAGE), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def code_version() -> dict:
    """{commit, dirty, source_sha256}: commit and dirty are None outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status), "source_sha256": source_hash()}


GIT = " (git "  # what code_label puts between the source hash and the git commit; source_of splits there


def code_label(code: dict | None) -> str:
    """A short name of a code version, e.g. 'src 1a2b3c4d5e6f (git 0123abcd-dirty)'."""
    if not code:
        return "unrecorded (trained before code provenance)"
    git = f"{GIT}{code['commit'][:8]}{'-dirty' if code['dirty'] else ''})" if code.get("commit") else ""
    return f"src {code['source_sha256'][:12]}{git}"


def source_of(label: str) -> str:
    """The source-hash part of a code_label ('src 1a2b3c4d5e6f'; an unrecorded label is its own): what decides
    whether two runs' numbers could differ, unlike the git commit or a tree dirty outside lowrank/."""
    return label.split(GIT, 1)[0]


def code_notes(tables: dict[str, pd.DataFrame]) -> list[str]:
    """One note naming the code versions behind each figure, and a warning per figure whose runs were trained by
    different lowrank sources (versions that differ only in git commit or dirty flag are the same trainer)."""
    versions = {name: sorted(t["code"].dropna().unique()) for name, t in tables.items() if "code" in t and len(t)}
    sources = {name: len({source_of(label) for label in v}) for name, v in versions.items()}
    notes = ["Code behind the figures: " + "; ".join(f"{name}: {', '.join(v)}" for name, v in versions.items())
             + "."] if versions else []
    notes += [f"WARNING: {name} mixes runs trained by {sources[name]} versions of the lowrank sources "
              f"({', '.join(v)}; compared: the source hash, not the git commit or dirty flag): retrain its older "
              "runs or check that the engine change does not matter." for name, v in versions.items()
              if sources[name] > 1]
    return notes
