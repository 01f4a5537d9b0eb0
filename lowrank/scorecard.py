"""The paper's claims, one row each, with a verdict computed from the figure tables and the bound comparison.

The verdict rules are the RULES text below (printed under every scorecard); diverged runs are excluded
everywhere and counted.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from lowrank.aggregate import FINISHED, final_rows
from lowrank.bound import CONVENTIONS, paper_lambda, rank_bound
from lowrank.grid import SYMBOLS
from lowrank.provenance import code_notes

RHO_MIN = 0.5
MIN_POINTS = 3
FIT_ACC = 0.99
SPREAD_SUPPORTED = 0.5
NORM_SUPPORTED, NORM_REFUTED = 0.01, 0.05
HOLD_SUPPORTED, HOLD_REFUTED = 0.95, 0.5
LAST_FRACTION = 0.1
RULES = [
    f"Trend claims: one Spearman ρ per group — for Prediction 4.1 (B, λ, μ) per fixed setting (every other "
    f"hyperparameter equal, seeds averaged, at least {MIN_POINTS} distinct values); for rank ↔ test accuracy per "
    f"figure panel over the runs with final train accuracy ≥ {FIT_ACC} (at least {MIN_POINTS} runs); "
    f"*supported* when the median ρ has the predicted sign and |median ρ| ≥ {RHO_MIN}, *not supported* when it "
    f"has the opposite sign with |median ρ| ≥ {RHO_MIN}, otherwise (or with no setting) *inconclusive*. "
    "A setting whose ranks are all equal counts as ρ = 0 (no trend).",
    f"λ = 0: median relative rank spread (max − min)/max across B and μ at λ = 0, divided by the same at λ > 0, "
    f"within figures that have both; *supported* when the ratio ≤ {SPREAD_SUPPORTED}, *not supported* when ≥ 1.",
    f"Norm ratios → 1: median |ratio − 1| over the last {LAST_FRACTION:.0%} of each run's epochs; *supported* "
    f"when ≤ {NORM_SUPPORTED}, *not supported* when > {NORM_REFUTED}.",
    f"Bound holds: fraction of (run, layer, ε) rows with a finite bound that hold at each run's last "
    f"evaluation; *supported* when ≥ {HOLD_SUPPORTED}, *not supported* when < {HOLD_REFUTED}.",
    "Fig 18's bound below the width for every ε ≥ min(bound_eps) (the bound falls as ε grows): *supported* "
    "when it is below at min(bound_eps) under switches.bound_lambda, else *not supported*.",
]
SETTING = ["figure", "eps", "arch", "dataset", "batch_size", "lr", "weight_decay", "momentum", "epochs", "gamma"]
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


def _evidence(df: pd.DataFrame) -> str:
    """'figA, figB (n runs)' for the runs behind a claim."""
    if df.empty:
        return "no runs"
    n = df["run_id"].nunique()
    return f"{', '.join(sorted(df['figure'].unique()))} ({n} run{'s' if n != 1 else ''})"


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
    """'With λ = 0, B and μ barely matter': relative rank spread across B, μ at λ = 0 vs at λ > 0."""
    setting = [c for c in SETTING if c not in ("batch_size", "lr")]
    points = finals.groupby(setting + ["batch_size", "lr"], as_index=False).agg(avg_rank=("avg_rank", "mean"))
    spread = points.groupby(setting).agg(hi=("avg_rank", "max"), lo=("avg_rank", "min"),
                                         n=("avg_rank", "size")).reset_index()
    spread = spread[spread["n"] >= 2]
    spread["spread"] = ((spread["hi"] - spread["lo"]) / spread["hi"].where(spread["hi"] > 0)).fillna(0.0)
    spread["zero"] = spread["weight_decay"] == 0
    both = spread.groupby("figure")["zero"].transform(lambda z: z.any() and not z.all())
    spread = spread[both]
    rule = (f"median (max − min)/max of final avg rank across B, μ: λ = 0 over λ > 0, in figures with both; "
            f"supported if ratio ≤ {SPREAD_SUPPORTED}, not supported if ≥ 1")
    claim = "With λ = 0, batch size and learning rate barely change the rank"
    if spread.empty:
        return _row(claim, "inconclusive", "no figure has λ = 0 and λ > 0 settings varying B or μ",
                    "no runs", rule)
    s0, s1 = spread.loc[spread["zero"], "spread"].median(), spread.loc[~spread["zero"], "spread"].median()
    ratio = s0 / s1 if s1 > 0 else float("nan")
    verdict = ("inconclusive" if np.isnan(ratio) else "supported" if ratio <= SPREAD_SUPPORTED
               else "not supported" if ratio >= 1 else "inconclusive")
    effect = (f"median spread {s0:.1%} at λ = 0 ({int(spread['zero'].sum())} settings) vs {s1:.1%} at λ > 0 "
              f"({int((~spread['zero']).sum())}); ratio {ratio:.2f}")
    return _row(claim, verdict, effect, _evidence(finals[finals["figure"].isin(spread["figure"])]), rule)


def _norm_ratio(tables: dict[str, pd.DataFrame]) -> dict:
    """Theorem 3.3's assumption ‖W_{T−1}‖/‖W_T‖ → 1: |ratio − 1| over the last 10% of epochs."""
    data = pd.concat(tables.values(), ignore_index=True) if tables else pd.DataFrame()
    rule = (f"median |‖W_t‖/‖W_t−1‖ − 1| over every layer in the last {LAST_FRACTION:.0%} of epochs; "
            f"supported if ≤ {NORM_SUPPORTED}, not supported if > {NORM_REFUTED}")
    claim = "Norm ratios converge to 1 (assumption of Theorem 3.3)"
    if data.empty or data[data["status"] == FINISHED].empty:
        return _row(claim, "inconclusive", "no norm-ratio figure", "no runs", rule)
    data = data[data["status"] == FINISHED]
    last = data["epoch"] > (1 - LAST_FRACTION) * data.groupby("run_id")["epoch"].transform("max")
    dev = (data["ratio"] - 1).abs()
    late, early = float(dev[last].median()), float(dev[data["epoch"] == 1].median())
    verdict = "supported" if late <= NORM_SUPPORTED else "not supported" if late > NORM_REFUTED else "inconclusive"
    effect = f"median |ratio − 1| = {late:.2e} at the end (epoch 1: {early:.2e}); max {dev[last].max():.2e}"
    return _row(claim, verdict, effect, _evidence(data), rule)


def _bound_holds(comparison: pd.DataFrame) -> dict:
    """Theorem 3.3's bound against the measured rank at each run's last evaluation (finite bounds only)."""
    done = comparison[comparison["status"] == FINISHED].astype({"bound": float})
    finite = done[np.isfinite(done["bound"])]
    final = finite[finite["epoch"] == finite.groupby("run_id")["epoch"].transform("max")]
    convention = comparison["convention"].iloc[0] if len(comparison) else "torch"
    rule = (f"fraction of (run, layer, ε) rows with rank ≤ m·B·ln(2/ε)/(2μ_t λ) at the last evaluation "
            f"(λ per bound_lambda = {convention}; μ_t the current learning rate); supported if ≥ {HOLD_SUPPORTED}, "
            f"not supported if < {HOLD_REFUTED}")
    claim = "Theorem 3.3: rank_ε(W/‖W‖) ≤ m·B·ln(2/ε)/(2μλ)"
    if final.empty:
        return _row(claim, "inconclusive", "no run with a finite bound", "no runs", rule)
    frac = float(final["holds"].mean())
    verdict = ("supported" if frac >= HOLD_SUPPORTED else "not supported" if frac < HOLD_REFUTED
               else "inconclusive")
    effect = (f"{frac:.1%} hold at the end ({finite['holds'].mean():.1%} over all epochs); median rank/bound "
              f"{final['tightness'].median():.2g}, max {final['tightness'].max():.2g}; "
              f"{done.loc[np.isinf(done['bound']), 'run_id'].nunique()} runs with wd = 0 have no bound")
    evidence = f"bound_vs_rank ({final['run_id'].nunique()} runs, {len(final)} rows)"
    return _row(claim, verdict, effect, evidence, rule)


def _bound_below_width(config: dict, name: str, table: pd.DataFrame) -> dict:
    """Fig 18's claim: the bound is below the layer width for every ε ≥ min(bound_eps) (it falls with ε)."""
    eps = min(float(e) for e in config["figures"][name]["bound_eps"])
    switch = config["switches"]["bound_lambda"]
    row = table.iloc[0]
    bounds = {c: rank_bound(int(row["m"]), int(row["batch_size"]), row["lr"], row["weight_decay"], eps, c)
              for c in CONVENTIONS}
    width = float(row["width"])
    verdict = "supported" if bounds[switch] < width else "not supported"
    at = table[np.isclose(table["eps"], table["plot_eps"])]
    train = at.loc[at["epoch"] == at["epoch"].max(), "train_acc"].mean()
    effect = ("; ".join(f"λ = {paper_lambda(row['weight_decay'], c):g} ({c}): {b:.0f}" for c, b in bounds.items())
              + f" vs width {width:.0f} at ε = {eps:g}, initial μ; final train acc {train:.2f}")
    rule = f"bound at ε = {eps:g} with λ per bound_lambda = {switch} < width; supported if so"
    return _row(f"{name}: bound below the width ({width:.0f}) for ε ≥ {eps:g}", verdict, effect,
                _evidence(table), rule)


def _generalization(finals: pd.DataFrame) -> dict:
    """Lower rank ↔ better test accuracy among runs that fit the training set, within each figure panel."""
    fit = finals[finals["train_acc"] >= FIT_ACC]
    groups = fit.groupby(["figure", "panel"])["run_id"].agg(lambda r: tuple(sorted(r))).reset_index()
    groups = groups[groups["run_id"].map(len) >= MIN_POINTS].drop_duplicates("run_id")
    used = fit.merge(groups[["figure", "panel"]], on=["figure", "panel"])
    rho = grouped_spearman(used, ["figure", "panel"], "avg_rank", "test_acc") if len(used) else pd.Series(
        dtype=float)
    median = float(rho.median()) if len(rho) else float("nan")
    effect = (f"median ρ = {median:+.2f} over {len(rho)} panels ({int((rho < 0).sum())} negative); "
              f"{fit['run_id'].nunique()} of {finals['run_id'].nunique()} runs reach train acc ≥ {FIT_ACC}"
              if len(rho) else f"no panel with ≥ {MIN_POINTS} runs at train acc ≥ {FIT_ACC}")
    rule = (f"Spearman ρ(final avg rank, test acc) per figure panel over runs with final train acc ≥ {FIT_ACC} "
            f"(≥ {MIN_POINTS} runs); supported if median ρ ≤ −{RHO_MIN}")
    return _row("Lower rank goes with better test accuracy among runs that fit the training set",
                _verdict_rho(median, -1), effect, _evidence(used), rule)


def claims(config: dict, tables: dict[str, pd.DataFrame], comparison: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """The claim rows (claim, verdict, effect, evidence, rule) and notes on what was excluded."""
    kinds = {name: config["figures"][name]["kind"] for name in tables}
    rank_tables = [final_rows(t) for n, t in tables.items() if kinds[n] in ("curves", "heatmap") and len(t)]
    finals = (pd.concat(rank_tables, ignore_index=True) if rank_tables
              else pd.DataFrame(columns=SETTING + ["panel", "run_id", "avg_rank", "train_acc", "test_acc", "status"]))
    status = pd.concat([pd.DataFrame(columns=["run_id", "status"])]
                       + [t[["run_id", "status"]] for t in [*tables.values(), comparison] if len(t)])
    diverged = sorted(set(status.loc[status["status"] != FINISHED, "run_id"]))
    finals = finals[finals["status"] == FINISHED].drop_duplicates(["figure", "run_id"])
    rows = [
        _trend(finals, "batch_size", +1, "Prediction 4.1: rank falls as the batch size B falls", True),
        _trend(finals, "weight_decay", -1, "Prediction 4.1: rank falls as weight decay λ rises", False),
        _trend(finals, "lr", -1, "Prediction 4.1: rank falls as the learning rate μ rises", True),
        _lambda_zero(finals),
        _generalization(finals),
        _norm_ratio({n: t for n, t in tables.items() if kinds[n] == "norm_ratio" and len(t)}),
        _bound_holds(comparison),
        *[_bound_below_width(config, n, t) for n, t in tables.items() if kinds[n] == "bound" and len(t)],
    ]
    notes = [f"Ranks are taken at each figure panel's plot ε (switches.plot_eps = {config['switches']['plot_eps']}) "
             "at the run's last evaluation; seeds are averaged per grid point.",
             f"Excluded {len(diverged)} diverged run(s) from every claim"
             + (f": {', '.join(diverged[:10])}{' …' if len(diverged) > 10 else ''}." if diverged else "."),
             "B and μ trends use λ > 0 settings only (the theory needs weight decay); runs with weight_decay 0 have "
             "no bound (infinite) and are left out of the bound claim.", *code_notes(tables)]
    return pd.DataFrame(rows, columns=COLUMNS), notes


def _heading(config: dict) -> str:
    return ("DEMO (synthetic data): " if config.get("demo") else "") + "Scorecard: the paper's claims vs this run"


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
