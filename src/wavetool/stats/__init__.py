"""Weighted tables: frequencies, top/bottom boxes, means, confidence intervals, significance tests and
small-cell suppression, for any wave and scope.

``tabulate(config, wave, scopes=[...])`` is the one entry point the CLI, the PDF report and the CSV
export share, so they never disagree. A scope is ``"all"``, a jurisdiction code or a subscriber id; a
subscriber's scope pools its jurisdictions and adds its own custom questions (no other scope sees them).
Each scope is compared with its benchmark (all other respondents of the wave, an independent sample) and
with the same scope in the previous wave.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codebook import MissingSpec, ensure_reviewed, harmonised_columns, harmonised_select
from ..config import StudyConfig
from ..custom import custom_select
from ..errors import ConfigError, InputMissingError
from ..store import quote, read_store, wave_table
from .banners import (
    NUMBER,
    BannerPlan,
    banner_columns,
    banner_meta,
    combine,
    domain_tables,
    drop_numbers,
    mr_cells,
    number_respondents,
    numbered,
    numbered_by_id,
    plan_banners,
    refined_keys,
    single_cells,
)
from .design import Design, custom_key, custom_key_sql, design_tables, wave_design
from .drivers import Drivers
from .drivers import compute as _compute_drivers
from .frequencies import CELL_SCHEMA, MR_SCHEMA, fetch_cells, fetch_single_cells, mr_cells_sql
from .output import ROW_KEYS_FIRST, Tables
from .questions import Question, custom_question_list, mr_sets, single_questions
from .rollup import Methods, aggregate, is_simple_design, report
from .significance import confidence_label, methods_meta, register_functions, test_name, z_critical

__all__ = [
    "ROW_KEYS_FIRST",
    "Drivers",
    "Tables",
    "all_scopes",
    "drivers",
    "resolve_scopes",
    "tabulate",
    "tabulate_waves",
    "weight_source",
]


ARROW_DECAY_MS = 30_000  # how long Arrow's allocator keeps a freed page for the next buffer (see below)


def _use_retaining_memory_pool() -> None:
    """Arrow's buffers from jemalloc, keeping freed pages for ARROW_DECAY_MS, unless ARROW_DEFAULT_MEMORY_POOL
    chooses a pool (the C library's allocator where pyarrow has no jemalloc). Every stage frees tables and
    allocates ones of the same sizes: pyarrow's default, mimalloc, and jemalloc at its default decay of 0
    hand freed pages back to the kernel at once, so each new buffer faults its pages in again; with the C
    library's allocator the banner run's two workers took three times the page faults of one. Alternating
    processes over the banner benchmark, the kept pages halved the faults (about 300,000 to 140,000 a run),
    cut system time from 1.0-1.3 s to 0.4-0.8 s, and the banner tables' median wall time by 8 % against the
    C library's allocator."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(ARROW_DECAY_MS)  # before the first allocation: it sets new arenas only
    except NotImplementedError:
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


_use_retaining_memory_pool()


def all_scopes(config: StudyConfig) -> list[str]:
    """``all``, every jurisdiction and every subscriber (the CLI's ``--all``)."""
    return ["all", *config.jurisdictions, *config.subscribers]


def resolve_scopes(config: StudyConfig, scopes: Iterable[str] | None) -> list[str]:
    """The requested scopes, checked against the config, duplicates dropped (default: ``["all"]``)."""
    result: list[str] = []
    for scope in scopes or ["all"]:
        if scope != "all" and scope not in config.jurisdictions and scope not in config.subscribers:
            raise ConfigError(
                f"{config.path}: {scope!r} is neither a jurisdiction code nor a subscriber id",
                hint=f"use all, a code from [jurisdictions] ({', '.join(config.jurisdictions)}) or a subscriber id "
                f"({', '.join(config.subscribers)})",
            )
        if scope not in result:
            result.append(scope)
    return result


def weight_source(con: duckdb.DuckDBPyConnection, wave: int) -> str:
    """'raked' when ``wavetool weight`` re-weighted the wave (its ``_weight`` holds the raked weight),
    'unweighted' when it was imported without a weight (``--weight none``: every weight 1), else 'vendor'
    (the weight delivered with the file)."""
    found = con.execute(
        "SELECT 1 FROM duckdb_columns() WHERE table_name = ? AND column_name = '_weight_raked'", [wave_table(wave)]
    ).fetchall()
    if found:
        return "raked"
    unweighted = con.execute("SELECT 1 FROM waves WHERE wave = ? AND weight_column = 'none'", [wave]).fetchall()
    return "unweighted" if unweighted else "vendor"


def tabulate(
    config: StudyConfig,
    wave: int,
    *,
    scopes: Sequence[str] | None = None,
    questions: Sequence[str] | None = None,
    weighted: bool = True,
    con: duckdb.DuckDBPyConnection | None = None,
    banners: Sequence[str] | None = None,
) -> Tables:
    """All tables of ``wave`` for ``scopes`` (default ``["all"]``), optionally only some ``questions``;
    with ``banners`` (core question names, e.g. ``["AGEGRP", "GENDER"]``), each scope's banner columns
    too, with their column tests (see :mod:`wavetool.stats.banners`).

    Raises DriftGateError when the wave or the one before it has unreviewed codebook drift, and
    InputMissingError when the wave is not imported or a question is unknown."""
    return tabulate_waves(
        config, [wave], scopes=scopes, questions=questions, weighted=weighted, con=con, banners=banners
    )


def tabulate_waves(
    config: StudyConfig,
    waves: Sequence[int],
    *,
    scopes: Sequence[str] | None = None,
    questions: Sequence[str] | None = None,
    weighted: bool = True,
    con: duckdb.DuckDBPyConnection | None = None,
    banners: Sequence[str] | None = None,
) -> Tables:
    """:func:`tabulate` for several waves at once; each wave's respondents are scanned once even when
    the wave is also the previous wave of another."""
    if con is None:
        with read_store(config.root) as own:
            return tabulate_waves(
                config, waves, scopes=scopes, questions=questions, weighted=weighted, con=own, banners=banners
            )
    return _tabulate(config, waves, scopes, questions, weighted, con, list(dict.fromkeys(banners or [])))


def drivers(
    config: StudyConfig,
    wave: int,
    *,
    scopes: Sequence[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    tables: Tables | None = None,
) -> Drivers:
    """The drivers of satisfaction of ``wave`` for ``scopes`` (default ``["all"]``): each ``[drivers]``
    attribute's share of the R² of the outcome, its top-2 box and quadrant (every field is defined in
    :mod:`wavetool.stats.drivers`).

    ``tables``: this wave's tables for these scopes, when already computed (``wavetool run`` passes its
    own; with banners, the Total rows are read); otherwise the attributes' top-2 boxes are computed with
    the regression's sums, as the tables compute and withhold them. Raises ConfigError when ``[drivers]``
    is not configured or names a question the wave lacks, InputMissingError when the wave is not
    imported, DriftGateError when its codebook drift is unreviewed."""
    if con is None:
        with read_store(config.root) as own:
            return drivers(config, wave, scopes=scopes, con=own, tables=tables)
    scope_list = resolve_scopes(config, scopes)
    return _compute_drivers(config, wave, scope_list, con, tables=tables, weight=weight_source(con, wave))


@contextlib.contextmanager
def _one_thread_per_query(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run every query on one DuckDB thread (waves still run in parallel, one per cursor).

    Floating-point sums depend on the order of addition, and DuckDB's threads combine partial sums in
    whatever order they finish, so two runs over the same data could differ in the last bit and the CSV
    bytes change. Summing on one thread per query makes the tables byte-for-byte reproducible.

    Also turns off DuckDB's partial aggregate pushdown meanwhile: it sums the cells by key before they are
    joined to their scopes, where they are already one row per key, and merging those partial sums after
    the join cost a third of the scopes' roll-up."""
    previous = con.execute("SELECT current_setting('threads'), current_setting('disabled_optimizers')").fetchall()[0]
    con.execute("SET threads = 1")
    disabled = ",".join(o for o in (previous[1], "partial_aggregate_pushdown") if o)
    con.execute(f"SET disabled_optimizers = '{disabled}'")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(previous[0])}")
        con.execute(f"SET disabled_optimizers = '{previous[1]}'")


def _tabulate(
    config: StudyConfig,
    waves: Sequence[int],
    scopes: Sequence[str] | None,
    questions: Sequence[str] | None,
    weighted: bool,
    con: duckdb.DuckDBPyConnection,
    banner_names: list[str] | None = None,
) -> Tables:
    scope_list = resolve_scopes(config, scopes)
    imported = {r[0] for r in con.execute("SELECT wave FROM waves").fetchall()}
    targets = sorted(set(waves))
    for wave in targets:
        config.wave(wave)
        if wave not in imported:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
            )
    ensure_reviewed(con, sorted({w for t in targets for w in (t, t - 1) if w >= 1}))
    needed = sorted(set(targets) | {t - 1 for t in targets if t - 1 in imported})
    request = _Request(
        config=config,
        scopes=scope_list,
        subscribers=[s for s in scope_list if s in config.subscribers and s not in config.jurisdictions],
        wanted=set(questions) if questions else None,
        weighted=weighted,
        targets=targets,
        banners=plan_banners(con, config, targets[-1], banner_names, single_questions(con, config, targets[-1]))
        if banner_names
        else None,
    )
    register_functions(con)
    with _one_thread_per_query(con):
        parts = _tables_by_wave(con, request, needed)
    if request.wanted:
        known = {q.name for part in parts if part.wave in targets for q in part.questions}
        unknown = sorted(request.wanted - known)
        if unknown:
            raise InputMissingError(
                f"wave {targets[0] if len(targets) == 1 else targets}: no question {', '.join(unknown)} to tabulate",
                hint="tabulated are numeric questions with value labels, multiple-response sets ($NAME) and custom "
                "questions; see `wavetool codebook --wave N`",
            )
    rows, summaries, audit = (
        pa.concat_tables(tables) for tables in zip(*(p.tables for p in parts if p.tables), strict=True)
    )
    if request.banners is not None:
        columns = [pa.concat_tables(t) for t in zip(*(p.banner_tables for p in parts if p.tables), strict=True)]
        rows, summaries, audit = combine((rows, summaries, audit), tuple(columns))
    meta = {
        "waves": targets,
        "scopes": scope_list,
        "weighted": weighted,
        "weight": {str(w): (weight_source(con, w) if weighted else "none") for w in targets},
        "min_base": config.tables.min_base,
        "confidence": confidence_label(config.tables.confidence),
        "test": test_name(config.tables.confidence, config.tables),
        "percent": "weighted percent of valid responses (user- and system-missing excluded), 0-100",
        "methods": methods_meta(config.tables, {str(p.wave): p.design.description for p in parts if p.wave in targets}),
    }
    if request.banners is not None:
        meta["banners"] = banner_meta(request.banners, config.tables.confidence)
    return Tables(rows, summaries, audit, meta)


class _Wave:
    """One wave's cells and question metadata, and (once aggregated) its roll-ups and statistics."""

    def __init__(self, wave: int) -> None:
        self.wave = wave
        self.cells: list[pa.Table] = []
        self.mr: list[pa.Table] = []
        self.questions: list[Question] = []
        self.keys: pa.Table | None = None  # see stats.design: key -> jurisdiction, owner, stratum, psu
        self.strata: pa.Table | None = None  # stratum -> n_h
        self.design: Design = Design()
        self.aggregates: dict[str, pa.Table] = {}
        self.metadata: dict[str, pa.Table] = {}
        self.tables: tuple[pa.Table, pa.Table, pa.Table] | None = None  # (rows, summaries, audit) of a target
        # banner columns (see stats.banners): refined cells and tables (their roll-ups are in aggregates)
        self.banner_cells: list[pa.Table] = []
        self.banner_mr: list[pa.Table] = []
        self.banner_tables: tuple[pa.Table, pa.Table, pa.Table] | None = None

    def aggregate_inputs(self, config: StudyConfig, scopes: list[str]) -> dict[str, pa.Table]:
        """The inputs of :func:`rollup.aggregate`; keeps the question metadata for the report stage."""
        cells = pa.concat_tables(self.cells) if self.cells else CELL_SCHEMA.empty_table()
        mr = pa.concat_tables(self.mr) if self.mr else MR_SCHEMA.empty_table()
        key_rows = self.keys.to_pylist()
        core = {r["key"]: r["jurisdiction"] for r in key_rows if r["owner"] is None}
        scope_rows, bench_rows = [], []
        for position, scope in enumerate(scopes):
            jurisdictions = _scope_jurisdictions(config, scope)
            members = {k for k, j in core.items() if jurisdictions is None or j in jurisdictions}
            scope_rows += [(scope, position, k) for k in sorted(members)]
            if scope in config.subscribers and scope not in config.jurisdictions:
                scope_rows += [(scope, position, r["key"]) for r in key_rows if r["owner"] == scope]
            if scope != "all":
                bench_rows += [(scope, k) for k in sorted(set(core) - members)]
        self.metadata = self._question_tables()
        return {
            "cells": cells,
            "mr": mr,
            **self.metadata,
            "scopes": _table(["scope", "spos", "key"], scope_rows, [pa.string(), pa.int32(), pa.string()]),
            "bench": _table(["scope", "key"], bench_rows, [pa.string(), pa.string()]),
            "keys": self.keys,
            "strata": self.strata,
        }

    def _question_tables(self) -> dict[str, pa.Table]:
        w = self.wave
        questions = self.questions
        return {
            "questions": _table(
                ["wave", "question", "name", "kind", "label", "owner", "qpos", "is_scale"],
                [(w, _qid(q), q.name, q.kind, q.label, q.owner, i, q.is_scale) for i, q in enumerate(questions)],
                [pa.int32(), pa.string(), pa.string(), pa.string(), pa.string(), pa.string(), pa.int32(), pa.bool_()],
            ),
            "codes": _table(
                ["wave", "question", "value", "label", "missing"],
                [(w, _qid(q), c, lbl, q.is_missing(c)) for q in questions for c, lbl in q.codes.items()],
                [pa.int32(), pa.string(), pa.float64(), pa.string(), pa.bool_()],
            ),
            "ranges": _table(
                ["wave", "question", "low", "high"],
                [(w, _qid(q), *_bounds(spec)) for q in questions for spec in q.missing if _bounds(spec)[0] is not None],
                [pa.int32(), pa.string(), pa.float64(), pa.float64()],
            ),
            "boxes": _table(
                ["wave", "question", "value", "top", "bottom"],
                [
                    (w, _qid(q), c, c in q.top, c in q.bottom)
                    for q in questions
                    for c in sorted(set(q.top) | set(q.bottom))
                ],
                [pa.int32(), pa.string(), pa.float64(), pa.bool_(), pa.bool_()],
            ),
            "items": _table(
                ["wave", "question", "item", "label", "ipos"],
                [(w, _qid(q), item.code, item.label, i) for q in questions for i, item in enumerate(q.items)],
                [pa.int32(), pa.string(), pa.string(), pa.string(), pa.int32()],
            ),
        }


def _report_inputs(part: _Wave, previous: _Wave | None, request: _Request) -> dict[str, pa.Table]:
    """The inputs of :func:`rollup.report` for one wave: its aggregates and question metadata, and the
    statistics of the previous wave (for the wave-on-wave tests). With banners, one report of the scopes
    and their banner columns (see _aggregated): the report works row by row (no sum spans two scopes), so
    each table comes out as from its own report, and the fixed cost of a report is paid once. The banner
    columns' positions follow the scopes'."""
    ids = request.scopes + ([d.id for d in request.banners.domains(request.scopes)] if request.banners else [])
    inputs = {**part.aggregates, **{name: part.metadata[name] for name in ("questions", "codes", "items")}}
    if previous is not None:
        inputs["stats"] = pa.concat_tables([part.aggregates["stats"], previous.aggregates["stats"]])
    inputs["scopes"] = _table(["scope", "spos"], [(s, i) for i, s in enumerate(ids)], [pa.string(), pa.int32()])
    inputs["targets"] = _table(["wave", "scope"], [(part.wave, s) for s in ids], [pa.int32(), pa.string()])
    return inputs


def _qid(question: Question) -> str:
    """The internal id of a question: a custom question is ``<subscriber>:<name>`` so it can never be
    summed with a core question or another subscriber's question of the same name."""
    return f"{question.owner}:{question.name}" if question.owner else question.name


def _bounds(spec: MissingSpec) -> tuple[float | None, float | None]:
    if spec.kind == "value":
        return (spec.low, spec.low) if spec.low is not None else (None, None)
    low = float("-inf") if spec.low is None else spec.low
    high = float("inf") if spec.high is None else spec.high
    return low, high


def _scope_jurisdictions(config: StudyConfig, scope: str) -> set[str] | None:
    """The jurisdictions a scope is made of (None: every one, including any not in the config)."""
    if scope == "all":
        return None
    if scope in config.jurisdictions:
        return {scope}
    return set(config.subscribers[scope].jurisdictions)


def _table(names: list[str], rows: list[tuple], types: list[pa.DataType]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return pa.table({n: pa.array(list(col), type=t) for n, col, t in zip(names, columns, types, strict=True)})


@dataclass(frozen=True)
class _Request:
    """What to tabulate (see tabulate_waves)."""

    config: StudyConfig
    scopes: list[str]
    subscribers: list[str]  # the subscribers among the scopes (their custom questions are scanned)
    wanted: set[str] | None  # only these questions, or all
    weighted: bool
    targets: list[int]  # the waves tabulated (the others scanned are previous waves)
    banners: BannerPlan | None = None  # banner columns to tabulate beside each scope


def _tables_by_wave(con: duckdb.DuckDBPyConnection, request: _Request, waves: list[int]) -> list[_Wave]:
    """Scan and aggregate each wave, then (for a target wave) compute its tables, on two threads (one per
    core): each stage is a few queries on its own cursor, and DuckDB runs each on one thread here (see
    _one_thread_per_query), so stages side by side use the machine. Returned in wave order.

    The stages are queued so that a wave's scan runs beside another wave's roll-up (see _stage_order):
    the scan's sums hold Python's lock for much of their time and the roll-up's queries do not, so two
    scans side by side wait for each other (two waves' scans at once ran 1.3 times as fast as one after
    the other). A stage waits only for stages queued before it (its wave's scan; for the tables, the
    previous wave's roll-up), which a thread has already taken, so the waits are short and never
    circular."""
    config = request.config
    parts: dict[int, _Wave] = {}
    scanned = {wave: threading.Event() for wave in waves}
    aggregated = {wave: threading.Event() for wave in waves}

    def scan(wave: int) -> None:
        cursor = con.cursor()
        try:
            parts[wave] = _collect_wave(
                cursor, config, wave, request.subscribers, request.wanted, request.weighted, request.banners
            )
        finally:
            cursor.close()
            scanned[wave].set()

    def finish(wave: int) -> None:
        scanned[wave].wait()
        part = parts.get(wave)
        cursor = con.cursor()
        try:
            try:
                if part is None:  # its scan failed, and says why
                    return
                part.aggregates = _aggregated(cursor, part, request)
            finally:
                aggregated[wave].set()
            if wave in request.targets:
                _wave_tables(cursor, request, part, _previous(parts, aggregated, wave))
        finally:
            cursor.close()

    stages = _stage_order(waves, scan, finish)
    workers = max(1, min(len(waves), os.cpu_count() or 1))
    if workers == 1:
        for stage in stages:
            stage()
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(stage) for stage in stages]:
                future.result()
    return [parts[wave] for wave in waves]


def _stage_order(
    waves: list[int], scan: Callable[[int], None], finish: Callable[[int], None]
) -> list[Callable[[], None]]:
    """The stages in queue order: each wave's scan one wave ahead of the roll-ups (scan 1, scan 2,
    finish 1, scan 3, finish 2, ..., finish n), so that after the first two scans each scan has a
    roll-up beside it."""
    order: list[Callable[[], None]] = []
    for i, wave in enumerate(waves):
        order.append(functools.partial(scan, wave))
        if i >= 1:
            order.append(functools.partial(finish, waves[i - 1]))
    if waves:
        order.append(functools.partial(finish, waves[-1]))
    return order


def _previous(parts: dict[int, _Wave], aggregated: dict[int, threading.Event], wave: int) -> _Wave | None:
    """The previous wave, once rolled up (None when it is not scanned, or its scan or roll-up failed: that
    stage's error is the one raised)."""
    if wave - 1 not in aggregated:
        return None
    aggregated[wave - 1].wait()
    previous = parts.get(wave - 1)
    return previous if previous is not None and previous.aggregates else None


def _wave_tables(cursor: duckdb.DuckDBPyConnection, request: _Request, part: _Wave, previous: _Wave | None) -> None:
    """A target wave's tables (and, with banners, its banner columns' tables) from its roll-ups and the
    previous wave's."""
    config = request.config
    tables = report(
        cursor,
        _report_inputs(part, previous, request),
        z=z_critical(config.tables.confidence),
        min_base=config.tables.min_base,
        test=test_name(config.tables.confidence, config.tables),
        methods=_methods(config),
    )
    if request.banners is None:
        part.tables = tables
    else:
        part.tables, columns = _split(tables, request.scopes)
        part.banner_tables = banner_columns(request.banners, request.scopes, columns, config.tables.confidence)


def _methods(config: StudyConfig) -> Methods:
    t = config.tables
    return Methods(
        z=z_critical(t.confidence),
        confidence=t.confidence,
        min_base=t.min_base,
        test=test_name(t.confidence, t),
        variance=t.variance,
        interval=t.interval,
        adjust=t.adjust,
        cv_caution=t.cv_caution,
        cv_suppress=t.cv_suppress,
        min_effective_base=t.min_effective_base,
    )


def _collect_wave(
    con: duckdb.DuckDBPyConnection,
    config: StudyConfig,
    wave: int,
    subscribers: list[str],
    wanted: set[str] | None,
    weighted: bool,
    banners: BannerPlan | None = None,
) -> _Wave:
    """Scan one wave: core single-response questions and MR sets, then each subscriber's custom ones
    (with ``banners``, their cells keyed by banner code too: see :func:`_scan`)."""
    out = _Wave(wave)
    out.design = design = wave_design(con, config, wave)
    singles_all = single_questions(con, config, wave)
    multiples = [m for m in mr_sets(con, wave, singles_all) if wanted is None or m.name in wanted]
    singles = [q for q in singles_all if wanted is None or q.name in wanted]
    keys = None  # with banners: the core keys by index in the respondents' cell numbers (see stats.banners)
    if banners is not None:  # dropped below; on an error, with the worker's cursor
        expressions = harmonised_columns(con, config, wave)
        keys = number_respondents(con, banners, wave_table(wave), design.key_sql, banners.bk_sql(expressions), weighted)
    if singles:
        expressions = harmonised_columns(con, config, wave)
        questions = [(expressions[q.name], q.name) for q in singles]
        source = wave_table(wave) if keys is None else numbered(wave_table(wave))
        _scan(con, out, banners, source, wave, questions, weighted, design.key_sql, keys)
    if multiples:
        select = harmonised_select(con, config, wave)
        if design.columns:  # the design columns are not among the harmonised questions
            select = select.replace(" FROM ", ", " + ", ".join(design.columns) + " FROM ", 1)
        if banners is None or keys is None:
            select = f"SELECT {design.key_sql} AS _wt_key, * FROM ({select})"
            out.mr.append(fetch_cells(con, mr_cells_sql(select, wave, multiples, weighted), MR_SCHEMA))
        else:  # keyed by the cell number (a projection of the wave table: still in its row order)
            select = f"SELECT {NUMBER} AS _wt_key, * FROM {numbered(f'({select})')}"
            core, refined = mr_cells(con, banners, mr_cells_sql(select, wave, multiples, weighted), keys)
            out.mr.append(core)
            out.banner_mr.append(refined)
    out.questions += [*singles, *multiples]
    owners: dict[str, tuple[str, ...]] = {}
    for subscriber in subscribers:
        custom = [q for q in custom_question_list(con, config, wave, subscriber) if wanted is None or q.name in wanted]
        if not custom:
            continue

        source = f"({custom_select(con, config, wave, subscriber)})"
        if design.columns:  # custom_select carries no design column: take them from the wave by respondent id
            cols = ", ".join(f"{c} AS _wt_d{i}" for i, c in enumerate(design.columns))
            source = f"(SELECT s.*, d.* EXCLUDE (_id) FROM {source} s JOIN (SELECT _id, {cols} FROM {wave_table(wave)}) d USING (_id))"
            key_sql = _renamed(design).key_sql
        else:
            key_sql = design.key_sql
        custom_keys = None
        if keys is not None:  # the respondents' cell numbers, from the wave by respondent id
            numbers = numbered_by_id(wave_table(wave))
            source = f"(SELECT s.*, b.* EXCLUDE (_id) FROM {source} s JOIN {numbers} b USING (_id))"
            custom_keys = [custom_key(subscriber, k) for k in keys]
        questions = [(quote(q.name), _qid(q)) for q in custom]
        _scan(con, out, banners, source, wave, questions, weighted, custom_key_sql(subscriber, key_sql), custom_keys)
        out.questions += custom
        owners[subscriber] = config.subscribers[subscriber].jurisdictions
    if banners is not None:
        drop_numbers(con)
    out.keys, out.strata = design_tables(con, wave_table(wave), design, owners)
    return out


def _scan(
    con: duckdb.DuckDBPyConnection,
    out: _Wave,
    banners: BannerPlan | None,
    source: str,
    wave: int,
    questions: list[tuple[str, str]],
    weighted: bool,
    key_sql: str,
    keys: list[str] | None,
) -> None:
    """The cells of ``questions`` over ``source`` into ``out``; with banners (``source`` then carries each
    respondent's cell number, ``keys`` the core keys by index), from one scan keyed by the cell number, the
    core cells summed over the banner codes and the banner cells beside (see stats.banners)."""
    if banners is None or keys is None:
        out.cells.append(fetch_single_cells(con, source, wave, questions, weighted, key_sql))
        return
    core, refined = single_cells(con, banners, source, wave, questions, weighted, keys)
    out.cells.append(core)
    out.banner_cells.append(refined)


def _banner_inputs(part: _Wave, config: StudyConfig, request: _Request) -> dict[str, pa.Table]:
    """The inputs of :func:`rollup.aggregate` for the banner columns of one wave: the refined cells,
    keys and each column's keys within its scope and benchmark (the design's strata unchanged)."""
    plan = request.banners
    assert plan is not None
    keys = refined_keys(plan, part.keys)
    scope_rows, bench_rows = domain_tables(
        plan, part.keys, request.scopes, {s: _scope_jurisdictions(config, s) for s in request.scopes}
    )
    return {
        "cells": pa.concat_tables(part.banner_cells) if part.banner_cells else CELL_SCHEMA.empty_table(),
        "mr": pa.concat_tables(part.banner_mr) if part.banner_mr else MR_SCHEMA.empty_table(),
        **part.metadata,
        "scopes": _table(["scope", "spos", "key"], scope_rows, [pa.string(), pa.int32(), pa.string()]),
        "bench": _table(["scope", "key"], bench_rows, [pa.string(), pa.string()]),
        "keys": keys,
        "strata": part.strata,
    }


def _aggregated(cursor: duckdb.DuckDBPyConnection, part: _Wave, request: _Request) -> dict[str, pa.Table]:
    """The wave's roll-ups (:func:`rollup.aggregate`) of its scopes and, with banners, of their banner
    columns too, as one set of tables (which the report takes together: see _report_inputs). Where both
    are of the same design (see rollup.is_simple_design), one roll-up of both: its fixed cost, a third of
    a banner column's roll-up in the banner benchmark, is paid once, and no sum spans the two (the banner
    columns' keys are keys of their own)."""
    config = request.config
    variance = config.tables.variance
    main = part.aggregate_inputs(config, request.scopes)
    if request.banners is None:
        return aggregate(cursor, main, variance=variance)
    columns = _banner_inputs(part, config, request)
    if _same_design(main, columns):
        return aggregate(cursor, _both(main, columns), variance=variance)
    scopes, banner = aggregate(cursor, main, variance=variance), aggregate(cursor, columns, variance=variance)
    return {
        name: table if name == "unlabelled" else pa.concat_tables([table, banner[name]])
        for name, table in scopes.items()
    }


def _same_design(main: dict[str, pa.Table], columns: dict[str, pa.Table]) -> bool:
    return is_simple_design(main["keys"], (main["scopes"], main["bench"])) == is_simple_design(
        columns["keys"], (columns["scopes"], columns["bench"])
    )


def _both(main: dict[str, pa.Table], columns: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The roll-up inputs of the scopes and of their banner columns as one: cells, keys, scopes and
    benchmarks appended (the scopes' first, so their ids' codes and sums' order are as in a roll-up of
    their own), the banner columns' keys as part 1 (see rollup: the questions' centres stay the scopes')."""
    joined = dict(main)
    for name in ("cells", "mr", "scopes", "bench"):
        joined[name] = pa.concat_tables([main[name], columns[name]])
    parts = [
        table.append_column("part", pa.array(np.full(table.num_rows, part, np.int8)))
        for part, table in enumerate((main["keys"], columns["keys"]))
    ]
    joined["keys"] = pa.concat_tables(parts)
    return joined


def _split(
    tables: tuple[pa.Table, pa.Table, pa.Table], scopes: list[str]
) -> tuple[tuple[pa.Table, pa.Table, pa.Table], tuple[pa.Table, pa.Table, pa.Table]]:
    """The joined report's (rows, summaries, audit) as the scopes' and the banner columns': each table is
    sorted by scope position, so the scopes' rows are its first ones."""
    value_set = pa.array(scopes, pa.string())
    main, columns = [], []
    for table in tables:
        count = pc.sum(pc.is_in(table.column("scope"), value_set=value_set)).as_py() or 0
        main.append(table.slice(0, count))
        columns.append(table.slice(count))
    return (main[0], main[1], main[2]), (columns[0], columns[1], columns[2])


def _renamed(design: Design) -> Design:
    """``design`` over the ``_wt_d<i>`` aliases that a custom source gives its design columns."""
    names = {c: f"_wt_d{i}" for i, c in enumerate(design.columns)}
    return Design(
        names.get(design.stratum_sql, design.stratum_sql),
        None if design.psu_sql is None else names[design.psu_sql],
        tuple(names[e] for e in design.extra),
        design.description,
    )
