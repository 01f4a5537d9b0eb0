# Rendering: one rule per figure (each with its report caption) and one target rule per figure that builds
# only the runs that figure needs. Plot code is an input, so editing it re-renders without retraining.

for _fig in config["figures"]:

    rule:
        name:
            f"render_{_fig}"
        input:
            table=table_path(_fig),
            code=PLOT_CODE,
        output:
            png=report(figure_path(_fig, "png"), caption=f"../report/{_fig}.rst", category="Figures",
                       labels={"figure": _fig}),
            pdf=figure_path(_fig, "pdf"),
        params:
            figure=_fig,
            plot_eps=None,
            config=views.render_view(config, _fig),
        log:
            log_path("render", _fig),
        localrule: True
        script:
            "../scripts/render_figure.py"

    if PLAN.second_rendering(_fig):

        rule:
            name:
                f"render_{_fig}_second_eps"
            input:
                table=table_path(_fig),
                code=PLOT_CODE,
            output:
                png=report(figure_path(PLAN.second_name(_fig), "png"), caption=f"../report/{_fig}.rst",
                           category="Figures", labels={"figure": PLAN.second_name(_fig)}),
                pdf=figure_path(PLAN.second_name(_fig), "pdf"),
            params:
                figure=_fig,
                plot_eps=PLAN.second_rendering(_fig),
                config=views.render_view(config, _fig, PLAN.second_rendering(_fig)),
            log:
                log_path("render", PLAN.second_name(_fig)),
            localrule: True
            script:
                "../scripts/render_figure.py"

    rule:
        name:
            _fig
        input:
            PLAN.figure_targets(_fig),


rule render_bound_vs_rank:
    input:
        table=table_path("bound_vs_rank"),
        curves=table_path("bound_eps_curves"),
        code=PLOT_CODE,
    output:
        png=report(figure_path("bound_vs_rank", "png"), caption="../report/bound_vs_rank.rst",
                   category="Bound vs rank"),
        pdf=figure_path("bound_vs_rank", "pdf"),
    params:
        config=views.comparison_view(config),
    log:
        log_path("render", "bound_vs_rank"),
    localrule: True
    script:
        "../scripts/render_bound_vs_rank.py"


rule render_bound_shape:
    input:
        table=table_path("bound_shape"),
        fits=table_path("bound_shape_fits"),
        code=PLOT_CODE,
    output:
        png=report(figure_path("bound_shape", "png"), caption="../report/bound_shape.rst", category="Bound vs rank"),
        pdf=figure_path("bound_shape", "pdf"),
    params:
        config=views.comparison_view(config),
    log:
        log_path("render", "bound_shape"),
    localrule: True
    script:
        "../scripts/render_bound_shape.py"
