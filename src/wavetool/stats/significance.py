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


def z_critical(confidence: float) -> float:
    """The two-sided standard-normal critical value, e.g. 1.959964 for 0.95."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def confidence_label(confidence: float) -> str:
    """``0.95`` -> ``'95%'``."""
    return f"{confidence * 100:g}%"


def test_name(confidence: float) -> str:
    """The named test reported beside every significance flag."""
    return f"two-sample z-test (unpooled), Kish n_eff, {confidence_label(confidence)}"


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


def compare_proportions(p1: float, n_eff1: float, p2: float, n_eff2: float, confidence: float) -> str:
    """The same unpooled two-sample z-test as the tables' SQL, for two percentages (0-100) of independent
    samples (e.g. wave 1 and wave 4 of a full-study report): 'higher' / 'lower' (p1 against p2) or ''."""
    if n_eff1 <= 0 or n_eff2 <= 0:
        return ""
    a, b = p1 / 100.0, p2 / 100.0
    diff = a - b
    se = (max(a * (1 - a), 0.0) / n_eff1 + max(b * (1 - b), 0.0) / n_eff2) ** 0.5
    if diff == 0:
        return ""
    if se == 0 or abs(diff) / se > z_critical(confidence):
        return "higher" if diff > 0 else "lower"
    return ""
