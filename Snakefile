# lowrank: the paper's grid -> training packs -> tables -> every figure, the bound comparison and a scorecard.
# Full paper (cluster):   snakemake --profile profiles/slurm all
# Offline demo (CPU):     snakemake all --profile profiles/local --configfile config/demo.yaml
# One figure:             snakemake --profile profiles/local fig04      (dry run: add -n)

from snakemake.utils import min_version

from snakemake.exceptions import WorkflowError

from lowrank import layout
from lowrank.config import ConfigError
from lowrank.plan import read_yaml

min_version("9.0")  # pyproject.toml pins the same floor
# `snakemake --lint` remaining warning, on purpose: "Specify a conda environment or container for each rule": every
# rule runs the project's one virtual environment (pyproject.toml, `make setup`), on the cluster too.

try:  # a YAML syntax error or a key given twice names the file and line (Snakemake names neither, keeps the last;
    # a --configfile is read before this file: lowrank/snakemake_config.py names its syntax errors)
    for _path in ["config.yaml", *workflow.overwrite_configfiles]:
        read_yaml(_path)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/slurm.smk"

if layout.front_page_file(RESULTS).exists():  # written after the scorecard: a partial build's report has none

    report: str(layout.front_page_file(RESULTS))


rule all:
    input:
        PLAN.all_targets(),
    default_target: True
