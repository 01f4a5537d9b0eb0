# Aggregation: each figure's runs merged into one tidy table; the bound-vs-rank comparison over every run; every
# run's final rank against B/(2μ_T λ) (Theorem 3.3's shape); the claims scorecard; the provenance record. All local
# rules: cheap, and they run on the submit host.


rule aggregate_figure:
    input:
        runs=figure_run_files,
        code=AGGREGATE_CODE,
    output:
        table_path("{fig}"),
    wildcard_constraints:
        fig="fig[0-9]+",
    params:
        runs_dir=runs_folder,
        config=lambda wildcards: views.aggregate_view(config, wildcards.fig),
    log:
        log_path("aggregate_figure", "{fig}"),
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
        runs_dir=runs_folder,
        run_ids=list(PLAN.runs),
        config=views.comparison_view(config),
    log:
        log_path("bound_vs_rank", "bound_vs_rank"),
    localrule: True
    script:
        "../scripts/bound_vs_rank.py"


rule bound_shape:
    input:
        tables=[table_path(name) for name in config["figures"]],
        comparison=table_path("bound_vs_rank"),
        code=plan.module_files("shape"),
    output:
        table=table_path("bound_shape"),
        fits=table_path("bound_shape_fits"),
    params:
        figures=list(config["figures"]),
        config=views.scorecard_view(config),
    log:
        log_path("bound_shape", "bound_shape"),
    localrule: True
    script:
        "../scripts/bound_shape.py"


rule scorecard:
    input:
        tables=[table_path(name) for name in config["figures"]],
        comparison=table_path("bound_vs_rank"),
        code=plan.module_files("scorecard"),
    output:
        md=report(str(layout.scorecard_file(RESULTS, "md")), caption="../report/scorecard.rst", category="Scorecard"),
        html=str(layout.scorecard_file(RESULTS, "html")),
    params:
        figures=list(config["figures"]),
        config=views.scorecard_view(config),
    log:
        log_path("scorecard", "scorecard"),
    localrule: True
    script:
        "../scripts/scorecard.py"


rule front_page:
    input:
        scorecard=str(layout.scorecard_file(RESULTS, "md")),
        paper=str(Path(workflow.basedir, "config.yaml")),
        code=plan.module_files("frontpage"),
    output:
        str(layout.front_page_file(RESULTS)),
    params:
        config=views.scorecard_view(config),
    log:
        log_path("front_page", "front_page"),
    localrule: True
    script:
        "../scripts/front_page.py"


rule provenance:
    input:
        code=sorted(str(p) for p in CODE.rglob("*.py")),  # the code version it records
    output:
        report(str(layout.provenance_file(RESULTS)), caption="../report/provenance.rst", category="Provenance"),
    params:
        config=config,
    log:
        log_path("provenance", "provenance"),
    localrule: True
    script:
        "../scripts/provenance.py"
