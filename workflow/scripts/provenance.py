"""Snakemake job: record what produced these results (config, code version, package versions) for the report."""

import platform
import subprocess
from importlib.metadata import version

import yaml

PACKAGES = ("lowrank", "torch", "torchvision", "numpy", "pandas", "seaborn", "matplotlib", "scikit-learn",
            "snakemake", "snakemake-executor-plugin-slurm")


def git_version() -> str:
    """The commit of the working tree (with '-dirty' if it has uncommitted changes), or 'unknown'."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


lines = ["# Provenance", "", f"- code version: `{git_version()}`", f"- python: {platform.python_version()}"]
lines += [f"- {name}: {version(name)}" for name in PACKAGES]
lines += ["", "## Config", "", "```yaml", yaml.safe_dump(snakemake.config, sort_keys=False).rstrip(), "```", ""]  # noqa: F821
with open(snakemake.output[0], "w") as fh:  # noqa: F821
    fh.write("\n".join(lines))
