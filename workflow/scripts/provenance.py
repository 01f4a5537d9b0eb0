"""Snakemake job: record what produced these results (config, code version, package versions) for the report."""

import platform
from importlib.metadata import version

import yaml

from lowrank.joblog import log_stderr
from lowrank.provenance import code_label, code_version

log_stderr(snakemake.log[0])  # noqa: F821

PACKAGES = ("lowrank", "torch", "torchvision", "numpy", "pandas", "seaborn", "matplotlib", "scikit-learn",
            "snakemake", "snakemake-executor-plugin-slurm")

lines = ["# Provenance", "", f"- code version: `{code_label(code_version())}`",
         f"- python: {platform.python_version()}"]
lines += [f"- {name}: {version(name)}" for name in PACKAGES]
config = yaml.safe_dump(snakemake.params.config, sort_keys=False).rstrip()  # noqa: F821
lines += ["", "## Config", "", "```yaml", config, "```", ""]
with open(snakemake.output[0], "w") as fh:  # noqa: F821
    fh.write("\n".join(lines))
