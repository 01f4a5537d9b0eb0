# Aggregation: each figure's runs merged into one tidy table; the bound-vs-rank comparison over every run;
# the claims scorecard; the provenance record. All local rules: cheap, and they run on the submit host.


def figure_run_files(wildcards):
    """The logs of every run figure `fig` draws."""
    return [f for rid in FIGURE_RUNS[wildcards.fig] for f in run_files(rid)]


def all_run_files(wildcards):
    """The logs of every run of the grid."""
    return [f for rid in RUNS for f in run_files(rid)]


rule aggregate_figure:
    input:
        runs=figure_run_files,
        code=AGGREGATE_CODE,
    output:
        table_path("{fig}"),
    wildcard_constraints:
        fig="fig[0-9]+",
    params:
        runs_dir=str(RESULTS / "runs"),
        config=lambda wildcards: views.aggregate_view(config, wildcards.fig),
    localrule: True
    script:
        "../scripts/aggregate_figure.py"


rule bound_vs_rank:
    input:
        runs=all_run_files,
        code=AGGREGATE_CODE,
    output:
        table=table_path("bound_vs_rank"),
        summary=table_path("bound_summary"),
        curves=table_path("bound_eps_curves"),
    params:
        runs_dir=str(RESULTS / "runs"),
        run_ids=list(RUNS),
        config=views.comparison_view(config),
    localrule: True
    script:
        "../scripts/bound_vs_rank.py"


rule scorecard:
    input:
        tables=[table_path(name) for name in config["figures"]],
        comparison=table_path("bound_vs_rank"),
        code=module_files("scorecard"),
    output:
        md=report(str(RESULTS / "scorecard.md"), caption="../report/scorecard.rst", category="Scorecard"),
        html=str(RESULTS / "scorecard.html"),
    params:
        figures=list(config["figures"]),
        config=views.scorecard_view(config),
    localrule: True
    script:
        "../scripts/scorecard.py"


rule front_page:
    input:
        scorecard=str(RESULTS / "scorecard.md"),
        paper=str(Path(workflow.basedir, "config.yaml")),
        code=module_files("frontpage"),
    output:
        front_page_path(),
    params:
        config=views.scorecard_view(config),
    log:
        str(RESULTS / "logs" / "front_page.log"),
    localrule: True
    script:
        "../scripts/front_page.py"


rule provenance:
    input:
        code=sorted(str(p) for p in CODE.rglob("*.py")),  # the code version it records
    output:
        report(str(RESULTS / "provenance.md"), caption="../report/provenance.rst", category="Provenance"),
    params:
        config=config,
    localrule: True
    script:
        "../scripts/provenance.py"
