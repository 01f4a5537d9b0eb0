"""The paper's claims, one row each, with a verdict computed from the figure tables and the bound comparison.

The verdict rules are the RULES text below (printed under every scorecard); diverged runs are excluded
everywhere and counted.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from lowrank.aggregate import final_rows
from lowrank.bound import CONVENTIONS, decay_steps
from lowrank.grid import SYMBOLS, demo_prefix
from lowrank.logs import FINISHED
from lowrank.provenance import code_notes
from lowrank.shape import MIN_RUNS, MIN_S, panel_fits, shape_table

RHO_MIN = 0.5  # |Spearman ρ| of a "strong" monotone trend (Cohen's large effect); weaker is inconclusive
MIN_POINTS = 3  # fewest values per trend: with 2 every ρ is ±1 or 0, a sign rather than a trend
FIT_ACC = 0.99  # "fits the training set": the paper compares test accuracy among runs that interpolate
SPREAD_SUPPORTED = 0.5  # λ = 0 "barely matters": at most half the rank spread that B, μ cause with decay
HOLD_SUPPORTED, HOLD_REFUTED = 0.95, 0.5  # holds nearly everywhere / fails in most cases; between: inconclusive
NORM_GROWTH = 2.0  # the proof of Theorem 3.3 needs ‖W_{T−n}‖/‖W_T‖ ≤ 2
SHAPE_RULE = (f"Bound shape: per panel — model (architecture with its size options), dataset and plot ε — over its "
              f"finished runs with λ > 0, each once: Kendall τ-b between s = B/(2μ_T λ) (μ_T the learning rate of the "
              f"last evaluated epoch, λ per switches.bound_lambda) and the final average rank over the average "
              f"min(rows, cols); a panel counts with ≥ {MIN_RUNS} runs and ≥ {MIN_S} distinct s, one whose ranks are "
              f"all equal as τ = 0; median τ over the counted panels ≥ {RHO_MIN}: *supported*, ≤ −{RHO_MIN}: *not "
              f"supported*, otherwise (or with no counted panel) *inconclusive*.")
RULES = [
    "Each run counts once per claim, whichever figures draw it (at each plot ε); diverged runs are left out.",
    f"Trend claims: one Spearman ρ per group — for Prediction 4.1 (B, λ, μ) per fixed setting (every other "
    f"hyperparameter equal, seeds averaged, at least {MIN_POINTS} distinct values); for rank ↔ test accuracy per "
    f"figure panel over the runs with final train accuracy ≥ {FIT_ACC} (at least {MIN_POINTS} runs); "
    f"*supported* when the median ρ has the predicted sign and |median ρ| ≥ {RHO_MIN}, *not supported* when it "
    f"has the opposite sign with |median ρ| ≥ {RHO_MIN}, otherwise (or with no setting) *inconclusive*. "
    "A setting whose ranks are all equal counts as ρ = 0 (no trend).",
    f"λ = 0: like with like — for each λ > 0 and its λ = 0 twin at the same (B, μ) points (at least 2 shared, "
    f"other settings equal), the relative rank spread (max − min)/max over those points; median at λ = 0 over "
    f"median at λ > 0 ≤ {SPREAD_SUPPORTED}: *supported*, ≥ 1: *not supported*; no pairs: *inconclusive*.",
    f"Norm growth (what the proof of Theorem 3.3 uses, for T large): at each run's last epoch T, where the bound is "
    f"judged, ‖W_{{T−n}}‖_F/‖W_T‖_F ≤ {NORM_GROWTH:g} over the n = ln(2/ε)/(2μ_T λ) steps before T (μ_T the "
    f"learning rate of epoch T; rounded up to whole epochs; ε in comparison.eps). A check needs "
    f"n ≥ one epoch (the logged resolution) and T − n inside the log. Fraction of checks that hold ≥ "
    f"{HOLD_SUPPORTED}: *supported*, < {HOLD_REFUTED}: *not supported*; no check possible: *inconclusive*.",
    f"Bound holds: only informative (run, layer, ε) rows count — bound < min(rows, cols), the rank every matrix "
    f"obeys anyway — at each run's last evaluation; fraction with rank ≤ bound ≥ {HOLD_SUPPORTED}: *supported*, "
    f"< {HOLD_REFUTED}: *not supported*; no informative row: *inconclusive*.",
    SHAPE_RULE,
    "Fig 18: the measured average rank at each plotted ε at the last evaluation against the bound (initial μ, "
    "λ per switches.bound_lambda), over the ε where the bound is below the largest possible average rank; "
    "same thresholds; none: *inconclusive*. The other λ reading is reported as a note.",
]
SETTING = ["eps", "arch", "dataset", "batch_size", "lr", "weight_decay", "momentum", "epochs", "gamma"]
COLUMNS = ["claim", "verdict", "effect", "evidence", "rule"]


def grouped_spearman(df: pd.DataFrame, by: list[str], x: str, y: str) -> pd.Series:
    """Spearman ρ(x, y) within each group (average ranks for ties + Pearson); constant y gives ρ = 0."""
    g = df.groupby(by)
    rx, ry = g[x].rank(), g[y].rank()
    key = g.ngroup()
    dx, dy = rx - rx.groupby(key).transform("mean"), ry - ry.groupby(key).transform("mean")
    num = (dx * dy).groupby(key).sum()
    den = np.sqrt((dx ** 2).groupby(key).sum() * (dy ** 2).groupby(key).sum())
    return (num / den.where(den > 0)).fillna(0.0)


def _verdict_rho(median: float, sign: int) -> str:
    """The trend rule: predicted sign with |ρ| ≥ RHO_MIN → supported, opposite → not supported."""
    if np.isnan(median):
        return "inconclusive"
    if sign * median >= RHO_MIN:
        return "supported"
    return "not supported" if sign * median <= -RHO_MIN else "inconclusive"


def _verdict_fraction(frac: float) -> str:
    """The holding rule: ≥ HOLD_SUPPORTED → supported, < HOLD_REFUTED → not supported."""
    if np.isnan(frac):
        return "inconclusive"
    return "supported" if frac >= HOLD_SUPPORTED else "not supported" if frac < HOLD_REFUTED else "inconclusive"


def _evidence(df: pd.DataFrame) -> str:
    """'figA, figB (n runs)' for the runs behind a claim (``figures`` lists every figure drawing a run)."""
    if df.empty:
        return "no runs"
    n = df["run_id"].nunique()
    names = sorted({f for fs in df["figures"] for f in fs.split(", ")})
    return f"{', '.join(names)} ({n} run{'s' if n != 1 else ''})"


def once(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per `key` (the first in figure, panel order), with ``figures`` naming every figure that has it."""
    figures = df.groupby(key)["figure"].agg(lambda f: ", ".join(sorted(set(f)))).rename("figures")
    first = df.sort_values(["figure", "panel"], kind="stable").drop_duplicates(key)
    return first.drop(columns="figures", errors="ignore").merge(figures.reset_index(), on=key)


def _row(claim: str, verdict: str, effect: str, evidence: str, rule: str) -> dict:
    return dict(zip(COLUMNS, (claim, verdict, effect, evidence, rule)))


def _trend(finals: pd.DataFrame, key: str, sign: int, claim: str, positive_wd: bool) -> dict:
    """Prediction 4.1 for one hyperparameter: per-setting Spearman of final average rank vs `key`."""
    data = finals[finals["weight_decay"] > 0] if positive_wd else finals
    setting = [c for c in SETTING if c != key]
    points = data.groupby(setting + [key], as_index=False).agg(avg_rank=("avg_rank", "mean"))
    n_values = points.groupby(setting)[key].transform("nunique")
    points = points[n_values >= MIN_POINTS]
    used = data.merge(points[setting].drop_duplicates(), on=setting)
    rho = grouped_spearman(points, setting, key, "avg_rank") if len(points) else pd.Series(dtype=float)
    median = float(rho.median()) if len(rho) else float("nan")
    agree = int((np.sign(rho) == sign).sum())
    effect = (f"median ρ = {median:+.2f} over {len(rho)} settings ({agree} with the predicted sign)"
              if len(rho) else f"no setting with ≥ {MIN_POINTS} values of {SYMBOLS[key]}")
    direction = "+" if sign > 0 else "−"
    rule = (f"Spearman ρ(final avg rank, {SYMBOLS[key]}) per fixed setting{', λ > 0 only' if positive_wd else ''}; "
            f"supported if median ρ has sign {direction} and |ρ| ≥ {RHO_MIN}")
    return _row(claim, _verdict_rho(median, sign), effect, _evidence(used), rule)


def _lambda_zero(finals: pd.DataFrame) -> dict:
    """'With λ = 0, B and μ barely matter': rank spread over the same (B, μ) points with and without decay."""
    setting = [c for c in SETTING if c not in ("batch_size", "lr", "weight_decay")]
    grid_point = setting + ["batch_size", "lr"]
    points = finals.groupby(grid_point + ["weight_decay"], as_index=False).agg(avg_rank=("avg_rank", "mean"))
    zero, pos = points[points["weight_decay"] == 0], points[points["weight_decay"] > 0]
    pairs = pos.merge(zero.drop(columns="weight_decay"), on=grid_point, suffixes=("", "_0"))
    spread = pairs.groupby(setting + ["weight_decay"]).agg(
        n=("avg_rank", "size"), hi=("avg_rank", "max"), lo=("avg_rank", "min"), hi0=("avg_rank_0", "max"),
        lo0=("avg_rank_0", "min")).reset_index()
    spread = spread[spread["n"] >= 2]
    paired = finals.merge(pairs.loc[pairs.set_index(setting + ["weight_decay"]).index.isin(
        spread.set_index(setting + ["weight_decay"]).index), grid_point].drop_duplicates(), on=grid_point)
    lacking = sorted({f for fs in finals.loc[(finals["weight_decay"] == 0) & ~finals["run_id"].isin(
        paired["run_id"]), "figures"] for f in fs.split(", ")})
    lack = f"; λ = 0 runs without λ > 0 twins at ≥ 2 (B, μ) points in {', '.join(lacking)}" if lacking else ""
    rule = (f"median (max − min)/max of final avg rank over the same (B, μ) points at λ = 0 and at λ > 0 "
            f"(≥ 2 shared points); supported if the ratio ≤ {SPREAD_SUPPORTED}, not supported if ≥ 1")
    claim = "With λ = 0, batch size and learning rate barely change the rank"
    if spread.empty:
        return _row(claim, "inconclusive", "no λ = 0 and λ > 0 runs share ≥ 2 (B, μ) points" + lack,
                    "no runs", rule)
    s0 = float(((spread["hi0"] - spread["lo0"]) / spread["hi0"].where(spread["hi0"] > 0)).fillna(0.0).median())
    s1 = float(((spread["hi"] - spread["lo"]) / spread["hi"].where(spread["hi"] > 0)).fillna(0.0).median())
    ratio = s0 / s1 if s1 > 0 else float("nan")
    verdict = ("inconclusive" if np.isnan(ratio) else "supported" if ratio <= SPREAD_SUPPORTED
               else "not supported" if ratio >= 1 else "inconclusive")
    effect = (f"median spread {s0:.1%} at λ = 0 vs {s1:.1%} at λ > 0 over {len(spread)} paired settings "
              f"({int(spread['n'].sum())} (B, μ) points); ratio "
              + (f"{ratio:.2f}" if s1 > 0 else "undefined: no spread at λ > 0 either") + lack)
    return _row(claim, verdict, effect, _evidence(paired), rule)


def _norm_growth(config: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """What the proof of Theorem 3.3 uses: ‖W_{T−n}‖/‖W_T‖ ≤ 2 over the n = ln(2/ε)/(2μλ) steps before T.

    The proof needs it only "for sufficiently large T": it is checked at each run's last epoch, where the bound
    row judges the rank, not during early training, where a shrinking norm says nothing against the theorem.
    """
    claim = f"Theorem 3.3's assumption: ‖W_{{T−n}}‖/‖W_T‖ ≤ {NORM_GROWTH:g} over the last n = ln(2/ε)/(2μλ) steps"
    convention = config["switches"]["bound_lambda"]
    rule = (f"per run, layer and ε in comparison.eps at the run's last epoch T: ‖W_{{T−n}}‖_F/‖W_T‖_F ≤ "
            f"{NORM_GROWTH:g} with n = ln(2/ε)/(2μ_T λ) steps in whole epochs (λ per bound_lambda = {convention}); "
            f"needs n ≥ 1 epoch and T − n logged; supported if ≥ {HOLD_SUPPORTED:.0%} hold, not supported if < "
            f"{HOLD_REFUTED:.0%}")
    data = pd.concat(tables.values(), ignore_index=True) if tables else None
    if data is None or data[data["status"] == FINISHED].empty:
        return _row(claim, "inconclusive", "no finished run in a norm-ratio figure", "no runs", rule)
    data = once(data[(data["status"] == FINISHED) & (data["weight_decay"] > 0)], ["run_id", "layer", "epoch"])
    norms = data[["run_id", "layer", "epoch", "fro_norm"]]
    last = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("max")]
    checks = []
    for eps in (float(e) for e in config["comparison"]["eps"]):
        epochs = decay_steps(last["lr_epoch"], last["weight_decay"], eps, convention) / last["steps_per_epoch"]
        back = last.assign(n_epochs=epochs, back=last["epoch"] - np.ceil(epochs), eps=eps)
        checks.append(back.merge(norms.rename(columns={"epoch": "back", "fro_norm": "fro_back"}),
                                 on=["run_id", "layer", "back"], how="left"))
    checks = pd.concat(checks, ignore_index=True)
    short = checks["n_epochs"] < 1
    ok = checks[~short & checks["fro_back"].notna()]
    growth = ok["fro_back"] / ok["fro_norm"]
    frac = float((growth <= NORM_GROWTH).mean()) if len(ok) else float("nan")
    reach = (f"n < one epoch (the logged resolution) in {int(short.sum())} and T − n before the log in "
             f"{int((~short & checks['fro_back'].isna()).sum())} of {len(checks)} (run, layer, ε) checks")
    if ok.empty:
        return _row(claim, "inconclusive", f"no check possible: {reach}", _evidence(data), rule)
    effect = (f"{frac:.1%} of {len(ok)} checks hold ({ok['run_id'].nunique()} runs); max growth "
              f"{growth.max():.3g}, median {growth.median():.3g}; {reach}")
    return _row(claim, _verdict_fraction(frac), effect, _evidence(ok), rule)


def _bound_holds(config: dict, comparison: pd.DataFrame) -> dict:
    """Theorem 3.3's bound against the measured rank at each run's last evaluation, where the bound is informative."""
    done = comparison[comparison["status"] == FINISHED].astype({"bound": float})
    finite = done[np.isfinite(done["bound"])]
    final = finite[finite["epoch"] == finite.groupby("run_id")["epoch"].transform("max")]
    informative = final[final["informative"].astype(bool)]
    convention = config["switches"]["bound_lambda"]
    rule = (f"over (run, layer, ε) rows at the last evaluation whose bound m·B·ln(2/ε)/(2μ_t λ) < min(rows, cols) "
            f"(λ per bound_lambda = {convention}; μ_t the current learning rate): fraction with rank ≤ bound; "
            f"supported if ≥ {HOLD_SUPPORTED:.0%}, not supported if < {HOLD_REFUTED:.0%}")
    claim = "Theorem 3.3: rank_ε(W/‖W‖) ≤ m·B·ln(2/ε)/(2μλ)"
    if final.empty:
        return _row(claim, "inconclusive", "no run with a finite bound", "no runs", rule)
    fraction = f"informative in {len(informative)} of {len(final)} rows ({len(informative) / len(final):.1%})"
    share = f"{fraction}; median ε* {final['eps_star'].median():.3g} vs ε ≤ {final['eps'].max():g}"
    evidence = f"bound_vs_rank ({final['run_id'].nunique()} runs, {len(final)} rows, {fraction})"
    if informative.empty:
        return _row(claim, "inconclusive", f"the bound is vacuous for every run at these ε ({share})", evidence, rule)
    frac = float(informative["holds"].mean())
    effect = (f"{frac:.1%} of informative rows hold; median rank/bound {informative['tightness'].median():.2g}, "
              f"max {informative['tightness'].max():.2g}; {share}")
    return _row(claim, _verdict_fraction(frac), effect, evidence, rule)


def _bound_shape(table: pd.DataFrame) -> dict:
    """Theorem 3.3's shape: the final rank grows with s = B/(2μ_T λ) in each model and dataset (shape.panel_fits)."""
    fits = panel_fits(table)
    counted, left = fits[fits["counted"]], fits[~fits["counted"]]
    median = float(counted["tau"].median()) if len(counted) else float("nan")
    listing = "; ".join(f"{f.panel_label}: τ = {f.tau:+.2f}, slope {f.slope:.2f} [{f.slope_lo:.2f}, {f.slope_hi:.2f}]"
                        f" (n = {f.runs})" for f in counted.itertuples(index=False))
    effect = (f"median τ = {median:+.2f} over {len(counted)} panels ({int((counted['tau'] > 0).sum())} positive): "
              f"{listing}" if len(counted) else f"no panel with ≥ {MIN_RUNS} finished runs at ≥ {MIN_S} distinct s")
    if len(left):
        effect += "; not counted: " + ", ".join(f"{f.panel_label} (n = {f.runs}, {f.distinct_s} distinct s)"
                                                for f in left.itertuples(index=False))
    used = table[(table["status"] == FINISHED) & table["panel"].isin(counted["panel"])]
    return _row("Theorem 3.3's shape: the rank grows with B/(μλ) across settings", _verdict_rho(median, +1), effect,
                _evidence(used), SHAPE_RULE)


def _fig18(config: dict, name: str, table: pd.DataFrame) -> dict:
    """Fig 18: the measured average rank at each plotted ε against the bound, where the bound is informative."""
    switch = config["switches"]["bound_lambda"]
    other = next(c for c in CONVENTIONS if c != switch)
    done = table[table["status"] == FINISHED]
    final = done[done["epoch"] == done.groupby("run_id")["epoch"].transform("max")]
    rule = (f"at the last evaluation, per plotted ε with bound (initial μ, λ per bound_lambda = {switch}) below the "
            f"largest possible average rank: fraction with avg rank ≤ bound; supported if ≥ {HOLD_SUPPORTED:.0%}, "
            f"not supported if < {HOLD_REFUTED:.0%}")
    claim = f"{name}: the measured average rank stays under Theorem 3.3's bound"
    if final.empty:
        return _row(claim, "inconclusive", "no finished run", _evidence(table.assign(figures=name)), rule)
    per_eps = final.groupby("eps").agg(avg=("avg_rank", "mean"), bound=(f"bound_{switch}", "first"),
                                       alt=(f"bound_{other}", "first"), informative=(f"informative_{switch}", "all"))
    trivial = float(final["trivial"].iloc[0])
    informative = final[final[f"informative_{switch}"].astype(bool)]
    listing = "; ".join(f"ε = {e:g}: {r.avg:.0f} vs {r.bound:.0f} ({switch}) | {r.alt:.0f} ({other})"
                        for e, r in per_eps.iterrows())
    star = ", ".join(f"{final[f'eps_star_{c}'].iloc[0]:.2f} ({c})" for c in (switch, other))
    star = f"ε* = {star}"
    evidence = (f"{_evidence(final.assign(figures=name)).rstrip(')')}; informative at "
                f"{int(per_eps['informative'].sum())} of {len(per_eps)} plotted ε)")
    if informative.empty:
        return _row(claim, "inconclusive", f"the bound is ≥ the largest possible average rank {trivial:.0f} at "
                                           f"every plotted ε ({star}); {listing}", evidence, rule)
    frac = float((informative["avg_rank"] <= informative[f"bound_{switch}"]).mean())
    effect = f"{frac:.0%} of informative (run, ε) hold; {star}; {listing}"
    return _row(claim, _verdict_fraction(frac), effect, evidence, rule)


def _fig18_note(config: dict, name: str, table: pd.DataFrame) -> str:
    """The paper's factor-2 reading of λ in Fig 18, stated as a note on the paper, not as an empirical verdict."""
    row = table.iloc[0]
    stars = {c: row[f"eps_star_{c}"] for c in CONVENTIONS}
    return (f"{name}: the paper prints Fig 18's bound with λ = wd = {row['weight_decay']:g} (as_printed); torch's "
            f"SGD makes λ = wd/2 (torch), which doubles the bound. It falls below the largest possible average rank "
            f"{row['trivial']:.0f} for ε > {stars['torch']:.2f} (torch) vs ε > {stars['as_printed']:.2f} "
            f"(as_printed). This is arithmetic on the paper's numbers, not a test of data.")


def _generalization(finals: pd.DataFrame) -> dict:
    """Lower rank ↔ better test accuracy among runs that fit the training set, within each figure panel."""
    fit = finals[finals["train_acc"] >= FIT_ACC]
    size = fit.groupby(["figure", "panel"])["run_id"].transform("size")
    used = fit[size >= MIN_POINTS]
    rho = grouped_spearman(used, ["figure", "panel"], "avg_rank", "test_acc") if len(used) else pd.Series(
        dtype=float)
    median = float(rho.median()) if len(rho) else float("nan")
    effect = (f"median ρ = {median:+.2f} over {len(rho)} panels ({int((rho < 0).sum())} negative); "
              f"{fit['run_id'].nunique()} of {finals['run_id'].nunique()} runs reach train acc ≥ {FIT_ACC}"
              if len(rho) else f"no panel with ≥ {MIN_POINTS} runs at train acc ≥ {FIT_ACC}")
    rule = (f"Spearman ρ(final avg rank, test acc) per figure panel over runs with final train acc ≥ {FIT_ACC} "
            f"(≥ {MIN_POINTS} runs; a run drawn twice stays in its first panel); supported if median ρ ≤ −{RHO_MIN}")
    return _row("Lower rank goes with better test accuracy among runs that fit the training set",
                _verdict_rho(median, -1), effect, _evidence(used), rule)


def claims(config: dict, tables: dict[str, pd.DataFrame], comparison: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """The claim rows (claim, verdict, effect, evidence, rule) and notes on what was excluded."""
    kinds = {name: config["figures"][name]["kind"] for name in tables}
    rank_tables = [final_rows(t) for n, t in tables.items() if kinds[n] in ("curves", "heatmap") and len(t)]
    finals = (pd.concat(rank_tables, ignore_index=True) if rank_tables
              else pd.DataFrame(columns=SETTING + ["figure", "panel", "run_id", "avg_rank", "train_acc", "test_acc",
                                                   "status"]))
    status = pd.concat([pd.DataFrame(columns=["run_id", "status"])]
                       + [t[["run_id", "status"]] for t in [*tables.values(), comparison] if len(t)])
    diverged = sorted(set(status.loc[status["status"] != FINISHED, "run_id"]))
    finals = once(finals[finals["status"] == FINISHED], ["run_id", "eps"])
    bounds = {n: t for n, t in tables.items() if kinds[n] == "bound" and len(t)}
    rows = [
        _trend(finals, "batch_size", +1, "Prediction 4.1: rank falls as the batch size B falls", True),
        _trend(finals, "weight_decay", -1, "Prediction 4.1: rank falls as weight decay λ rises", False),
        _trend(finals, "lr", -1, "Prediction 4.1: rank falls as the learning rate μ rises", True),
        _lambda_zero(finals),
        _generalization(finals),
        _norm_growth(config, {n: t for n, t in tables.items() if kinds[n] == "norm_ratio" and len(t)}),
        _bound_holds(config, comparison),
        _bound_shape(shape_table(config, tables, comparison)),
        *[_fig18(config, n, t) for n, t in bounds.items()],
    ]
    notes = [f"Ranks are taken at each figure panel's plot ε (switches.plot_eps = {config['switches']['plot_eps']}) "
             "at the run's last evaluation; seeds are averaged per grid point.",
             f"Excluded {len(diverged)} diverged run(s) from every claim"
             + (f": {', '.join(diverged[:10])}{' …' if len(diverged) > 10 else ''}." if diverged else "."),
             "B and μ trends use λ > 0 settings only (the theory needs weight decay); runs with weight_decay 0 have "
             "no bound (infinite) and are left out of the bound claims.",
             *[_fig18_note(config, n, t) for n, t in bounds.items()], *code_notes(tables)]
    return pd.DataFrame(rows, columns=COLUMNS), notes


def _heading(config: dict) -> str:
    return demo_prefix(config) + "Scorecard: the paper's claims vs this run"


def scorecard(config: dict, tables: dict[str, pd.DataFrame], comparison: pd.DataFrame) -> str:
    """The scorecard as Markdown: one row per claim with verdict, effect size, evidence and rule."""
    rows, notes = claims(config, tables, comparison)
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = [f"# {_heading(config)}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows.itertuples(index=False)]
    return "\n".join(lines + ["", *[f"* {n}" for n in notes], "", "Verdict rules:", "",
                             *[f"* {r}" for r in RULES], ""])


def scorecard_html(config: dict, tables: dict[str, pd.DataFrame], comparison: pd.DataFrame) -> str:
    """The same scorecard as a standalone HTML page."""
    rows, notes = claims(config, tables, comparison)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    rules = "".join(f"<li>{html.escape(r)}</li>" for r in RULES)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(_heading(config))}</title>"
            "<style>body{font-family:sans-serif;max-width:75em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
            f"<h1>{html.escape(_heading(config))}</h1>{rows.to_html(index=False, escape=True)}<ul>{items}</ul>"
            f"<h2>Verdict rules</h2><ul>{rules}</ul></body></html>\n")
