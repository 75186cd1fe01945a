"""Drivers of satisfaction: which service attributes move the outcome (overall satisfaction), and where a
scope under-performs on what matters most.

``wavetool.stats.drivers(config, wave, scopes=[...])`` returns a :class:`Drivers` result: one row per (wave, scope,
attribute) in ``table`` with these columns, in this order (a contract: new columns go after them):

``wave``             the wave number.
``scope``            ``all``, a jurisdiction code or a subscriber id (its jurisdictions pooled).
``outcome``          the outcome question (``[drivers] outcome``).
``attribute``        the attribute question (one of ``[drivers] attributes``, in the configured order).
``label``            the attribute's question label (codebook).
``importance``       the attribute's share of the model's R², in percent: the Shapley (LMG) value of the
                     attribute divided by R², times 100. Sums to 100 over a scope's attributes.
``importance_rank``  1 = most important in the scope; equal importances share a rank ("1224" ranking).
``r2``               R² (0-1) of the weighted least-squares regression of the outcome on all the attributes
                     in the scope (the same on every row of a scope).
``n``                the listwise base: respondents of the scope with a valid answer to the outcome and to
                     every attribute (user-missing codes and blanks excluded).
``n_eff``            Kish's effective base of those respondents, ``(Σw)² / Σw²``.
``performance``      the attribute's top-2 box (percent, 0-100) in the scope, as ``stats.tabulate``
                     reports it (on the attribute's own valid base, not the listwise one; empty when the
                     tables withhold it or the attribute is not a scale).
``quadrant``         where the attribute sits against the scope's means (mean importance = 100 / number of
                     attributes; mean performance = the mean of the attributes' performances):
                     ``priority``  importance > mean importance and performance < mean performance
                     ``strength``  importance > mean importance and performance ≥ mean performance
                     ``surplus``   importance ≤ mean importance and performance ≥ mean performance
                     ``secondary`` importance ≤ mean importance and performance < mean performance
                     (empty when the attribute has no performance).
``method``           ``shapley-lmg`` (exact over all 2^k subsets, k ≤ 15 attributes) or
                     ``johnson-relative-weights`` (k > 15).

then, after the contract columns: ``importance_ci_low``, ``importance_ci_high`` (bootstrap percentile
interval of ``importance`` at ``[tables] confidence`` when ``[drivers] replicates`` > 0, else empty),
``r2_share`` (the attribute's raw share of R², ``importance × r2 / 100``), ``user_missing`` and ``blank``
(respondents of the scope whose answer to this attribute is user-missing / blank) and ``note`` (e.g. an
attribute constant in the scope).

``scopes_table`` has one row per (wave, scope): its status (``ok`` or ``skipped``), the ``reason`` when
skipped (listwise base under ``[drivers] min_base``, no valid answer to the outcome, an outcome constant in
the scope, every attribute constant), and the listwise counts: ``respondents`` = ``n`` +
``excluded_user_missing`` (no blank but at least one user-missing answer among outcome and attributes) +
``excluded_blank`` (at least one blank). ``meta`` names the methods and gives the formulas.

How it is computed. One read of the outcome's and attributes' answers per wave gives, summed in numpy per
design cell (the jurisdiction, with its stratum and PSU when ``[columns] strata`` / ``cluster`` name them),
the weighted sufficient statistics of the listwise-valid respondents: ``Σw``, ``Σw²``, ``Σw·x`` and
``Σw·x·xᵀ`` over the outcome and the attributes (each shifted by its scale's midpoint, which keeps the sums
of squares exact to many digits), the min and max of each variable, the exclusion counts and, unless the
tables are given, each attribute's sums over its own valid and top-box answers (its top-2 box and the
linearised variance that decides the tables' F flag, see :func:`_topboxes`). A scope is the sum of its cells' rows; the scopes with the same attributes are
decomposed in one batch, with sums written so that a scope's figures do not depend on the batch. From a
scope's sums: the weighted covariance ``C = Σw·x·xᵀ/Σw − m·mᵀ`` with ``m = Σw·x/Σw``, the correlation
matrix ``R = C / √(diag C · diag Cᵀ)``, and for every subset ``S`` of the attributes
``R²(S) = r_Sᵀ R_SS⁻¹ r_S`` (``r`` the attributes' correlations with the outcome); this equals the R² of
the weighted least-squares regression with an intercept. The Shapley value of attribute ``j`` of
``k`` is ``Σ_{S ⊆ others} |S|!(k−|S|−1)!/k! · (R²(S∪{j}) − R²(S))`` (vectorised over all subsets in numpy).
Beyond 15 attributes, Johnson's (2000) relative weights: with ``R_xx = QΛQᵀ`` and ``Λ½ = QΛ^½Qᵀ``,
``β = Λ½⁻¹ r`` and the weight of ``j`` is ``Σ_k (Λ½_jk)² β_k²`` (they also sum to R²).

An attribute constant in a scope (every valid answer the same) explains nothing: it is left out of that
scope's regression, gets importance 0 (ranked last) and a note; the other attributes share the R².

Bootstrap (``[drivers] replicates`` > 0): the Rao-Wu rescaling bootstrap with ``m_h = n_h − 1``, within
the design's strata (``[columns] strata``, else the jurisdictions): in each replicate, each stratum's ``n_h``
units (its PSUs with ``[columns] cluster``, else its respondents; all of them, valid or not) are resampled
``n_h − 1`` times with replacement, and respondent ``i`` whose unit is drawn ``r_i`` times gets the weight
``w_i · r_i · n_h/(n_h − 1)``; a stratum with a single unit keeps its weights. The same
replicate weights serve every scope of the wave (each scope sees the replicates of its own strata). The
interval is the percentile interval of the replicates' importances. Seeded by ``[drivers] seed`` and the
wave, so two runs give the same intervals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codebook import (
    MissingSpec,
    code_text,
    ensure_reviewed,
    harmonised_codebook,
    harmonised_columns,
    is_missing_code,
)
from ..config import StudyConfig
from ..errors import ConfigError, InputMissingError
from ..sql import missing_condition
from ..store import wave_table
from .design import Design, wave_design
from .output import _records, _write, write_csv, write_parquet
from .questions import Question, single_question, study_measures
from .significance import confidence_label

CONTRACT_COLUMNS = (
    "wave",
    "scope",
    "outcome",
    "attribute",
    "label",
    "importance",
    "importance_rank",
    "r2",
    "n",
    "n_eff",
    "performance",
    "quadrant",
    "method",
)
EXTRA_COLUMNS = ("importance_ci_low", "importance_ci_high", "r2_share", "user_missing", "blank", "note")
SCOPE_COLUMNS = (
    "wave",
    "scope",
    "status",
    "reason",
    "respondents",
    "n",
    "n_eff",
    "excluded_user_missing",
    "excluded_blank",
    "r2",
    "method",
)
EXACT_MAX = 15  # attributes up to which the Shapley decomposition is exact over all subsets
SHAPLEY, RELATIVE_WEIGHTS = "shapley-lmg", "johnson-relative-weights"
QUADRANTS = ("priority", "strength", "secondary", "surplus")
_CHUNK = 4_000_000  # floats per batched solve (keeps the all-subsets arrays to a few tens of MB)

_ROW_TYPES = {
    "wave": pa.int32(),
    "scope": pa.string(),
    "outcome": pa.string(),
    "attribute": pa.string(),
    "label": pa.string(),
    "importance": pa.float64(),
    "importance_rank": pa.int32(),
    "r2": pa.float64(),
    "n": pa.int64(),
    "n_eff": pa.float64(),
    "performance": pa.float64(),
    "quadrant": pa.string(),
    "method": pa.string(),
    "importance_ci_low": pa.float64(),
    "importance_ci_high": pa.float64(),
    "r2_share": pa.float64(),
    "user_missing": pa.int64(),
    "blank": pa.int64(),
    "note": pa.string(),
}
_SCOPE_TYPES = {
    "wave": pa.int32(),
    "scope": pa.string(),
    "status": pa.string(),
    "reason": pa.string(),
    "respondents": pa.int64(),
    "n": pa.int64(),
    "n_eff": pa.float64(),
    "excluded_user_missing": pa.int64(),
    "excluded_blank": pa.int64(),
    "r2": pa.float64(),
    "method": pa.string(),
}


@dataclass
class Drivers:
    """Drivers of the outcome for one wave and a list of scopes (see the module docstring for every field).

    ``table``: one row per (wave, scope, attribute) of the scopes that got drivers; ``scopes_table``: one
    row per (wave, scope) with its base, exclusions and, for a scope without drivers, the reason;
    ``meta``: the methods and formulas."""

    table: pa.Table
    scopes_table: pa.Table
    meta: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        return _records(self.table)

    @cached_property
    def scopes(self) -> list[dict[str, Any]]:
        return _records(self.scopes_table)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """The scopes that got no drivers, each with its ``reason``."""
        return [s for s in self.scopes if s["status"] == "skipped"]

    def scope_rows(self, scope: str) -> list[dict[str, Any]]:
        """The rows of one scope, in the configured attribute order."""
        return [r for r in self.rows if r["scope"] == scope]

    def to_csv(self, target: str | Path | IO[str] | IO[bytes], table: str = "drivers") -> None:
        """Write ``drivers`` (the rows) or ``scopes`` as CSV, to a path (atomically) or a stream."""
        write_csv(target, self._table(table))

    def to_json(self, target: str | Path | IO[str] | None = None) -> str:
        """The result as one JSON document {meta, drivers, scopes}; written to ``target`` when given."""
        text = json.dumps(
            {"meta": self.meta, "drivers": self.rows, "scopes": self.scopes}, ensure_ascii=False, indent=1, default=str
        )
        if target is not None:
            _write(target, (text + "\n").encode("utf-8"))
        return text

    def to_parquet(self, path: str | Path, table: str = "drivers") -> None:
        """Write one table as Parquet (``meta`` in the file's key-value metadata)."""
        write_parquet(path, self._table(table), self.meta)

    def write(self, path: str | Path, fmt: str) -> list[Path]:
        """Write the result to ``path`` as ``csv``, ``json`` or ``parquet``; a CSV or Parquet file gets the
        scopes table beside it (``NAME-scopes.csv`` / ``.parquet``; JSON holds both). Returns the paths."""
        path = Path(path)
        if fmt == "json":
            self.to_json(path)
            return [path]
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown format {fmt!r}; one of csv, json, parquet")
        beside = path.with_name(f"{path.stem}-scopes.{fmt}")
        writer = self.to_csv if fmt == "csv" else self.to_parquet
        writer(path)
        writer(beside, table="scopes")
        return [path, beside]

    def _table(self, name: str) -> pa.Table:
        tables = {"drivers": self.table, "scopes": self.scopes_table}
        if name not in tables:
            raise ValueError(f"unknown table {name!r}; one of {', '.join(tables)}")
        return tables[name]


def compute(
    config: StudyConfig,
    wave: int,
    scopes: list[str],
    con: duckdb.DuckDBPyConnection,
    *,
    tables: Any,
    weight: str,
) -> Drivers:
    """The drivers for already-checked ``scopes`` (the entry point is ``wavetool.stats.drivers``, which
    passes the wave's weight source for ``meta``). The attributes' top-2 boxes come from ``tables`` when
    given, else from the same scan as the regression's sums (see :func:`_topboxes`)."""
    spec = config.drivers
    if spec.outcome is None:
        raise ConfigError(
            f"{config.path}: no drivers analysis configured",
            hint='add a [drivers] table with outcome = "Q1" and attributes = ["Q2", ...] to the config',
        )
    config.wave(wave)
    if not con.execute("SELECT 1 FROM waves WHERE wave = ?", [wave]).fetchall():
        raise InputMissingError(
            f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
        )
    ensure_reviewed(con, [wave])
    model = _Model.of(con, config, wave)
    sums = _wave_sums(con, model, boxes=tables is None)
    members = _membership(config, scopes, sums.jurisdictions)
    if tables is None:
        performance = _topboxes(config, model, sums, members, scopes)
    else:
        performance = _performance(wave, model, tables)
    replicates = _replicate_sums(con, model, sums, config) if spec.replicates > 0 else None
    rows, scope_rows = _analyse(config, model, sums, members, scopes, performance, replicates)
    return Drivers(_arrow(rows, _ROW_TYPES), _arrow(scope_rows, _SCOPE_TYPES), _meta(config, wave, model, weight))


# --- the model: which columns, how they are valid --------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    """The outcome and attributes of one wave: SQL expressions, user-missing declarations, labels and the
    shift each variable's sums are taken around."""

    wave: int
    names: tuple[str, ...]  # outcome first, then the attributes in configured order
    expressions: tuple[str, ...]
    missing: tuple[tuple[MissingSpec, ...], ...]
    labels: tuple[str | None, ...]
    centres: tuple[float, ...]
    questions: tuple[Question | None, ...]  # as the tables tabulate each variable (None: they do not)
    design: Design

    @property
    def k(self) -> int:
        return len(self.names) - 1

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int) -> _Model:
        spec = config.drivers
        book = harmonised_codebook(con, config, wave, questions={spec.outcome, *spec.attributes})
        columns = harmonised_columns(con, config, wave)
        measures = study_measures(con)
        roles = config.roles_for_wave(wave)
        # the design's strata and PSUs (wave_design checks the columns exist: skipped without design roles)
        design = wave_design(con, config, wave) if roles.strata or roles.cluster else Design()
        names = (spec.outcome, *spec.attributes)
        for position, name in enumerate(names):
            key = "drivers.outcome" if position == 0 else "drivers.attributes"
            if name not in book or name not in columns:
                raise ConfigError(
                    f"{config.path}: {key}: {name!r} is not a question of wave {wave}",
                    hint=f"use question names from `wavetool codebook --wave {wave}` (core questions only)",
                )
            if book[name].type != "numeric":
                raise ConfigError(
                    f"{config.path}: {key}: {name!r} is a {book[name].type} question in wave {wave}; "
                    "a regression needs numeric answers",
                    hint="choose numeric rating questions",
                )
        return cls(
            wave=wave,
            names=tuple(names),  # type: ignore[arg-type]
            expressions=tuple(columns[n] for n in names),  # type: ignore[index]
            missing=tuple(book[n].missing for n in names),  # type: ignore[index]
            labels=tuple(book[n].label for n in names),  # type: ignore[index]
            centres=tuple(_centre(book[n].value_labels, book[n].missing) for n in names),  # type: ignore[index]
            questions=tuple(single_question(config, n, book[n], measures) for n in names),  # type: ignore[index]
            design=design,
        )

    def top(self, i: int) -> tuple[float, ...]:
        """The top-box codes of variable ``i`` (0 = the outcome) as the tables define them (none: no box)."""
        question = self.questions[i]
        return question.top if question is not None else ()


def _centre(value_labels: dict[str, str], missing: tuple[MissingSpec, ...]) -> float:
    """The midpoint of a question's valid labelled codes (0 without any): the shift its sums are taken
    around, so that Σw·x² − (Σw·x)²/Σw loses no digits to cancellation."""
    codes = []
    for code in value_labels:
        try:
            number = float(code)
        except ValueError:
            continue
        if math.isfinite(number) and not is_missing_code(missing, number):
            codes.append(number)
    return (min(codes) + max(codes)) / 2 if codes else 0.0


# --- sufficient statistics (one read of the answers per wave) ---------------------------------------------


@dataclass
class _Sums:
    """Per cell key of the design (rows, sorted by key: the jurisdiction, with the stratum and PSU when
    ``[columns] strata`` / ``cluster`` name them, as the tables key their cells): counts and the
    listwise-valid weighted sums. ``s`` is (keys, p+1, p+1) over (1, x₀ … x_k): s[:, 0, 0] = Σw,
    s[:, 0, j] = Σw·x_j, s[:, i, j] = Σw·x_i·x_j. ``tops`` holds, for each attribute with a top box (by
    its variable index), the sums of its own valid answers (not the listwise base): n, Σw, Σw², and Σw,
    Σw² of its top-box answers."""

    keys: list[str]
    jurisdictions: list[str]
    strata: list[str]
    psus: list[str] | None  # None: the respondents are their own PSUs
    respondents: np.ndarray
    n: np.ndarray
    excluded_user_missing: np.ndarray
    excluded_blank: np.ndarray
    sw2: np.ndarray
    s: np.ndarray
    low: np.ndarray  # (keys, p): min of each variable over the listwise-valid respondents (NaN: none)
    high: np.ndarray
    user_missing: np.ndarray  # (keys, p): respondents whose answer is user-missing
    blank: np.ndarray
    tops: dict[int, dict[str, np.ndarray]]  # variable index -> {n, w, w2, top_w, top_w2}: (keys,)


def _text(expr: str) -> str:
    return f"coalesce(CAST({expr} AS VARCHAR), '')"  # as stats.design keys its strata and PSUs


def _base_sql(model: _Model) -> str:
    """The wave's respondents with each variable shifted by its centre, whether each is valid, whether it
    is in its top box, and the design cell key (with the stratum and PSU text beside it when named)."""
    values, flags = [], []
    for i, (expr, specs, centre) in enumerate(zip(model.expressions, model.missing, model.centres, strict=True)):
        x = f"CAST({expr} AS DOUBLE)"
        values.append(f"{x} - {centre!r} AS v{i}")
        flags.append(f"{x} IS NULL AS b{i}")
        flags.append(f"coalesce({missing_condition(x, specs)}, FALSE) AS u{i}")
        if i > 0 and model.top(i):
            flags.append(f"coalesce({x} IN ({', '.join(repr(float(c)) for c in model.top(i))}), FALSE) AS t{i}")
    return (
        f"SELECT _id, {', '.join(_cell_columns(model))}, CAST(_weight AS DOUBLE) AS w, {', '.join(values)}, "
        f"{', '.join(flags)} "
        f"FROM {wave_table(model.wave)}"
    )


def _valid_sql(p: int) -> str:
    return " AND ".join(f"NOT b{i} AND NOT u{i}" for i in range(p))


def _wave_sums(con: duckdb.DuckDBPyConnection, model: _Model, *, boxes: bool = True) -> _Sums:
    """The wave's sums (see _Sums); ``boxes``: with the attributes' top-box sums.

    The outcome's and attributes' answers are read once (a dozen columns of the wave) and summed in numpy
    per design cell: one (p+1)×(p+1) cross-product per cell costs a fraction of the (p+1)(p+2)/2 + 5p
    aggregates of a SQL scan. Arrays are (variables, respondents), respondents grouped by cell in their
    storage order, so every sum is taken in the same order every run."""
    p = model.k + 1
    design = model.design
    cells = con.sql(_cells_sql(model)).fetchall()
    keys = [str(row[0]) for row in cells]
    answers = ", ".join(f"CAST({expr} AS DOUBLE) AS x{i}" for i, expr in enumerate(model.expressions))
    data = con.sql(
        f"SELECT {design.key_sql} AS key, CAST(_weight AS DOUBLE) AS w, {answers} FROM {wave_table(model.wave)}"
    ).to_arrow_table()
    # each respondent's cell by a hash lookup of its key (Arrow's index_in), in storage order
    cell = pc.index_in(data.column("key"), value_set=pa.array(keys, pa.string())).to_numpy(zero_copy_only=False)
    cell = np.asarray(cell, dtype=np.int64)
    order = np.argsort(cell, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(cell[order]) != 0]) if len(cell) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(cell)]
    raw = np.empty((p, len(cell)))
    for i in range(p):
        raw[i] = _floats(data.column(f"x{i}"))[order]
    weight = _floats(data.column("w"))[order]
    blank = np.isnan(raw)
    user_missing = np.stack([_user_missing(model.missing[i], raw[i]) for i in range(p)])
    valid = ~(blank | user_missing)
    ok = valid.all(axis=0)
    any_blank = blank.any(axis=0)
    weighted = ~np.isnan(weight)  # a NULL weight adds to no sum (as SQL's sum skips it); its respondent counts
    wv = np.where(ok & weighted, weight, 0.0)
    x = np.empty((p + 1, len(cell)))
    x[0] = 1.0
    np.subtract(raw, np.asarray(model.centres)[:, None], out=x[1:])
    x[1:, ~ok] = 0.0
    xw = x * wv
    # einsum, not a BLAS matrix product, whose threads may split a sum: the CSV must be the same every run
    s = np.stack([np.einsum("in,jn->ij", xw[:, a:b], x[:, a:b]) for a, b in zip(starts, ends, strict=True)])
    flags = np.vstack([np.ones(len(cell), dtype=bool), ok, ~ok & ~any_blank, any_blank, user_missing, blank])
    counts = np.add.reduceat(flags.astype(np.int64), starts, axis=1)
    tops = {}
    for i in [i for i in range(1, p) if model.top(i)] if boxes else []:
        aw = np.where(valid[i] & weighted, weight, 0.0)
        tw = np.where(np.isin(raw[i], model.top(i)), aw, 0.0)
        box = np.add.reduceat(np.vstack([valid[i], aw, aw * aw, tw, tw * tw]), starts, axis=1)
        tops[i] = dict(zip(("n", "w", "w2", "top_w", "top_w2"), box, strict=True))
    jurisdictions = [str(row[1]) for row in cells]
    return _Sums(
        keys=keys,
        jurisdictions=jurisdictions,
        strata=[str(row[2]) for row in cells] if len(cells[0]) > 2 else jurisdictions,
        psus=[str(row[3]) for row in cells] if len(cells[0]) > 3 else None,
        respondents=counts[0],
        n=counts[1],
        excluded_user_missing=counts[2],
        excluded_blank=counts[3],
        sw2=np.add.reduceat(wv * wv, starts),
        s=s,
        low=np.minimum.reduceat(np.where(ok, x[1:], np.inf), starts, axis=1).T,
        high=np.maximum.reduceat(np.where(ok, x[1:], -np.inf), starts, axis=1).T,
        user_missing=counts[4 : 4 + p].T,
        blank=counts[4 + p :].T,
        tops=tops,
    )


def _cells_sql(model: _Model) -> str:
    """The wave's design cells, sorted by key: key, jurisdiction, and the stratum and PSU text where
    ``[columns] strata`` / ``cluster`` name them."""
    return f"SELECT DISTINCT {', '.join(_cell_columns(model))} FROM {wave_table(model.wave)} ORDER BY key"


def _cell_columns(model: _Model) -> list[str]:
    """SQL of a respondent's design cell: key, jurisdiction, and stratum and PSU text where named."""
    design = model.design
    parts = [f"{design.key_sql} AS key", "_jurisdiction AS jur"]
    if design.key_sql != "_jurisdiction":
        parts.append(f"{_text(design.stratum_sql)} AS stratum")
        if design.psu_sql is not None:
            parts.append(f"{_text(design.psu_sql)} AS psu")
    return parts


def _user_missing(specs: tuple[MissingSpec, ...], values: np.ndarray) -> np.ndarray:
    """Where numeric ``values`` are declared user-missing, as ``sql.missing_condition`` decides it for a
    numeric column (a blank, NaN, is not user-missing)."""
    out = np.zeros(values.shape, dtype=bool)
    for spec in specs:
        if spec.kind == "value" and spec.low is not None:
            out |= values == spec.low
        elif spec.kind == "range":
            low = -np.inf if spec.low is None else float(spec.low)
            high = np.inf if spec.high is None else float(spec.high)
            out |= (values >= low) & (values <= high)
    return out


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column as float64, NULL as NaN (a blank answer, a weight to skip)."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _membership(config: StudyConfig, scopes: list[str], jurisdictions: list[str]) -> np.ndarray:
    """(scopes, keys): 1 where the key's jurisdiction belongs to the scope."""
    out = np.zeros((len(scopes), len(jurisdictions)))
    for row, scope in enumerate(scopes):
        if scope == "all":
            out[row, :] = 1
            continue
        wanted = {scope} if scope in config.jurisdictions else set(config.subscribers[scope].jurisdictions)
        out[row, [i for i, j in enumerate(jurisdictions) if j in wanted]] = 1
    return out


# --- the attributes' top-2 boxes, as the tables compute and withhold them --------------------------------


@dataclass(frozen=True)
class _Units:
    """How the keys make up the design's units and strata: ``unit`` (keys, units) and ``stratum``
    (units, strata) 0/1 matrices, ``n_h`` (strata,) the units of each stratum over the whole wave, and
    whether the units are PSUs (else each unit is a stratum's respondents)."""

    unit: np.ndarray
    stratum: np.ndarray
    n_h: np.ndarray
    clustered: bool

    @classmethod
    def of(cls, sums: _Sums) -> _Units:
        strata = sorted(set(sums.strata))
        h_index = {h: i for i, h in enumerate(strata)}
        if sums.psus is None:  # respondents are the PSUs: one unit per stratum holds their z-sums
            units = strata
            of_key = [h_index[h] for h in sums.strata]
            unit_stratum = list(range(len(strata)))
            n_h = np.zeros(len(strata))
            np.add.at(n_h, of_key, sums.respondents)
        else:
            pairs = sorted(set(zip(sums.strata, sums.psus, strict=True)))
            u_index = {pair: i for i, pair in enumerate(pairs)}
            units = pairs
            of_key = [u_index[pair] for pair in zip(sums.strata, sums.psus, strict=True)]
            unit_stratum = [h_index[h] for h, _ in pairs]
            n_h = np.bincount(unit_stratum, minlength=len(strata)).astype(np.float64)
        unit = np.zeros((len(sums.keys), len(units)))
        unit[np.arange(len(sums.keys)), of_key] = 1
        stratum = np.zeros((len(units), len(strata)))
        stratum[np.arange(len(units)), unit_stratum] = 1
        return cls(unit, stratum, n_h, sums.psus is not None)

    def variance(self, t: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The linearised variances (scopes,) from each key's Σz (``t``) and Σz² (``q``), (scopes, keys),
        as stats.rollup sums them: per unit T = Σt and Q = Σq (or T² for a PSU), per stratum
        n_h/(n_h − 1)·(ΣQ − (ΣT)²/n_h), a stratum of one unit (ΣT)²."""
        big_t = t @ self.unit
        big_q = big_t * big_t if self.clustered else q @ self.unit
        th, qh = big_t @ self.stratum, big_q @ self.stratum
        n_h = self.n_h[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            part = np.where(n_h > 1, n_h / (n_h - 1.0) * np.maximum(qh - th * th / n_h, 0), th * th)
        return part.sum(axis=1)


def _topboxes(
    config: StudyConfig, model: _Model, sums: _Sums, members: np.ndarray, scopes: list[str]
) -> dict[tuple[str, str], float | None]:
    """{(scope, attribute): top-2 box in percent} as ``stats.tabulate`` reports it, from the sums of the
    regression's scan: the weighted share of the top-box codes among the attribute's valid answers, None
    where the tables withhold it (unweighted base under ``[tables] min_base``, effective base under
    ``min_effective_base``, or a CV above ``cv_suppress``: the F flag) or the attribute has no top box.
    The CV is the tables' own: the linearised variance of the domain ratio over the design's strata and
    PSUs, or Kish's p(1−p)/n_eff with ``variance = "kish"``."""
    t_cfg = config.tables
    units = _Units.of(sums)
    found: dict[tuple[str, str], float | None] = {}
    for i, top in sums.tops.items():
        n, w, w2 = members @ top["n"], members @ top["w"], members @ top["w2"]
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(w > 0, (members @ top["top_w"]) / w, np.nan)
            kish_n = np.where(w2 > 0, w * w / w2, np.nan)
            if t_cfg.variance == "kish":
                var = np.maximum(p * (1 - p), 0) / kish_n
            else:  # each key's Σz and Σz² of z = w(y − p)/W, y = 1 in the top box; 0 outside the scope
                bw, pk = w[:, None], p[:, None]
                t = members * (top["top_w"][None, :] - pk * top["w"][None, :]) / bw
                q = (
                    members
                    * (top["top_w2"][None, :] * (1 - pk) ** 2 + (top["w2"][None, :] - top["top_w2"][None, :]) * pk * pk)
                    / (bw * bw)
                )
                var = units.variance(np.nan_to_num(t), np.nan_to_num(q))
            eff = np.where((var > 0) & (p > 0) & (p < 1), p * (1 - p) / var, kish_n)
            cv = np.where(p > 0, np.sqrt(var) / p, np.nan)
        for row, scope in enumerate(scopes):
            value = None if np.isnan(p[row]) else float(100.0 * p[row])
            withheld = n[row] < t_cfg.min_base or (
                t_cfg.min_effective_base > 0 and np.nan_to_num(eff[row]) < t_cfg.min_effective_base
            )
            if t_cfg.cv_suppress > 0 and cv[row] > t_cfg.cv_suppress / 100:  # NaN compares False: no flag
                withheld = True
            found[(scope, model.names[i])] = None if withheld else value
    return found


# --- bootstrap replicates --------------------------------------------------------------------------------


def _replicate_sums(con: duckdb.DuckDBPyConnection, model: _Model, sums: _Sums, config: StudyConfig) -> np.ndarray:
    """(replicates, keys, p+1, p+1): the sums of every replicate (Rao-Wu rescaling bootstrap within the
    design's strata: ``[columns] strata``, else the jurisdictions; the units drawn are the PSUs with
    ``[columns] cluster``, else the respondents).

    Only the listwise-valid respondents are read (key, weight and shifted answers, in a fixed order); the
    draws of a stratum are over all its n_h units (``_Units``), those without a valid respondent
    contributing nothing. A respondent whose unit is drawn r times gets the weight w·r·n_h/(n_h − 1)."""
    p = model.k + 1
    ok = _valid_sql(p)
    values = ", ".join(f"v{i}" for i in range(p))
    data = con.sql(f"SELECT key, w, {values} FROM ({_base_sql(model)}) WHERE {ok} ORDER BY key, _id").fetchnumpy()
    position = {k: i for i, k in enumerate(sums.keys)}
    row_key = np.asarray([position[str(k)] for k in data["key"]], dtype=np.int64)
    weights = np.asarray(data["w"], dtype=np.float64)
    x = np.column_stack([np.ones(len(weights))] + [np.asarray(data[f"v{i}"], dtype=np.float64) for i in range(p)])
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(weights), (p + 1) ** 2)
    count = config.drivers.replicates
    rng = np.random.default_rng([config.drivers.seed, model.wave])
    out = np.zeros((count, len(sums.keys), p + 1, p + 1))
    key_stratum = np.asarray(sums.strata, dtype=object)
    key_psu = None if sums.psus is None else np.asarray(sums.psus, dtype=object)
    n_h = _Units.of(sums).n_h
    for h, stratum in enumerate(sorted(set(sums.strata))):  # every stratum draws, in order: reproducible
        rows = np.flatnonzero(key_stratum[row_key] == stratum)  # in (key, _id) order
        if key_psu is None:
            unit_of_row, used = np.arange(len(rows)), len(rows)
        else:
            psus, unit_of_row = np.unique(key_psu[row_key[rows]].astype(str), return_inverse=True)
            used = len(psus)
        units = int(n_h[h])
        if units >= 2:
            # n_h − 1 draws over the stratum's n_h units; the first `used` positions are those with valid rows
            draws = rng.multinomial(units - 1, np.full(units, 1.0 / units), size=count)[:, :used]
            factor = draws[:, unit_of_row] * (units / (units - 1))
        else:  # a stratum of one unit cannot be resampled: it keeps its weights in every replicate
            factor = np.ones((count, len(rows)))
        weighted = factor * weights[rows]
        for key in np.unique(row_key[rows]):
            mine = row_key[rows] == key
            out[:, key] = (weighted[:, mine] @ outer[rows[mine]]).reshape(count, p + 1, p + 1)
    return out


# --- from sums to importances ----------------------------------------------------------------------------


def _correlations(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation matrices and variances (…, p, p) / (…, p) from sums (…, p+1, p+1) (see _Sums)."""
    total = s[..., 0, 0][..., None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s[..., 0, 1:] / s[..., 0, 0][..., None]
        cov = s[..., 1:, 1:] / total - mean[..., :, None] * mean[..., None, :]
        var = np.diagonal(cov, axis1=-2, axis2=-1)
        scale = np.sqrt(var)
        corr = cov / (scale[..., :, None] * scale[..., None, :])
    return corr, var


@cache
def _subsets(k: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Popcounts of the 2^k subset masks, and per size s ≥ 1 the masks of that size with their member
    indices (C(k, s), s)."""
    masks = np.arange(1 << k)
    bits = (masks[:, None] >> np.arange(k)) & 1
    sizes = bits.sum(axis=1)
    groups = []
    for size in range(1, k + 1):
        chosen = masks[sizes == size]
        members = np.nonzero(bits[chosen])[1].reshape(len(chosen), size)
        groups.append((chosen, members))
    return sizes, groups


def subset_r2(corr: np.ndarray) -> np.ndarray:
    """R² of every subset of the attributes: (…, 2^k) from correlation matrices (…, k+1, k+1) whose index
    0 is the outcome; entry ``mask`` is the R² of the attributes whose bits are set (0 for the empty set)."""
    k = corr.shape[-1] - 1
    batch = corr.shape[:-2]
    flat = corr.reshape((-1, k + 1, k + 1))
    out = np.zeros((flat.shape[0], 1 << k))
    _, groups = _subsets(k)
    for masks, members in groups:
        idx = members + 1
        size = idx.shape[1]
        step = max(1, _CHUNK // max(1, len(masks) * size * size))
        for start in range(0, flat.shape[0], step):
            part = flat[start : start + step]
            blocks = part[:, idx[:, :, None], idx[:, None, :]]  # (b, C, s, s)
            rhs = part[:, 0, idx]  # (b, C, s)
            out[start : start + step, masks] = _dot_last(rhs, _solve(blocks, rhs))
    return out.reshape((*batch, 1 << k))


# A scope's figures must not depend on which other scopes share its batch: numpy's and BLAS's reductions
# (sum, @, einsum) may add in another order for another batch shape, so the two sums over the last axis
# are written as element-wise steps in a fixed order.


def _dot_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ a·b over the last axis, added left to right (a few terms: a subset's size)."""
    out = a[..., 0] * b[..., 0]
    for i in range(1, a.shape[-1]):
        out = out + a[..., i] * b[..., i]
    return out


def _pairwise_sum(x: np.ndarray) -> np.ndarray:
    """Σ over the last axis, whose length is a power of two, by halving (a pairwise sum)."""
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


def _solve(blocks: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """blocks⁻¹ · rhs, batched (b, C, s, s); a scope (b) with a singular block (attributes perfectly
    collinear in it) is solved with the pseudo-inverse, which gives the R² of the projection on the
    subset's span; the other scopes of the batch are not."""
    try:
        return np.linalg.solve(blocks, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty_like(rhs)
        for b in range(blocks.shape[0]):
            try:
                out[b] = np.linalg.solve(blocks[b], rhs[b][..., None])[..., 0]
            except np.linalg.LinAlgError:
                out[b] = (np.linalg.pinv(blocks[b], rcond=1e-12, hermitian=True) @ rhs[b][..., None])[..., 0]
        return out


def shapley(corr: np.ndarray) -> np.ndarray:
    """Shapley (LMG) shares of R², (…, k), exact over all subsets, from correlation matrices (…, k+1, k+1)
    (index 0 the outcome). They sum to the full model's R²."""
    k = corr.shape[-1] - 1
    r2 = subset_r2(corr)
    sizes, _ = _subsets(k)
    weights = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)])
    masks = np.arange(1 << k)
    out = np.empty((*corr.shape[:-2], k))
    for j in range(k):
        without = masks[(masks >> j) & 1 == 0]
        gain = r2[..., without | (1 << j)] - r2[..., without]
        out[..., j] = _pairwise_sum(gain * weights[sizes[without]])
    return out


def relative_weights(corr: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights, (…, k), from correlation matrices (…, k+1, k+1) (index 0 the
    outcome); they sum to the full model's R²."""
    rxx, rxy = corr[..., 1:, 1:], corr[..., 1:, 0]
    values, vectors = np.linalg.eigh(rxx)
    root = vectors @ (np.sqrt(np.clip(values, 0, None))[..., :, None] * np.swapaxes(vectors, -1, -2))
    beta = (np.linalg.pinv(root, rcond=1e-12, hermitian=True) @ rxy[..., None])[..., 0]
    return ((root * root) @ (beta * beta)[..., None])[..., 0]


def _shares(corr: np.ndarray) -> tuple[np.ndarray, str]:
    k = corr.shape[-1] - 1
    return (shapley(corr), SHAPLEY) if k <= EXACT_MAX else (relative_weights(corr), RELATIVE_WEIGHTS)


# --- putting a scope together ----------------------------------------------------------------------------


def _performance(wave: int, model: _Model, tables: Any) -> dict[tuple[str, str], float | None]:
    """{(scope, attribute): top-2 box} from the tables' summaries: core questions only (a subscriber's
    custom question may share an attribute's name) and, in tables with banners, the Total rows only (a
    banner column's summary has the same wave, scope and question)."""
    if tables is None:
        return {}
    table = tables.summaries_table
    keep = pc.and_(pc.equal(table.column("wave"), wave), pc.equal(table.column("kind"), "single"))
    keep = pc.and_(keep, pc.is_in(table.column("question"), value_set=pa.array(model.names[1:], pa.string())))
    if "banner" in table.column_names:
        keep = pc.and_(keep, pc.equal(pc.fill_null(table.column("banner"), ""), ""))
    rows = table.filter(keep)
    return dict(
        zip(
            zip(rows.column("scope").to_pylist(), rows.column("question").to_pylist(), strict=True),
            rows.column("topbox").to_pylist(),
            strict=True,
        )
    )


@dataclass
class _Rolled:
    """The wave's per-jurisdiction sums rolled up to the scopes (sums of their jurisdictions' rows)."""

    s: np.ndarray  # (scopes, p+1, p+1)
    counts: dict[str, np.ndarray]  # respondents, n, excluded_user_missing, excluded_blank, sw2: (scopes,)
    user_missing: np.ndarray  # (scopes, p)
    blank: np.ndarray
    low: np.ndarray  # (scopes, p): min over the listwise base (inf: nobody)
    high: np.ndarray
    replicates: np.ndarray | None  # (scopes, B, p+1, p+1)

    @classmethod
    def of(cls, sums: _Sums, members: np.ndarray, replicates: np.ndarray | None) -> _Rolled:
        inside = members[:, :, None] > 0
        return cls(
            s=np.einsum("sk,kij->sij", members, sums.s),
            counts={
                name: members @ getattr(sums, name).astype(np.float64)
                for name in ("respondents", "n", "excluded_user_missing", "excluded_blank", "sw2")
            },
            user_missing=members @ sums.user_missing,
            blank=members @ sums.blank,
            low=np.where(inside, sums.low[None], np.inf).min(axis=1),
            high=np.where(inside, sums.high[None], -np.inf).max(axis=1),
            replicates=np.einsum("sk,bkij->sbij", members, replicates) if replicates is not None else None,
        )

    def base(self, wave: int, scope: str, i: int) -> dict[str, Any]:
        """The scope's row of the scopes table, without its status."""
        n, sw2, total = int(self.counts["n"][i]), self.counts["sw2"][i], self.s[i, 0, 0]
        return {
            "wave": wave,
            "scope": scope,
            "respondents": int(self.counts["respondents"][i]),
            "n": n,
            "n_eff": total * total / sw2 if n > 0 and sw2 > 0 else None,
            "excluded_user_missing": int(self.counts["excluded_user_missing"][i]),
            "excluded_blank": int(self.counts["excluded_blank"][i]),
        }


def _analyse(
    config: StudyConfig,
    model: _Model,
    sums: _Sums,
    members: np.ndarray,
    scopes: list[str],
    performance: dict[tuple[str, str], float | None],
    replicates: np.ndarray | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(attribute rows, scope rows) of every scope. The scopes whose regressions use the same attributes
    are decomposed in one batch (one set of batched solves for all of them)."""
    rolled = _Rolled.of(sums, members, replicates)
    bases, reasons, indexes = [], [], []
    for i, scope in enumerate(scopes):
        base = rolled.base(model.wave, scope, i)
        constant = rolled.low[i] == rolled.high[i]  # (p,): every listwise-valid answer the same
        outcome_counts = int(rolled.user_missing[i, 0]), int(rolled.blank[i, 0])
        bases.append(base)
        reasons.append(
            _skip_reason(model, config.drivers.min_base, base["n"], *outcome_counts, constant, rolled.low[i])
        )
        indexes.append((0, *(j + 1 for j in range(model.k) if not constant[j + 1])))
    shares_of: dict[int, tuple[np.ndarray, str]] = {}
    for index in dict.fromkeys(ix for ix, reason in zip(indexes, reasons, strict=True) if not reason):
        batch = [i for i, ix in enumerate(indexes) if ix == index and not reasons[i]]
        corr, _ = _correlations(rolled.s[batch])
        shares, method = _shares(corr[:, index][:, :, index])
        shares_of.update({i: (shares[b], method) for b, i in enumerate(batch)})
    rows: list[dict[str, Any]] = []
    scope_rows: list[dict[str, Any]] = []
    for i, scope in enumerate(scopes):
        base, reason = bases[i], reasons[i]
        if reason:
            scope_rows.append({**base, "status": "skipped", "reason": reason, "r2": None, "method": None})
            continue
        shares, method = shares_of[i]
        r2 = float(shares.sum())
        if r2 <= 0:
            reason = f"R² of {model.names[0]} on the attributes is 0: nothing to share out"
            scope_rows.append({**base, "status": "skipped", "reason": reason, "r2": r2, "method": method})
            continue
        index = list(indexes[i])
        used = [j - 1 for j in index[1:]]
        full = np.zeros(model.k)
        full[used] = shares
        interval = None
        if rolled.replicates is not None:
            interval = np.zeros((2, model.k))
            interval[:, used] = _interval(rolled.replicates[i], index, config.tables.confidence)
        scope_rows.append({**base, "status": "ok", "reason": "", "r2": r2, "method": method})
        fit = {"r2": r2, "n": base["n"], "n_eff": base["n_eff"], "method": method}
        constant = rolled.low[i] == rolled.high[i]
        rows += _attribute_rows(model, scope, full, interval, fit, performance, rolled, i, constant)
    return rows, scope_rows


def _attribute_rows(
    model: _Model,
    scope: str,
    shares: np.ndarray,
    interval: np.ndarray | None,
    fit: dict[str, Any],
    performance: dict[tuple[str, str], float | None],
    rolled: _Rolled,
    i: int,
    constant: np.ndarray,
) -> list[dict[str, Any]]:
    """One scope's rows, in the configured attribute order."""
    importance = 100.0 * shares / fit["r2"]
    perf = [performance.get((scope, a)) for a in model.names[1:]]
    quadrants, ranks = _quadrants(importance, perf), _ranks(importance)
    rows = []
    for j, attribute in enumerate(model.names[1:]):
        note = ""
        if constant[j + 1]:
            value = _code(rolled.low[i, j + 1] + model.centres[j + 1])
            note = f"constant in this scope (every valid answer is {value}): no variance to explain the outcome, importance 0"
        rows.append(
            {
                "wave": model.wave,
                "scope": scope,
                "outcome": model.names[0],
                "attribute": attribute,
                "label": model.labels[j + 1],
                "importance": float(importance[j]),
                "importance_rank": ranks[j],
                "r2": fit["r2"],
                "n": fit["n"],
                "n_eff": fit["n_eff"],
                "performance": perf[j],
                "quadrant": quadrants[j],
                "method": fit["method"],
                "importance_ci_low": None if interval is None else float(interval[0, j]),
                "importance_ci_high": None if interval is None else float(interval[1, j]),
                "r2_share": float(shares[j]),
                "user_missing": int(rolled.user_missing[i, j + 1]),
                "blank": int(rolled.blank[i, j + 1]),
                "note": note,
            }
        )
    return rows


def _skip_reason(
    model: _Model,
    min_base: int,
    n: int,
    outcome_user_missing: int,
    outcome_blank: int,
    constant: np.ndarray,
    low: np.ndarray,
) -> str:
    """Why a scope gets no drivers ('' when it gets them)."""
    outcome = model.names[0]
    if n == 0 and not np.isfinite(low[0]):
        return (
            f"no respondent with a valid answer to {outcome} and to every attribute "
            f"({outcome}: {outcome_user_missing} user-missing, {outcome_blank} blank)"
        )
    if n < min_base:
        return f"listwise valid base {n} < [drivers] min_base {min_base}"
    if constant[0]:
        return f"the outcome {outcome} is constant in this scope (every valid answer is {_code(low[0] + model.centres[0])})"
    if constant[1:].all():
        return "every attribute is constant in this scope: nothing can explain the outcome"
    return ""


def _code(value: float) -> str:
    return code_text(round(value, 9))


def _interval(reps: np.ndarray, index: list[int], confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the importances (percent) over the replicates (B, p+1, p+1) of one scope."""
    corr, var = _correlations(reps)
    corr = corr[:, index][:, :, index]
    usable = np.all(var[:, index] > 0, axis=1) & np.all(np.isfinite(corr), axis=(1, 2))
    shares, _ = _shares(corr[usable])
    percent = 100.0 * shares / shares.sum(axis=1, keepdims=True)
    alpha = (1 - confidence) / 2
    return np.quantile(percent, alpha, axis=0), np.quantile(percent, 1 - alpha, axis=0)


def _ranks(importance: np.ndarray) -> list[int]:
    """Competition ranking, 1 = the largest importance; equal values (to 1e-9 percent) share a rank."""
    rounded = np.round(importance, 9)
    return [int(1 + np.sum(rounded > value)) for value in rounded]


def _quadrants(importance: np.ndarray, performance: list[float | None]) -> list[str]:
    known = [p for p in performance if p is not None]
    mean_importance = 100.0 / len(importance)
    mean_performance = sum(known) / len(known) if known else None
    out = []
    for value, perf in zip(importance, performance, strict=True):
        if perf is None or mean_performance is None:
            out.append("")
        elif value > mean_importance:
            out.append("priority" if perf < mean_performance else "strength")
        else:
            out.append("secondary" if perf < mean_performance else "surplus")
    return out


def _arrow(rows: list[dict[str, Any]], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array([r[name] for r in rows], type=t) for name, t in types.items()})


def _meta(config: StudyConfig, wave: int, model: _Model, weight: str) -> dict[str, Any]:
    spec = config.drivers
    return {
        "wave": wave,
        "outcome": model.names[0],
        "attributes": list(model.names[1:]),
        "weight": weight,
        "min_base": spec.min_base,
        "replicates": spec.replicates,
        "seed": spec.seed,
        "confidence": confidence_label(config.tables.confidence),
        "method": {
            SHAPLEY: "Shapley value (LMG) of each attribute in the R² of the weighted least-squares regression of "
            "the outcome on the attributes, exact over all 2^k subsets (k <= 15): "
            "Σ_{S ⊆ others} |S|!(k−|S|−1)!/k! · (R²(S∪{j}) − R²(S)), R²(S) = r_Sᵀ R_SS⁻¹ r_S on the weighted "
            "correlation matrix",
            RELATIVE_WEIGHTS: "Johnson's relative weights (k > 15): R_xx = QΛQᵀ, Λ½ = QΛ^½Qᵀ, β = Λ½⁻¹ r, "
            "weight_j = Σ_k Λ½_jk² β_k²",
        },
        "importance": "100 × the attribute's share / R² (sums to 100 within a scope)",
        "listwise": "respondents with a valid answer (not user-missing, not blank) to the outcome and every "
        "attribute; respondents = n + excluded_user_missing + excluded_blank",
        "n_eff": "Kish: (Σw)² / Σw² over the listwise base",
        "performance": "the attribute's top-2 box in the scope (percent of its valid answers) as the tables report "
        "it, empty where they withhold it (min_base, min_effective_base, F by its CV)",
        "quadrant": "priority: importance > 100/k and performance < the scope's mean performance; strength: "
        "importance > 100/k, performance >= mean; surplus: importance <= 100/k, performance >= mean; "
        "secondary: importance <= 100/k, performance < mean",
        "constant_attribute": "an attribute with one valid value in a scope is left out of its regression and "
        "gets importance 0 with a note",
        "bootstrap": (
            f"{spec.replicates} Rao-Wu rescaling bootstrap replicates (m_h = n_h − 1) within the design's "
            f"strata, drawing its PSUs (the respondents without clusters; {model.design.description}), "
            f"seed {spec.seed}; percentile interval"
            if spec.replicates
            else "none ([drivers] replicates = 0)"
        ),
    }
