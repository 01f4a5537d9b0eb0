"""Snakemake job: the report's front page (data, run counts, paper-vs-here settings, scorecard) as RST."""

from pathlib import Path

from lowrank.frontpage import front_page
from lowrank.plan import load
from lowrank.joblog import log_stderr

log_stderr(snakemake.log[0])  # noqa: F821

paper = load(snakemake.input.paper)  # noqa: F821
text = front_page(snakemake.params.config, paper, Path(snakemake.input.scorecard).read_text())  # noqa: F821
Path(snakemake.output[0]).write_text(text)  # noqa: F821
