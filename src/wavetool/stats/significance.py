"""Confidence intervals and significance tests, written once as SQL expressions over the sufficient
statistics of a base (sum of weights, Kish effective size, proportion, mean, SD).

Definitions (also in the README, "Tables"):

- Kish effective sample size: ``n_eff = (Σw)² / Σw²`` over the valid base.
- Proportion CI (Wald, on n_eff): ``p ± z·√(p(1−p)/n_eff)``, clipped to [0, 100] %.
- Mean CI: ``m ± z·s/√n_eff`` with ``s`` the weighted SD ``√(Σw(x−m)²/Σw · n/(n−1))`` (the estimator of
  R's ``survey::svyvar``; with equal weights it is the ordinary sample SD).
- Tests (independent samples: a scope vs everyone else, or vs the previous wave's respondents):
  two-sample z-tests, unpooled, on the Kish effective bases:
  ``z = (p₁−p₂)/√(p₁(1−p₁)/n_eff₁ + p₂(1−p₂)/n_eff₂)`` and ``z = (m₁−m₂)/√(s₁²/n_eff₁ + s₂²/n_eff₂)``;
  significant when ``|z| > z_(1−α/2)``. No adjustment for multiple comparisons.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa


def z_critical(confidence: float) -> float:
    """The two-sided standard-normal critical value, e.g. 1.959964 for 0.95."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def confidence_label(confidence: float) -> str:
    """``0.95`` -> ``'95%'``."""
    return f"{confidence * 100:g}%"


def test_name(confidence: float, tables: Any = None) -> str:
    """The named test reported beside every significance flag (as before issue 12 with Kish variances and
    no adjustment)."""
    if tables is None or (tables.variance == "kish" and tables.adjust == "none"):
        return f"two-sample z-test (unpooled), Kish n_eff, {confidence_label(confidence)}"
    variance = "linearised design SE" if tables.variance == "linearized" else "Kish n_eff"
    adjust = {"bh": "Benjamini-Hochberg", "holm": "Holm", "none": "unadjusted"}[tables.adjust]
    return f"two-sample z-test (unpooled), {variance}, {adjust} p-values per scope and wave, {confidence_label(confidence)}"


def methods_meta(tables: Any, designs: dict[str, str]) -> dict[str, Any]:
    """The methods behind every figure, named for the JSON ``meta`` (and the Parquet metadata)."""
    variance = {
        "linearized": "Taylor linearisation, stratified single-stage with-replacement design "
        "(R: svydesign(ids=~1 or ~cluster, strata=~stratum, weights=~weight); a domain uses every stratum of "
        "the wave; a stratum with one PSU is centred on the grand mean, as survey.lonely.psu = 'adjust')",
        "kish": "Kish: p(1-p)/n_eff and s^2/n_eff with n_eff = (sum w)^2 / sum w^2",
    }[tables.variance]
    interval = {
        "wilson": "Wilson score interval on the design's effective base p(1-p)/se^2",
        "korn-graubard": "Korn-Graubard (R: svyciprop(method = 'beta')) on the design's effective base",
        "wald": "Wald p +/- z*se, clipped to 0-100",
    }[tables.interval]
    return {
        "variance": variance,
        "design": designs,
        "interval": interval,
        "effective_base_fallback": "Kish n_eff where p is 0 or 1 or the variance is 0",
        "mean_interval": "mean +/- z*se",
        "adjust": {
            "bh": "Benjamini-Hochberg (R: p.adjust(method = 'BH'))",
            "holm": "Holm (R: p.adjust(method = 'holm'))",
            "none": "none",
        }[tables.adjust],
        "family": "every test reported for one scope in one wave",
        "quality": f"E: CV >= {tables.cv_caution:g}%; F (withheld): CV > {tables.cv_suppress:g}%",
        "min_effective_base": tables.min_effective_base,
    }


def proportion_ci_sql(p: str, n_eff: str, z: str, low: bool) -> str:
    """SQL for one end of the Wald CI of a proportion ``p`` (0-1), in percent, clipped to 0-100."""
    sign = "-" if low else "+"
    bound = "greatest(0.0, {x})" if low else "least(100.0, {x})"
    value = bound.format(x=f"100.0 * ({p} {sign} {z} * sqrt(greatest({p} * (1 - {p}), 0) / {n_eff}))")
    return f"(CASE WHEN {p} IS NOT NULL AND {n_eff} > 0 THEN {value} END)"  # greatest() would skip a NULL


def mean_ci_sql(mean: str, sd: str, n_eff: str, z: str, low: bool) -> str:
    """SQL for one end of the CI of a mean."""
    sign = "-" if low else "+"
    return f"({mean} {sign} {z} * {sd} / sqrt({n_eff}))"


def verdict_sql(diff: str, se: str, z: str) -> str:
    """SQL giving 'higher' / 'lower' / '' from a difference and its standard error. A zero standard
    error with a non-zero difference (e.g. 100 % vs 0 %) is significant; NULL inputs give ''."""
    return (
        f"CASE WHEN {diff} IS NULL OR {se} IS NULL THEN '' "
        f"WHEN {diff} = 0 THEN '' "
        f"WHEN {se} = 0 OR abs({diff}) / {se} > {z} THEN (CASE WHEN {diff} > 0 THEN 'higher' ELSE 'lower' END) "
        f"ELSE '' END"
    )


# --- design-based intervals and tests (issue 12) -------------------------------------------------------

FUNCTIONS = ("wt_qbeta", "wt_qt")


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register the distribution functions the SQL below calls (vectorised scipy over Arrow; every cursor
    of ``con`` sees them): ``wt_qbeta(p, a, b)`` the beta quantile and
    ``wt_qt(p, df)`` Student's t quantile. Idempotent."""
    present = {r[0] for r in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}
    if all(name in present for name in FUNCTIONS):
        return
    from scipy import special  # lazy: scipy takes ~0.2 s to import, needed only once tables are computed

    def arrays(*columns: pa.Array) -> list[np.ndarray]:
        return [np.asarray(c.to_numpy(zero_copy_only=False), dtype=float) for c in columns]

    def qbeta(p: pa.Array, a: pa.Array, b: pa.Array) -> pa.Array:
        pv, av, bv = arrays(p, a, b)
        return pa.array(special.betaincinv(av, bv, pv))

    def qt(p: pa.Array, df: pa.Array) -> pa.Array:
        pv, dv = arrays(p, df)
        return pa.array(special.stdtrit(dv, pv))

    for name, function, params in (
        ("wt_qbeta", qbeta, ["DOUBLE"] * 3),
        ("wt_qt", qt, ["DOUBLE"] * 2),
    ):
        if name not in present:
            con.create_function(name, function, params, "DOUBLE", type="arrow", side_effects=False)


def effective_base_sql(p: str, var: str, fallback: str) -> str:
    """SQL of the design's effective base of a proportion, ``p(1−p)/var`` (R's svyciprop), or ``fallback``
    (the Kish n_eff) where that is undefined: p = 0 or 1, or a zero variance."""
    return f"(CASE WHEN {var} > 0 AND {p} > 0 AND {p} < 1 THEN {p} * (1 - {p}) / {var} ELSE {fallback} END)"


def wilson_sql(p: str, n: str, z: str, low: bool) -> str:
    """SQL for one end of the Wilson score interval of ``p`` on base ``n``, in percent."""
    sign = "-" if low else "+"
    centre = f"({p} + {z} * {z} / (2 * {n}))"
    half = f"({z} * sqrt(greatest({p} * (1 - {p}), 0) / {n} + {z} * {z} / (4 * {n} * {n})))"
    value = f"100.0 * least(1.0, greatest(0.0, ({centre} {sign} {half}) / (1 + {z} * {z} / {n})))"
    exact = f"{p} = 0 THEN 0.0" if low else f"{p} = 1 THEN 100.0"  # not 1e-16 from the rounding of z²/2n − z/2n
    return f"(CASE WHEN {p} IS NOT NULL AND {n} > 0 THEN (CASE WHEN {exact} ELSE {value} END) END)"


def korn_graubard_sql(p: str, n: str, confidence: float, rows: str, df: str, low: bool) -> str:
    """SQL for one end of the Korn–Graubard interval, as ``survey::svyciprop(method = "beta")``: the
    Clopper–Pearson interval on the effective base ``n`` times ``(qt(α/2, rows − 1)/qt(α/2, df))²``, ``rows``
    the domain's respondents and ``df`` its degrees of freedom (R's ``degf``: PSUs less strata)."""
    half = (1 - confidence) / 2
    adjusted = f"({n} * pow(wt_qt({half!r}, {rows} - 1) / wt_qt({half!r}, {df}), 2))"
    if low:
        value = f"CASE WHEN {p} = 0 THEN 0.0 ELSE wt_qbeta({half!r}, {adjusted} * {p}, {adjusted} * (1 - {p}) + 1) END"
    else:
        value = (
            f"CASE WHEN {p} = 1 THEN 1.0 ELSE wt_qbeta({1 - half!r}, {adjusted} * {p} + 1, {adjusted} * (1 - {p})) END"
        )
    return f"(CASE WHEN {p} IS NOT NULL AND {n} > 0 AND {rows} > 1 AND {df} > 0 THEN 100.0 * ({value}) END)"


def interval_sql(method: str, p: str, n: str, z: str, confidence: float, rows: str, df: str, low: bool) -> str:
    """One end of the ``method`` interval ("wilson", "korn-graubard" or "wald") of ``p`` on base ``n``."""
    if method == "wilson":
        return wilson_sql(p, n, z, low)
    if method == "korn-graubard":
        return korn_graubard_sql(p, n, confidence, rows, df, low)
    return proportion_ci_sql(p, n, z, low)


def p_values(diff: np.ndarray, se: np.ndarray, reported: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values of differences and their standard errors, where ``reported``: 1 for no
    difference, 0 for a difference with a zero standard error (e.g. 100 % vs 0 %), NaN where either is
    missing (NaN) or the test is not reported."""
    from scipy import special  # lazy: scipy takes ~0.2 s to import (see register_functions)

    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(diff == 0, 1.0, np.where(se == 0, 0.0, 2 * special.ndtr(-np.abs(diff) / se)))
    return np.where(reported & ~np.isnan(diff) & ~np.isnan(se), p, np.nan)


def adjust_families(p: np.ndarray, family: np.ndarray, method: str) -> np.ndarray:
    """The p-values ``p`` (NaN: no test) adjusted as R's ``p.adjust(p, method)`` within each family (equal
    ``family`` values): 'bh' ``min over j ≥ i of m·p_(j)/j``, 'holm' ``max over j ≤ i of (m − j + 1)·p_(j)``,
    both capped at 1, or 'none'. Ties in p get the same adjusted value whichever order they are ranked in
    (BH's minimum reaches the last of the ties, Holm's maximum the first), so the result is reproducible."""
    out = np.full(len(p), np.nan)
    if method == "none" or not len(p):
        return np.where(np.isnan(p), out, p)
    # each family's members together (already so when the families come sorted, as the tables' do)
    order = np.arange(len(p)) if np.all(family[1:] >= family[:-1]) else np.argsort(family, kind="stable")
    grouped = family[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(p)], strict=True):
        block = order[start:end]
        members = block[~np.isnan(p[block])]
        if not len(members):
            continue
        members = members[np.argsort(p[members], kind="stable")]
        m, r = len(members), np.arange(1, len(members) + 1)
        if method == "bh":
            values = np.minimum.accumulate((m * p[members] / r)[::-1])[::-1]
        else:
            values = np.maximum.accumulate((m - r + 1) * p[members])
        out[members] = np.minimum(1.0, values)
    return out


def compare_waves(
    pairs: list[tuple[float, float, float, float]], confidence: float, adjust: str
) -> list[tuple[str, float, float]]:
    """Two-sample z-tests of independent estimates, e.g. each measure's wave 1 against its wave 4:
    ``pairs`` of (estimate₁, SE₁, estimate₂, SE₂) in the same units; ``z = (e₁ − e₂)/√(SE₁² + SE₂²)``, the
    p-values adjusted together by ``adjust`` (one family). Returns (flag 'higher'/'lower'/'' for e₁ against
    e₂, p, adjusted p) per pair."""
    if not pairs:
        return []
    e1, se1, e2, se2 = (np.array(column, dtype=np.float64) for column in zip(*pairs, strict=True))
    diff = e1 - e2
    raw = p_values(diff, np.sqrt(se1 * se1 + se2 * se2), np.ones(len(pairs), dtype=bool))
    adjusted = adjust_families(raw, np.zeros(len(pairs), dtype=np.int64), adjust)
    alpha = 1 - confidence
    return [
        (("higher" if d > 0 else "lower") if q < alpha and d != 0 else "", float(p), float(q))
        for d, p, q in zip(diff, raw, adjusted, strict=True)
    ]
