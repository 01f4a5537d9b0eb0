"""The paper's claims, one row each, with a verdict computed from the figure tables and the bound comparison.

Each row's verdict and its rule's text come from one ``Rule`` (the thresholds and how they compare); RULES,
printed under every scorecard, says what holds for every row. Diverged runs are excluded everywhere and
counted.
"""

from __future__ import annotations

import html
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lowrank.aggregate import final_rows, last_evaluation
from lowrank.bound import CONVENTIONS, decay_steps, informative_eps, rank_bound
from lowrank.grid import SYMBOLS, demo_prefix
from lowrank.logs import FINISHED
from lowrank.provenance import code_notes
from lowrank.shape import MIN_RUNS, MIN_S, panel_fits, shape_table

RHO_MIN = 0.5  # |median Spearman ρ| of a "strong" monotone trend (Cohen's large effect); weaker is inconclusive
MIN_POINTS = 3  # fewest values per trend: with 2 every ρ is ±1 or 0, a sign rather than a trend
FIT_ACC = 0.99  # "fits the training set": the paper compares test accuracy among runs that interpolate
NORM_GROWTH = 2.0  # the proof of Theorem 3.3 needs ‖W_{T−n}‖/‖W_T‖ ≤ 2
PAPER_EPS = 0.3  # Fig 18's bound "is strictly smaller than the width of 10000 for any ε ≥ 0.3" [paper App. B.2]
RULES = [
    "Each run counts once per claim, whichever figures draw it (at each plot ε); diverged runs are left out.",
    f"Trends are Spearman ρ per group (a group of equal values has ρ = 0: no trend); a trend counts when "
    f"|median ρ| ≥ {RHO_MIN:g}, in the predicted direction or against it.",
    "Each row's rule states its thresholds; between them, or with nothing to judge (no setting, pair, check or "
    "informative row), the verdict is *inconclusive*.",
]
COMPARISONS = {"≥": operator.ge, ">": operator.gt, "≤": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Rule:
    """A claim's verdict from one number: supported past one threshold, not supported past the other, else (NaN
    included) inconclusive; it states itself in the words its verdict follows."""

    quantity: str  # the number, as the rule's sentence names it
    supported: tuple[str, float]  # (comparison in COMPARISONS, threshold)
    refuted: tuple[str, float]
    fmt: str = "g"  # how the sentence writes the thresholds

    def verdict(self, value: float) -> str:
        """'supported', 'not supported' or 'inconclusive'."""
        for verdict, (op, threshold) in (("supported", self.supported), ("not supported", self.refuted)):
            if COMPARISONS[op](value, threshold):
                return verdict
        return "inconclusive"

    def __str__(self) -> str:
        said = [f"{self.quantity} {op} {format(t, self.fmt).replace('-', '−')}"
                for op, t in (self.supported, self.refuted)]
        return f"supported if {said[0]}, not supported if {said[1]}"


def trend(sign: int) -> Rule:
    """The rule of a predicted trend of sign ±1: a strong median ρ of that sign supports it, of the other refutes it."""
    with_sign, against = ("≥", "≤") if sign > 0 else ("≤", "≥")
    return Rule("the median ρ", (with_sign, sign * RHO_MIN), (against, -sign * RHO_MIN))


SHAPE = Rule("the median τ", ("≥", RHO_MIN), ("≤", -RHO_MIN))  # Theorem 3.3's shape: as strong as a trend
HOLDS = Rule("the fraction that holds", ("≥", 0.95), ("<", 0.5), ".0%")  # nearly everywhere / fails in most cases
# λ = 0 "barely matters": at most half the rank spread that B and μ cause with decay; as much or more refutes it
SPREAD = Rule("the ratio", ("≤", 0.5), ("≥", 1.0))
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


def _row(claim: str, rule: Rule, value: float, measure: str, effect: str, evidence: str) -> dict:
    """A claim row whose verdict (`rule` applied to `value`) and rule text (`measure`, then `rule`) agree."""
    return dict(zip(COLUMNS, (claim, rule.verdict(value), effect, evidence, f"{measure}; {rule}")))


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
    measure = (f"Spearman ρ(final avg rank, {SYMBOLS[key]}) per fixed setting (every other hyperparameter equal"
               f"{', λ > 0 only' if positive_wd else ''}; seeds averaged; ≥ {MIN_POINTS} values of {SYMBOLS[key]})")
    return _row(claim, trend(sign), median, measure, effect, _evidence(used))


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
    measure = ("relative spread (max − min)/max of final avg rank over the same (B, μ) points at λ = 0 and at a "
               "λ > 0 twin (≥ 2 shared points, other settings equal); the ratio: median spread at λ = 0 over that at "
               "λ > 0")
    claim = "With λ = 0, batch size and learning rate barely change the rank"
    if spread.empty:
        return _row(claim, SPREAD, float("nan"), measure, "no λ = 0 and λ > 0 runs share ≥ 2 (B, μ) points" + lack,
                    "no runs")
    s0 = float(((spread["hi0"] - spread["lo0"]) / spread["hi0"].where(spread["hi0"] > 0)).fillna(0.0).median())
    s1 = float(((spread["hi"] - spread["lo"]) / spread["hi"].where(spread["hi"] > 0)).fillna(0.0).median())
    ratio = s0 / s1 if s1 > 0 else float("nan")
    effect = (f"median spread {s0:.1%} at λ = 0 vs {s1:.1%} at λ > 0 over {len(spread)} paired settings "
              f"({int(spread['n'].sum())} (B, μ) points); ratio "
              + (f"{ratio:.2f}" if s1 > 0 else "undefined: no spread at λ > 0 either") + lack)
    return _row(claim, SPREAD, ratio, measure, effect, _evidence(paired))


def _norm_growth(config: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """What the proof of Theorem 3.3 uses: ‖W_{T−n}‖/‖W_T‖ ≤ 2 over the n = ln(2/ε)/(2μλ) steps before T.

    The proof needs it only "for sufficiently large T": it is checked at each run's last epoch, where the bound
    row judges the rank, not during early training, where a shrinking norm says nothing against the theorem.
    """
    claim = f"Theorem 3.3's assumption: ‖W_{{T−n}}‖/‖W_T‖ ≤ {NORM_GROWTH:g} over the last n = ln(2/ε)/(2μλ) steps"
    convention = config["switches"]["bound_lambda"]
    measure = (f"checks per run, layer and ε in comparison.eps at the run's last epoch T: ‖W_{{T−n}}‖_F/‖W_T‖_F ≤ "
               f"{NORM_GROWTH:g} with n = ln(2/ε)/(2μ_T λ) steps (μ_T: epoch T's learning rate; λ per bound_lambda = "
               f"{convention}) rounded up to whole epochs; a check needs n ≥ 1 epoch (the logged resolution) and "
               "T − n logged")
    data = pd.concat(tables.values(), ignore_index=True) if tables else None
    if data is None or data[data["status"] == FINISHED].empty:
        return _row(claim, HOLDS, float("nan"), measure, "no finished run in a norm-ratio figure", "no runs")
    data = once(data[(data["status"] == FINISHED) & (data["weight_decay"] > 0)], ["run_id", "layer", "epoch"])
    norms = data[["run_id", "layer", "epoch", "fro_norm"]]
    last = last_evaluation(data)
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
        return _row(claim, HOLDS, float("nan"), measure, f"no check possible: {reach}", _evidence(data))
    effect = (f"{frac:.1%} of {len(ok)} checks hold ({ok['run_id'].nunique()} runs); max growth "
              f"{growth.max():.3g}, median {growth.median():.3g}; {reach}")
    return _row(claim, HOLDS, frac, measure, effect, _evidence(ok))


def _bound_holds(config: dict, comparison: pd.DataFrame) -> dict:
    """Theorem 3.3's bound against the measured rank at each run's last evaluation, where the bound is informative."""
    done = comparison[comparison["status"] == FINISHED].astype({"bound": float})
    finite = done[np.isfinite(done["bound"])]
    final = last_evaluation(finite)
    informative = final[final["informative"].astype(bool)]
    convention = config["switches"]["bound_lambda"]
    measure = (f"(run, layer, ε) rows at each run's last evaluation whose bound m·B·ln(2/ε)/(2μ_t λ) < "
               f"min(rows, cols), the rank every matrix obeys anyway (λ per bound_lambda = {convention}; μ_t the "
               "current learning rate): rank ≤ bound")
    claim = "Theorem 3.3: rank_ε(W/‖W‖) ≤ m·B·ln(2/ε)/(2μλ)"
    if final.empty:
        return _row(claim, HOLDS, float("nan"), measure, "no run with a finite bound", "no runs")
    fraction = f"informative in {len(informative)} of {len(final)} rows ({len(informative) / len(final):.1%})"
    share = f"{fraction}; median ε* {final['eps_star'].median():.3g} vs ε ≤ {final['eps'].max():g}"
    evidence = f"bound_vs_rank ({final['run_id'].nunique()} runs, {len(final)} rows, {fraction})"
    if informative.empty:
        return _row(claim, HOLDS, float("nan"), measure, f"the bound is vacuous for every run at these ε ({share})",
                    evidence)
    frac = float(informative["holds"].mean())
    effect = (f"{frac:.1%} of informative rows hold; median rank/bound {informative['tightness'].median():.2g}, "
              f"max {informative['tightness'].max():.2g}; {share}")
    return _row(claim, HOLDS, frac, measure, effect, evidence)


def _yardsticks(row: pd.Series) -> str:
    """Per λ reading, the ε above which Fig 18's bound is below the largest possible average rank and the width."""
    width = {c: informative_eps(int(row["m"]), int(row["batch_size"]), row["lr"], row["weight_decay"],
                                float(row["width"]), c) for c in CONVENTIONS}
    star = lambda eps: " | ".join(f"{eps[c]:.3g} ({c})" for c in CONVENTIONS)  # noqa: E731
    return (f"bound < the largest possible average rank {row['trivial']:.0f} (decides) for ε > "
            f"{star({c: row[f'eps_star_{c}'] for c in CONVENTIONS})}; bound < the width {row['width']:.0f} (the "
            f"paper's yardstick, reported) for ε > {star(width)}")


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
    measure = (f"Kendall τ-b per panel — model (architecture with its size options), dataset and plot ε — between "
               f"s = B/(2μ_T λ) (μ_T the learning rate of the last evaluated epoch, λ per switches.bound_lambda) and "
               f"the final average rank over the average min(rows, cols), over its finished runs with λ > 0, each "
               f"once; a panel counts with ≥ {MIN_RUNS} runs and ≥ {MIN_S} distinct s (equal ranks: τ = 0)")
    return _row("Theorem 3.3's shape: the rank grows with B/(μλ) across settings", SHAPE, median, measure, effect,
                _evidence(used))


def _fig18(config: dict, name: str, table: pd.DataFrame) -> dict:
    """Fig 18: the measured average rank at each plotted ε against the bound, where the bound is informative."""
    switch = config["switches"]["bound_lambda"]
    other = next(c for c in CONVENTIONS if c != switch)
    done = table[table["status"] == FINISHED]
    final = last_evaluation(done)
    measure = (f"(run, ε) at the last evaluation, per plotted ε whose bound (initial μ, λ per bound_lambda = "
               f"{switch}) is below the largest possible average rank, the yardstick that decides (no average rank "
               f"exceeds it, so a bound above it cannot fail; the paper's yardstick, the width, is reported): avg "
               f"rank ≤ bound (the other λ reading: a note)")
    claim = f"{name}: the measured average rank stays under Theorem 3.3's bound"
    if final.empty:
        return _row(claim, HOLDS, float("nan"), measure, "no finished run", _evidence(table.assign(figures=name)))
    per_eps = final.groupby("eps").agg(avg=("avg_rank", "mean"), bound=(f"bound_{switch}", "first"),
                                       alt=(f"bound_{other}", "first"), informative=(f"informative_{switch}", "all"))
    trivial = float(final["trivial"].iloc[0])
    informative = final[final[f"informative_{switch}"].astype(bool)]
    listing = "; ".join(f"ε = {e:g}: {r.avg:.0f} vs {r.bound:.0f} ({switch}) | {r.alt:.0f} ({other})"
                        for e, r in per_eps.iterrows())
    yardsticks = _yardsticks(final.iloc[0])
    evidence = (f"{_evidence(final.assign(figures=name)).rstrip(')')}; informative at "
                f"{int(per_eps['informative'].sum())} of {len(per_eps)} plotted ε)")
    if informative.empty:
        return _row(claim, HOLDS, float("nan"), measure, f"the bound is ≥ the largest possible average rank "
                                                           f"{trivial:.0f} at every plotted ε ({yardsticks}); "
                                                           f"{listing}", evidence)
    frac = float((informative["avg_rank"] <= informative[f"bound_{switch}"]).mean())
    effect = f"{frac:.0%} of informative (run, ε) hold; {yardsticks}; {listing}"
    return _row(claim, HOLDS, frac, measure, effect, evidence)


def _fig18_note(config: dict, name: str, table: pd.DataFrame) -> str:
    """The paper's factor-2 reading of λ in Fig 18, stated as a note on the paper, not as an empirical verdict."""
    row = table.iloc[0]
    at = {c: rank_bound(int(row["m"]), int(row["batch_size"]), row["lr"], row["weight_decay"], PAPER_EPS, c)
          for c in CONVENTIONS}
    below = [c for c in CONVENTIONS if at[c] < row["width"]]
    under = f"{below[0]} only" if len(below) == 1 else "both λ readings" if below else "neither λ reading"
    return (f"{name}: the paper prints no bound values; it says the bound is below the network's width "
            f"{row['width']:.0f} for ε ≥ {PAPER_EPS:g}, which holds at ε = {PAPER_EPS:g} under {under} (bound "
            f"{at['as_printed']:.0f} with λ = wd = {row['weight_decay']:g}, as_printed; {at['torch']:.0f} with "
            f"torch's λ = wd/2, torch): the paper's λ = wd is a reading inferred from this claim. Yardsticks: "
            f"{_yardsticks(row)}. This is arithmetic on the paper's numbers, not a test of data.")


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
    measure = (f"Spearman ρ(final avg rank, test acc) per figure panel over runs with final train acc ≥ {FIT_ACC} "
               f"(≥ {MIN_POINTS} runs; a run drawn twice stays in its first panel)")
    return _row("Lower rank goes with better test accuracy among runs that fit the training set", trend(-1), median,
                measure, effect, _evidence(used))


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
