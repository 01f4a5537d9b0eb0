"""Snakemake job: the claims scorecard (Markdown and HTML) from every figure's table and the bound comparison."""

from pathlib import Path

import pandas as pd

from lowrank.joblog import log_stderr
from lowrank.scorecard import scorecard, scorecard_html

log_stderr(snakemake.log[0])  # noqa: F821

tables = {name: pd.read_csv(path) for name, path in zip(snakemake.params.figures, snakemake.input.tables)}  # noqa: F821
comparison = pd.read_csv(snakemake.input.comparison)  # noqa: F821
Path(snakemake.output.md).write_text(scorecard(snakemake.params.config, tables, comparison))  # noqa: F821
Path(snakemake.output.html).write_text(scorecard_html(snakemake.params.config, tables, comparison))  # noqa: F821
