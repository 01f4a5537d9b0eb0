"""lowrank.plan without Snakemake: the paper's plan (packs, their names and time limits, targets, code inputs), the
one validation pass, and the schema's roles for every key."""

from __future__ import annotations

import ast
import copy
import math
from pathlib import Path

import pytest

from lowrank import grid, layout, plan, schema, views
from lowrank.config import ConfigError, RunConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper() -> dict:
    return plan.load(ROOT / "config.yaml")


@pytest.fixture(scope="module")
def built(paper) -> plan.Plan:
    return plan.build(paper)


def test_the_paper_plan_has_its_runs_and_packs(built):
    assert len(built.runs) == 283 and len(built.packs) == 85
    assert sorted(r.run_id for p in built.packs for r in p.runs) == sorted(built.runs)  # each run in one pack
    assert all(len({r.pack_key for r in p.runs}) == 1 for p in built.packs)
    assert sum(len(ids) for ids in built.figure_runs.values()) == sum(len(f) for f in built.run_figures.values())


def test_pack_names_are_readable_and_depend_only_on_their_members(paper, built):
    names = {p.name for p in built.packs}
    assert len(names) == len(built.packs) and "train_resnet18_cifar10_b128_d1bc89ac" in names
    retitled = plan.build(grid.merge(paper, {"figures": {"fig04": {"title": "another title"}}, "pack_size": 8}))
    assert {p.name for p in retitled.packs} == names  # neither a title nor the default pack size moves a pack
    one = plan.Pack(built.packs[0].runs[:1], built.packs[0].resources, built.packs[0].table)
    assert one.name.startswith("train_resnet18_cifar10_b128_") and one.name not in names  # other members, other name



def test_a_run_logged_meanwhile_renames_no_pack_and_leaves_its_pack_the_others(paper, built):
    """A SLURM job parses the workflow again when it starts, with whatever is logged by then: a diverged run is
    logged while its pack trains on. Packing only the unlogged runs shifted the later packs of its group (fig02's
    20 runs of one setting as 8 + 8 + 4 became 8 + 8 + 3), so their jobs found no rule of their name."""
    def key(pack):  # the runs packed together: one pack key, drawn by the same figures
        return pack.runs[0].pack_key, built.run_figures[pack.runs[0].run_id]

    groups = [[p for p in built.packs if key(p) == key(q)] for q in built.packs]
    group = next(g for g in groups if len(g) == 3)
    assert [len(p.runs) for p in group] == [8, 8, 4]
    diverged = group[0].runs[0].run_id
    later = plan.build(paper, lambda rid: rid == diverged)
    assert [p.name for p in later.packs] == [p.name for p in built.packs]
    shrunk = next(p for p in later.packs if p.name == group[0].name)
    assert shrunk.runs == group[0].runs[1:]  # it trains the others only
    assert plan.build(paper, lambda rid: rid in {r.run_id for r in group[0].runs}).packs == [
        p for p in built.packs if p.name != group[0].name]  # a pack whose runs are all logged has no job


def test_a_pack_time_limit_is_the_step_time_formula_times_the_attempt(built):
    pack = next(p for p in built.packs if p.name == "train_resnet18_cifar10_b128_d1bc89ac")
    assert len(pack.runs) == 2 and pack.runs[0].epochs == 500 and pack.runs[0].steps_per_epoch == 391
    # 500 epochs × 391 steps × (0.0062 s + 2 runs × 0.0047 s × 128/16) × margin 1.5 / 60 + 10 min overhead
    base = 500 * 391 * (0.0062 + 2 * 0.0047 * 128 / 16) * 1.5 / 60 + 10
    assert [pack.minutes(a) for a in (1, 2, 3)] == [math.ceil(base * a) for a in (1, 2, 3)] == [408, 816, 1224]
    capped = plan.Pack(pack.runs, pack.resources, {**pack.table, "max_runtime_min": 500})
    assert [capped.minutes(a) for a in (1, 2)] == [408, 500]


def test_an_architecture_row_with_pack_size_sizes_its_packs(paper):
    sized = grid.merge(paper, {"resources": {"vit": {"pack_size": 2}}})
    largest = max(len(p.runs) for p in plan.build(sized).packs if p.runs[0].arch == "vit")
    assert largest == 2 < max(len(p.runs) for p in plan.build(paper).packs if p.runs[0].arch == "vit")


def test_targets_are_every_figure_table_and_report_file(paper, built):
    targets = built.all_targets()
    results = Path(paper["results"])
    runs = {str(f) for rid in built.runs for f in layout.run_files(layout.runs_dir(results), rid)}
    figures = {str(layout.figure_file(results, n, e)) for n in [*paper["figures"], "fig04_notebook_eps",
                                                                 "fig12_notebook_eps", "bound_vs_rank", "bound_shape"]
               for e in ("png", "pdf")}
    assert len(targets) == len(set(targets)) == len(figures) + 18 + 4 + 4 == 70
    assert figures <= set(targets) and not runs & set(targets) and str(layout.scorecard_file(results, "md")) in targets
    assert built.second_rendering("fig04") == "notebook" and built.second_rendering("fig05") is None


def test_code_inputs_follow_imports_and_stay_torch_free():
    names = {Path(p).name for p in plan.module_files("aggregate")}
    assert {"aggregate.py", "logs.py", "layout.py", "metrics.py", "schema.py"} <= names
    assert not any("engine" in p or "models" in p for p in plan.module_files("aggregate"))
    assert len(plan.module_files("plots")) > len({"__init__.py", "style.py"})


def test_check_names_the_first_bad_key_in_one_line(paper):
    with pytest.raises(ConfigError, match=r"^Invalid config at figures\.fig02\.fixed\.lr: -0\.1 is less than or "
                                          r"equal to the minimum of 0$"):
        plan.check(grid.merge(paper, {"figures": {"fig02": {"fixed": {"lr": -0.1}}}}))
    with pytest.raises(ConfigError, match=r"^Invalid config: figures\.fig02 has an empty grid"):
        plan.build(grid.merge(paper, {"figures": {"fig02": {"vary": {"weight_decay": [], "lr": []}}}}))
    plan.check(paper)  # the paper's config itself passes


def test_run_settings_are_checked_against_the_schema_not_a_copy_of_it():
    kw = dict(arch="mlp_bn", dataset="synthetic", batch_size=4, lr=0.1, weight_decay=0.0)
    for bad, message in [({"momentum": 1.0}, "momentum=1.0 is invalid: 1.0 is greater than or equal to the "
                                             "maximum of 1."),
                         ({"milestones": [5, 0]}, "milestones[1]=0 is invalid: 0 is less than the minimum of 1."),
                         ({"data_options": {"n_train": 0}}, "data_options.n_train=0 is invalid: 0 is less than the "
                                                            "minimum of 1.")]:
        with pytest.raises(ConfigError) as err:
            RunConfig(**{**kw, **bad})
        assert str(err.value) == message


def test_every_key_of_the_schema_has_a_role(monkeypatch):
    assert schema.unclassified() == []
    assert views.EXECUTION_KEYS == ("results", "data_root", "pack_size", "pack_scope", "checkpoint_every",
                                    "gpu_kernels", "gpu_step", "max_runs", "lease_stale_after_s", "resources")
    assert views.DRAWING_KEYS == ("title", "hue", "x", "accuracy") and views.DRAWING_SWITCHES == ("bound_lambda",)
    broken = copy.deepcopy(schema.load())
    broken["$defs"]["figure"]["properties"]["colour"] = {"type": "string"}  # a new key, forgotten
    del broken["properties"]["switches"]["properties"]["plot_eps"]["x-role"]
    monkeypatch.setattr(schema, "load", lambda: broken)
    assert schema.unclassified() == ["switches.plot_eps", "figure.colour"]


def test_views_follow_the_roles(paper):
    edited = grid.merge(paper, {"figures": {"fig12": {"title": "t", "panels": [{"y": "lr", "label": "a"}]}},
                                "gpu_step": "graph", "switches": {"bound_lambda": "as_printed"}})
    assert views.aggregate_view(edited, "fig04") == views.aggregate_view(paper, "fig04")
    assert views.scorecard_view(grid.merge(paper, {"gpu_step": "graph"})) == views.scorecard_view(paper)
    assert views.aggregate_view(edited, "fig12")["figures"]["fig12"]["panels"] == [{"label": "a"}]
    assert views.render_view(edited, "fig18")["switches"] == {"bound_lambda": "as_printed"}
    assert views.render_view(edited, "fig04")["switches"] == {}  # a curves figure reads no drawing switch


# --- issue 25, case 7: configs that used to pass but should not ---------------------------------------------------
def test_a_key_given_twice_in_one_yaml_file_is_refused_naming_file_and_line(tmp_path):
    dup = tmp_path / "override.yaml"
    dup.write_text("figures:\n  fig08:\n    title: a\n  fig08:\n    title: b\n")
    with pytest.raises(ConfigError, match=rf"^{dup} line 4, column 3 is not valid YAML: key 'fig08' is given twice"):
        plan.read_yaml(dup)


@pytest.mark.parametrize("edit, message", [
    ({"defaults": {"epochs": 5_000_000_000}},
     "Invalid config at defaults.epochs: 5000000000 is greater than the maximum of 100000"),
    ({"figures": {"fig02": {"seeds": list(range(1000))}}},
     "Invalid config at max_runs: the figures list 12,365 runs (fig02: 12,000), over max_runs = 10,000; shrink the "
     "grid or raise max_runs."),
    ({"figures": {"fig08": {"title": r"$\frac{1}{2$"}}},
     r"Invalid config at figures.fig08.title: '$\\frac{1}{2$' cannot be drawn: ParseSyntaxException: Expected "
     r"\frac{num}{den}, found '{'  (at char 5), (line:1, col:6)."),
])
def test_impossible_sizes_and_undrawable_titles_stop_before_any_work(paper, edit, message):
    with pytest.raises(ConfigError) as err:
        plan.check(grid.merge(paper, edit))
    assert str(err.value) == message


def test_grid_size_counts_what_the_figures_list(paper):
    assert sum(grid.size(paper, n) for n in paper["figures"]) == 425 == sum(
        len(grid.figure_runs(paper, n)) for n in paper["figures"])
    plan.check(grid.merge(paper, {"figures": {"fig08": {"title": r"$\mu$ and $\lambda$"}}, "max_runs": 425}))


def ast_imports(source: str) -> set[str]:
    """What an AST walk finds: the lowrank modules a source imports, and `module.name` for each imported name."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("lowrank")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lowrank"):
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_code_inputs_read_imports_as_an_ast_walk_would():
    for path in (ROOT / "lowrank").rglob("*.py"):
        assert set(plan.imported(path.read_text())) == ast_imports(path.read_text()), path
    tricky = ("def f():\n    from lowrank.plots import (style,  # a comment\n        curves as c,\n    )\n"
              "import lowrank.metrics\nfrom lowrank import grid, layout  # trailing\nimport numpy\n")
    assert set(plan.imported(tricky)) == ast_imports(tricky) == {
        "lowrank.plots", "lowrank.plots.style", "lowrank.plots.curves", "lowrank.metrics", "lowrank",
        "lowrank.grid", "lowrank.layout"}
