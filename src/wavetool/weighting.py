"""Raking (rim weighting) a wave to population margins, with the diagnostics a survey statistician expects.

``wavetool weight --wave N`` rakes the wave's weights so that the weighted distribution of every margin
variable in ``[weighting.margins]`` matches the configured population shares, optionally trimming the
weights to ``[weighting] trim = [low, high]`` (relative to a mean weight of 1) between raking passes.

Jurisdiction shares: a vendor weight usually corrects each jurisdiction's boosted sample back to its share
of the population. When the jurisdiction is not one of the margins, raking on the others would move those
shares (by up to 4 % relative on the sample study), so with ``[weighting] keep_jurisdiction_totals = true``
(the default) each jurisdiction's share of the starting weights is held as one more margin. The result
reports every jurisdiction's share before and after raking either way.

Where the raked weight lives: the wave table gets two columns, ``_weight_vendor`` (a copy of the weight
delivered with the file, made once) and ``_weight_raked``, and ``_weight`` (the column every table, custom
question and report reads) is set to the raked weight. ``wavetool weight --wave N --vendor`` puts the
vendor weight back. Re-importing a wave replaces its table, so its weight is the vendor's again until it
is raked again. Every raking is recorded in ``weightings`` with its diagnostics.

Respondents with a user- or system-missing answer on a margin variable are left out of that variable's
adjustment (they keep their weight for that step) and the shares apply to the respondents who answered.
A margin category nobody in the wave has, an answer code that has no share in the margins, or raking
that does not reach the margins within ``tolerance`` in ``max_iterations`` passes is a WeightingError
(exit 81): no weight is written.

Implementation: a vectorised numpy iterative proportional fitting. The raking libraries on PyPI were
considered: weightipy pulls pandas, scipy, requests and watchdog into the runtime, supports only an upper
cap and reports non-convergence as a warning; samplics is heavier still. The loop below is short, checks
its own convergence against the margins, and is compared in the tests with an independent computation.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .codebook import code_text, ensure_reviewed, harmonised_codebook, harmonised_select
from .config import StudyConfig, find_column
from .context import QUIET, Context
from .errors import InputMissingError, WeightingError
from .stats.questions import is_missing_code
from .store import first_row, quote, read_store, transaction, wave_table, write_store


@dataclass
class MarginCheck:
    """One margin category: its target share and the share the raked weights reach."""

    variable: str
    code: str
    target: float
    achieved: float
    n: int


@dataclass
class JurisdictionShare:
    """One jurisdiction's share of the weights before raking (the starting weights) and after."""

    code: str
    n: int
    before: float
    after: float


@dataclass
class RakeResult:
    """What raking did, for the CLI, ``--json`` and the ``weightings`` table."""

    wave: int
    base: str  # 'vendor' | 'uniform': the weights raking started from
    respondents: int
    iterations: int
    converged: bool
    max_margin_error: float
    efficiency: float  # Kish weighting efficiency, percent: (Σw)² / (n Σw²) × 100
    design_effect: float  # Kish design effect from weighting: n Σw² / (Σw)²
    min_weight: float
    max_weight: float
    trim: tuple[float, float] | None
    trimmed: int  # respondents whose weight sits on a trim bound
    margins: list[MarginCheck] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)  # variable -> respondents left out (missing)
    # 'held' (the starting shares kept as a margin), 'margin' (a configured margin) or 'free' (allowed to move)
    jurisdiction_totals: str = "free"
    jurisdictions: list[JurisdictionShare] = field(default_factory=list)
    weights: np.ndarray | None = None  # the raked weights, in ``ids`` order (not serialised)
    ids: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("weights", "ids")}
        data["margins"] = [m.__dict__ for m in self.margins]
        data["jurisdictions"] = [j.__dict__ for j in self.jurisdictions]
        return data


@dataclass(frozen=True)
class Margin:
    """One margin variable resolved against a wave: category index per respondent (-1 = left out)."""

    variable: str
    codes: list[str]
    targets: np.ndarray
    index: np.ndarray


def rake_weights(
    base: np.ndarray, margins: list[Margin], *, max_iterations: int, tolerance: float, trim: tuple[float, float] | None
) -> tuple[np.ndarray, int, bool, float]:
    """Iterative proportional fitting of ``base`` to ``margins`` (weights normalised to mean 1).

    Returns (weights, iterations, converged, max margin error). Converged means every margin share is
    within ``tolerance`` of its target, no weight moved more than ``tolerance`` in the last pass and, with
    ``trim``, every weight is within the trim bounds."""
    weights = base / base.mean()
    error = np.inf
    for iteration in range(1, max_iterations + 1):
        previous = weights
        for margin in margins:
            weights = _fit_margin(weights, margin)
        if trim is not None:
            weights = np.clip(weights, trim[0], trim[1])
            weights = weights / weights.mean()
        error = max_margin_error(weights, margins)
        settled = float(np.abs(weights - previous).max()) <= tolerance  # the weights, not only the margins
        within = trim is None or (weights.min() >= trim[0] * (1 - 1e-9) and weights.max() <= trim[1] * (1 + 1e-9))
        if error <= tolerance and settled and within:
            return weights, iteration, True, error
    return weights, max_iterations, False, error


def _fit_margin(weights: np.ndarray, margin: Margin) -> np.ndarray:
    answered = margin.index >= 0
    totals = np.bincount(margin.index[answered], weights=weights[answered], minlength=len(margin.codes))
    # a category holding no weight (a jurisdiction whose starting weights are all 0) has nothing to scale
    factors = np.divide(margin.targets * totals.sum(), totals, out=np.ones_like(totals), where=totals > 0)
    adjusted = weights.copy()
    adjusted[answered] *= factors[margin.index[answered]]
    return adjusted


def margin_shares(weights: np.ndarray, margin: Margin) -> np.ndarray:
    """The weighted share of each margin category among the respondents who answered."""
    answered = margin.index >= 0
    totals = np.bincount(margin.index[answered], weights=weights[answered], minlength=len(margin.codes))
    return totals / totals.sum()


def max_margin_error(weights: np.ndarray, margins: list[Margin]) -> float:
    return max((float(np.abs(margin_shares(weights, m) - m.targets).max()) for m in margins), default=0.0)


def _resolve_column(config: StudyConfig, variable: str, questions: set[str], wave: int) -> str:
    """The wave's column a ``[weighting.margins.VARIABLE]`` names, matched as SPSS matches names (whatever
    the case): the jurisdiction role, or one of the wave's questions."""
    roles = config.roles_for_wave(wave)
    if variable.casefold() in (roles.jurisdiction.casefold(), "_jurisdiction"):
        return "_jurisdiction"
    column = find_column(sorted(questions), variable)
    if column is not None:
        return column
    raise WeightingError(
        f"{config.path}: [weighting.margins.{variable}]: wave {wave} has no variable {variable}",
        hint=f"margin variables must be questions of the wave (or {roles.jurisdiction}); see `wavetool codebook --wave {wave}`",
    )


def _margin(
    config: StudyConfig, wave: int, variable: str, shares: dict[str, float], values: list[Any], missing: tuple
) -> Margin:
    codes = list(shares)
    position = {code: i for i, code in enumerate(codes)}
    index = np.full(len(values), -1, dtype=np.int64)
    unknown: dict[str, int] = {}
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and (np.isnan(value) or is_missing_code(missing, value))):
            continue
        code = code_text(value)
        if code in position:
            index[row] = position[code]
        else:
            unknown[code] = unknown.get(code, 0) + 1
    if unknown:
        code, count = next(iter(sorted(unknown.items())))
        raise WeightingError(
            f"wave {wave}: {variable} code {code} ({count} respondents) has no population share in [weighting.margins.{variable}]",
            hint=f"add `{code} = <share>` to [weighting.margins.{variable}] (shares must sum to 1), or declare the code user-missing",
        )
    counts = np.bincount(index[index >= 0], minlength=len(codes))
    for code, count in zip(codes, counts, strict=True):
        if count == 0 and shares[code] > 0:
            raise WeightingError(
                f"wave {wave}: margin category {variable} = {code} (share {shares[code]:g}) is absent from the data",
                hint=f"no respondent of wave {wave} has {variable} = {code}; fix the code in [weighting.margins.{variable}] "
                "or merge the category with another",
            )
    return Margin(variable, codes, np.array([shares[c] for c in codes], dtype=float), index)


def rake(
    config: StudyConfig,
    wave: int,
    *,
    base: str = "vendor",
    store: bool = True,
    con: duckdb.DuckDBPyConnection | None = None,
    ctx: Context = QUIET,
) -> RakeResult:
    """Rake ``wave`` to the configured margins and (with ``store``) make the result the wave's weight.

    ``base`` is 'vendor' (start from the delivered weight) or 'uniform' (start from equal weights). Unless the
    jurisdiction is a margin, ``[weighting] keep_jurisdiction_totals`` (default true) holds each jurisdiction's
    share of those starting weights (a vendor weight's correction of a jurisdiction boost)."""
    settings = config.weighting
    if not settings.margins:
        raise WeightingError(
            f"{config.path}: [weighting.margins] is empty", hint="add one [weighting.margins.VARIABLE] table per margin"
        )
    if base not in ("vendor", "uniform"):
        raise ValueError(f"base must be 'vendor' or 'uniform', not {base!r}")
    if con is None:
        with read_store(config.root) as own:
            result, sha = _rake_read(config, wave, base, own)
    else:
        result, sha = _rake_read(config, wave, base, con)
    if store:
        _store(config, result, sha, ctx.clock())
    return result


def _rake_read(config: StudyConfig, wave: int, base: str, con: duckdb.DuckDBPyConnection) -> tuple[RakeResult, str]:
    config.wave(wave)
    row = first_row(con, "SELECT content_sha256 FROM waves WHERE wave = ?", [wave])
    if row is None:
        raise InputMissingError(
            f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
        )
    ensure_reviewed(con, [wave])
    book = harmonised_codebook(con, config, wave)
    columns = {v: _resolve_column(config, v, set(book), wave) for v in config.weighting.margins}
    vendor = "_weight_vendor" if _has_column(con, wave, "_weight_vendor") else "_weight"
    select = ", ".join(f"h.{quote(c)} AS {quote('m_' + v)}" for v, c in columns.items())
    data = con.sql(
        f"SELECT h._id, h._jurisdiction AS jurisdiction, t.{vendor} AS vendor, {select} FROM ({harmonised_select(con, config, wave)}) h "
        f"JOIN {wave_table(wave)} t USING (_id) ORDER BY h._id"
    ).fetchnumpy()
    ids = [str(i) for i in data["_id"]]
    margins = []
    excluded = {}
    for variable, column in columns.items():
        values = _as_values(data["m_" + variable])
        missing = book[column].missing if column in book else ()
        margin = _margin(config, wave, variable, config.weighting.margins[variable], values, missing)
        margins.append(margin)
        excluded[variable] = int((margin.index < 0).sum())
    start = np.asarray(_as_values(data["vendor"]), dtype=float) if base == "vendor" else np.ones(len(ids))
    settings = config.weighting
    jurisdiction = jurisdiction_margin(_as_values(data["jurisdiction"]), start)
    if "_jurisdiction" in columns.values():
        mode = "margin"
    elif settings.keep_jurisdiction_totals:
        mode = "held"
    else:
        mode = "free"
    fitted = [*margins, jurisdiction] if mode == "held" else margins
    weights, iterations, converged, error = rake_weights(
        start, fitted, max_iterations=settings.max_iterations, tolerance=settings.tolerance, trim=settings.trim
    )
    if not converged:
        held = " and the jurisdiction shares held by [weighting] keep_jurisdiction_totals" if mode == "held" else ""
        raise WeightingError(
            f"wave {wave}: raking did not converge in {iterations} iterations (largest margin error {error:.2e} > "
            f"tolerance {settings.tolerance:g})",
            hint=f"the trim bounds may be too tight for these margins{held} (widen [weighting] trim), or raise "
            "max_iterations; no weight was written",
        )
    result = _result(wave, base, ids, weights, iterations, error, margins, excluded, settings.trim)
    result.jurisdiction_totals = mode
    result.jurisdictions = _jurisdiction_shares(jurisdiction, weights)
    return result, row[0]


def jurisdiction_margin(codes: list[Any], start: np.ndarray) -> Margin:
    """The jurisdictions as a margin whose targets are their shares of the starting weights."""
    known = sorted({str(c) for c in codes if c is not None})
    position = {code: i for i, code in enumerate(known)}
    index = np.array([-1 if c is None else position[str(c)] for c in codes], dtype=np.int64)
    answered = index >= 0
    totals = np.bincount(index[answered], weights=start[answered], minlength=len(known))
    return Margin("_jurisdiction", known, totals / totals.sum(), index)


def _jurisdiction_shares(jurisdiction: Margin, weights: np.ndarray) -> list[JurisdictionShare]:
    after = margin_shares(weights, jurisdiction)
    counts = np.bincount(jurisdiction.index[jurisdiction.index >= 0], minlength=len(jurisdiction.codes))
    return [
        JurisdictionShare(code, int(counts[i]), float(jurisdiction.targets[i]), float(after[i]))
        for i, code in enumerate(jurisdiction.codes)
    ]


def _as_values(column: Any) -> list[Any]:
    if isinstance(column, np.ma.MaskedArray):
        return [
            None if masked else value
            for value, masked in zip(column.data.tolist(), np.ma.getmaskarray(column).tolist(), strict=True)
        ]
    return column.tolist()


def _result(
    wave: int,
    base: str,
    ids: list[str],
    weights: np.ndarray,
    iterations: int,
    error: float,
    margins: list[Margin],
    excluded: dict[str, int],
    trim: tuple[float, float] | None,
) -> RakeResult:
    n = len(weights)
    efficiency = float(weights.sum() ** 2 / (n * (weights**2).sum()))
    trimmed = 0 if trim is None else int(np.isclose(weights, trim[0]).sum() + np.isclose(weights, trim[1]).sum())
    checks = []
    for margin in margins:
        shares = margin_shares(weights, margin)
        counts = np.bincount(margin.index[margin.index >= 0], minlength=len(margin.codes))
        checks += [
            MarginCheck(margin.variable, code, float(margin.targets[i]), float(shares[i]), int(counts[i]))
            for i, code in enumerate(margin.codes)
        ]
    return RakeResult(
        wave=wave,
        base=base,
        respondents=n,
        iterations=iterations,
        converged=True,
        max_margin_error=error,
        efficiency=100 * efficiency,
        design_effect=1 / efficiency,
        min_weight=float(weights.min()),
        max_weight=float(weights.max()),
        trim=trim,
        trimmed=trimmed,
        margins=checks,
        excluded=excluded,
        weights=weights,
        ids=ids,
    )


def _has_column(con: duckdb.DuckDBPyConnection, wave: int, column: str) -> bool:
    return bool(
        con.execute(
            "SELECT 1 FROM duckdb_columns() WHERE table_name = ? AND column_name = ?", [wave_table(wave), column]
        ).fetchall()
    )


def _store(config: StudyConfig, result: RakeResult, content_sha: str, now: dt.datetime) -> None:
    """Write the raked weight into the wave table and record the diagnostics, in one transaction."""
    table = wave_table(result.wave)
    raked = pa.table({"_id": pa.array(result.ids, pa.string()), "w": pa.array(result.weights, pa.float64())})
    with write_store(config.root, timeout=config.pipeline.lock_timeout, purpose=f"weight wave {result.wave}") as con:
        current = first_row(con, "SELECT content_sha256 FROM waves WHERE wave = ?", [result.wave])
        if current is None or current[0] != content_sha:
            raise WeightingError(
                f"wave {result.wave} was re-imported while it was being raked", hint="run `wavetool weight` again"
            )
        con.register("_wt_raked", raked)
        try:
            with transaction(con):
                if not _has_column(con, result.wave, "_weight_vendor"):
                    con.execute(f"ALTER TABLE {table} ADD COLUMN _weight_vendor DOUBLE")
                    con.execute(f"UPDATE {table} SET _weight_vendor = _weight")
                if not _has_column(con, result.wave, "_weight_raked"):
                    con.execute(f"ALTER TABLE {table} ADD COLUMN _weight_raked DOUBLE")
                con.execute(
                    f"UPDATE {table} SET _weight_raked = r.w, _weight = r.w FROM _wt_raked r WHERE {table}._id = r._id"
                )
                con.execute("DELETE FROM weightings WHERE wave = ?", [result.wave])
                con.execute(
                    "INSERT INTO weightings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        result.wave,
                        result.base,
                        json.dumps(config.weighting.margins),
                        result.iterations,
                        result.converged,
                        result.max_margin_error,
                        result.efficiency,
                        result.design_effect,
                        result.min_weight,
                        result.max_weight,
                        json.dumps(result.trim),
                        result.trimmed,
                        content_sha,
                        now.astimezone(dt.UTC).replace(tzinfo=None),
                    ],
                )
        finally:
            con.unregister("_wt_raked")


def restore_vendor_weight(config: StudyConfig, wave: int) -> dict[str, Any]:
    """Undo raking: ``_weight`` is the vendor weight again and the raked column is dropped."""
    table = wave_table(wave)
    with write_store(config.root, timeout=config.pipeline.lock_timeout, purpose=f"weight wave {wave}") as con:
        if first_row(con, "SELECT 1 FROM waves WHERE wave = ?", [wave]) is None:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
            )
        if not _has_column(con, wave, "_weight_raked"):
            return {"wave": wave, "weight": "vendor", "changed": False}
        with transaction(con):
            con.execute(f"UPDATE {table} SET _weight = _weight_vendor")
            con.execute(f"ALTER TABLE {table} DROP COLUMN _weight_raked")
            con.execute("DELETE FROM weightings WHERE wave = ?", [wave])
    return {"wave": wave, "weight": "vendor", "changed": True}
