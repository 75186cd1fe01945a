"""Banner tables: the same tables for subgroups (age groups, gender, …) across the top, with column tests.

A banner column is just another *domain* of the tables engine. The cells are keyed one step finer —
the design's key plus the respondent's banner code (:func:`refined_key`) — and a banner column of a scope
is the set of refined keys of that scope's jurisdictions with the column's code (or a net's codes). The
refined cells go through the same :func:`rollup.aggregate` and :func:`rollup.report` as the scopes, with
a ``keys`` table mapping every refined key to its core key's jurisdiction, owner, stratum and PSU, so
percents, bases, means, intervals, standard errors, quality flags and suppression of a banner column come
from the same engine as the main tables. The Total column is the ordinary scope.

One scan serves both: each wave's respondents are grouped by (core key, banner codes) and the answers of
two questions at a time (:func:`fine_cells_sql`); the core cells are the sums over the banner codes and
each banner's cells the sums over the other banners'.

Column tests (SPSS Custom Tables' column proportions / column means convention): within one banner, in
one row (a code's percent, the top-2 box or the mean of one question in one scope and wave), every pair
of columns is compared with a two-sided two-sample z-test on the standard errors the main tables use,
``z = (p_a − p_b) / √(se_a² + se_b²)``, as independent samples; the letter of the lower column is put in
the higher column's ``sig_columns``. The significance level is ``1 − [tables] confidence``, adjusted
within the row's set of pairs (``[banners] adjust``: Bonferroni, Benjamini–Hochberg or none). A column
whose base is under ``min_base`` (or otherwise withheld) is shown but neither tested nor tested against;
a net is tested only against the columns it does not overlap.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from statistics import NormalDist

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..codebook import code_text
from ..config import StudyConfig
from ..errors import ConfigError, InputMissingError
from ..store import fetch_arrow
from .design import SEP
from .frequencies import CELL_SCHEMA, MR_SCHEMA
from .questions import Question
from .rollup import registered

LETTERS = string.ascii_uppercase
ROW_COLUMNS = (
    "banner",
    "banner_code",
    "banner_label",
    "column",
    "sig_columns",
    "topbox_sig_columns",
    "mean_sig_columns",
)
SUMMARY_COLUMNS = ("banner", "banner_code", "banner_label", "column", "topbox_sig_columns", "mean_sig_columns")
AUDIT_COLUMNS = ("banner", "banner_code")
BLOCK = 2  # questions per first-pass group (finer keys leave fewer repeats to collapse: see fine_cells_sql)


@dataclass(frozen=True)
class BannerColumn:
    code: str  # the code's text ('1') or a net's name
    label: str | None  # its (source-language) label; a net's name
    values: tuple[float, ...]  # the banner codes it pools (one for a code column)
    net: bool
    letter: str


@dataclass(frozen=True)
class Banner:
    variable: str
    label: str | None
    codes: tuple[float, ...]  # the valid labelled codes, in order (position + 1 is the code's index in a key)
    columns: tuple[BannerColumn, ...]

    def index(self, value: float) -> int:
        return self.codes.index(value) + 1


@dataclass(frozen=True)
class BannerPlan:
    """The banners of one tabulation and how their codes sit in a cell key."""

    banners: tuple[Banner, ...]
    adjust: str
    radix: int  # the refined part of a key is a number in this base, one digit per banner (0: no valid code)

    def digit_sql(self, position: int, expr: str | None) -> str:
        """SQL: banner ``position``'s digit of a respondent whose banner answer is ``expr`` (0: none)."""
        banner = self.banners[position]
        if expr is None:
            return "0"
        cases = " ".join(f"WHEN {value!r} THEN {banner.index(value)}" for value in banner.codes)
        return f"(CASE CAST({expr} AS DOUBLE) {cases} ELSE 0 END)"

    def bk_sql(self, expressions: dict[str, str]) -> str:
        """SQL of a respondent's banner number (all banners' digits) given each variable's SQL expression."""
        parts = [
            f"{self.digit_sql(i, expressions.get(b.variable))} * {self.radix**i}" for i, b in enumerate(self.banners)
        ]
        return "(" + " + ".join(parts) + ")::BIGINT"

    def domains(self, scopes: list[str]) -> list[Domain]:
        """Every banner column of every scope, in output order (scope, banner, column)."""
        out = []
        for scope in scopes:
            for b, banner in enumerate(self.banners):
                for c, column in enumerate(banner.columns):
                    out.append(Domain(f"{scope}{SEP}{b}{SEP}{c}", scope, b, c, banner, column))
        return out


@dataclass(frozen=True)
class Domain:
    id: str  # the scope id the engine sees
    scope: str
    bpos: int
    cpos: int
    banner: Banner
    column: BannerColumn


def refined_key(core_key: str, position: int, index: int) -> str:
    """The cell key of respondents of ``core_key`` with code ``index`` (1-based) of banner ``position``."""
    return f"{core_key}{SEP}b{position}{SEP}{index}"


def plan_banners(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, names: list[str], singles: list[Question]
) -> BannerPlan:
    """The banners ``names`` as found in ``wave``'s codebook (``singles``: its core single-response
    questions): each valid labelled code a column, then the configured nets; an InputMissingError when a
    name is no labelled single-response core question of the wave."""
    by_name = {q.name: q for q in singles}
    banners = []
    for name in names:
        question = by_name.get(name)
        if question is None or not question.valid_codes():
            raise InputMissingError(
                f"wave {wave}: banner {name!r} is not a labelled single-response core question",
                hint="name a numeric core question with value labels (see `wavetool codebook --wave N`), "
                'e.g. [banners] variables = ["AGEGRP", "GENDER"]',
            )
        codes = tuple(question.valid_codes())
        columns = [(code_text(c), question.codes[c], (c,), False) for c in codes]
        for net, values in config.banners.nets.get(name, {}).items():
            unknown = [code_text(v) for v in values if v not in codes]
            if unknown:
                raise ConfigError(
                    f"{config.path}: banners.nets.{name}.{net}: code {', '.join(unknown)} is not a valid code of {name}",
                    hint=f"valid codes of {name} in wave {wave}: {', '.join(code_text(c) for c in codes)}",
                )
            columns.append((net, net, tuple(values), True))
        if len(columns) > len(LETTERS):
            raise ConfigError(
                f"{config.path}: banner {name} has {len(columns)} columns; at most {len(LETTERS)} (A-Z) are lettered",
                hint="use nets for fewer columns, or another banner variable",
            )
        banners.append(
            Banner(
                name,
                question.label,
                codes,
                tuple(
                    BannerColumn(code, label, values, net, LETTERS[i])
                    for i, (code, label, values, net) in enumerate(columns)
                ),
            )
        )
    radix = max((len(b.codes) for b in banners), default=0) + 1
    return BannerPlan(tuple(banners), config.banners.adjust, radix)


# --- the scan ------------------------------------------------------------------------------------------


def fine_cells_sql(source: str, wave: int, expressions: list[str], weighted: bool, key_sql: str, bk_sql: str) -> str:
    """SQL of the cells of ``expressions`` over ``source`` keyed by (core key, banner number ``bk``).

    As :func:`frequencies.single_cells_sql`, but two questions per first pass: with the banner codes in
    the group key, fewer respondents share all of (key, codes, three answers), and pairs collapse more."""
    weight = "CAST(_weight AS DOUBLE)" if weighted else "1.0::DOUBLE"
    blocks = []
    for start in range(0, len(expressions), BLOCK):
        chunk = expressions[start : start + BLOCK]
        values = [f"CAST({expr} AS DOUBLE)" for expr in chunk]
        positions = ", ".join(str(start + offset) for offset in range(len(chunk)))
        blocks.append(
            f"SELECT {key_sql} AS key, {bk_sql} AS bk, [{positions}] AS questions, [{', '.join(values)}] AS answers, "
            f"count(*) AS n, sum({weight}) AS sw, sum({weight} * {weight}) AS sw2 "
            f"FROM {source} GROUP BY {key_sql}, {bk_sql}, {', '.join(values)}"
        )
    return (
        f"SELECT {int(wave)}::INTEGER AS wave, question::INTEGER AS question, key, bk, value, sum(n)::BIGINT AS n, "
        f"sum(sw) AS sw, sum(sw2) AS sw2 "
        f"FROM (SELECT key, bk, unnest(questions) AS question, unnest(answers) AS value, n, sw, sw2 "
        f"FROM ({' UNION ALL '.join(blocks)})) GROUP BY ALL"
    )


def _split(con: duckdb.DuckDBPyConnection, fine: pa.Table, plan: BannerPlan, group: str) -> tuple[pa.Table, pa.Table]:
    """Core cells (summed over the banner number) and refined cells (one banner's code appended to the
    key, summed over the other banners) from fine cells with a ``bk`` column; ``group`` lists the other
    cell columns."""
    con.register("_wt_fine", fine)
    try:
        core = fetch_arrow(
            con, f"SELECT {group}, sum(n)::BIGINT AS n, sum(sw) AS sw, sum(sw2) AS sw2 FROM _wt_fine GROUP BY {group}"
        )
        parts = []
        for b in range(len(plan.banners)):
            digit = f"((bk // {plan.radix**b}) % {plan.radix})"
            cols = group.replace("key", f"key || '{SEP}b{b}{SEP}' || CAST({digit} AS VARCHAR) AS key")
            parts.append(
                f"SELECT {cols}, sum(n)::BIGINT AS n, sum(sw) AS sw, sum(sw2) AS sw2 FROM _wt_fine "
                f"WHERE {digit} > 0 GROUP BY ALL"
            )
        refined = fetch_arrow(con, " UNION ALL ".join(parts)) if parts else core.schema.empty_table()
    finally:
        con.unregister("_wt_fine")
    return core, refined


def single_cells(
    con: duckdb.DuckDBPyConnection,
    plan: BannerPlan,
    source: str,
    wave: int,
    questions: list[tuple[str, str]],
    weighted: bool,
    key_sql: str,
    bk_sql: str,
) -> tuple[pa.Table, pa.Table]:
    """The core cells and the refined (banner) cells of ``questions`` ((SQL, question id) pairs), in
    CELL_SCHEMA, from one scan of ``source``."""
    fine = fetch_arrow(con, fine_cells_sql(source, wave, [e for e, _ in questions], weighted, key_sql, bk_sql))
    core, refined = _split(con, fine, plan, "wave, question, key, value")
    ids = pa.array([qid for _, qid in questions], type=pa.string())

    def named(cells: pa.Table) -> pa.Table:
        index = cells.schema.get_field_index("question")
        return cells.set_column(index, "question", ids.take(cells.column("question"))).cast(CELL_SCHEMA)

    return named(core), named(refined)


def mr_cells(con: duckdb.DuckDBPyConnection, plan: BannerPlan, sql: str) -> tuple[pa.Table, pa.Table]:
    """The core and refined MR cells of an MR cell query whose keys are ``<bk> SEP <core key>``."""
    raw = fetch_arrow(con, sql)
    con.register("_wt_mr_raw", raw)
    try:
        fine = fetch_arrow(
            con,
            f"SELECT wave, question, substr(key, strpos(key, '{SEP}') + 1) AS key, item, role, "
            f"CAST(split_part(key, '{SEP}', 1) AS BIGINT) AS bk, n, sw, sw2 FROM _wt_mr_raw",
        )
    finally:
        con.unregister("_wt_mr_raw")
    core, refined = _split(con, fine, plan, "wave, question, key, item, role")
    return core.cast(MR_SCHEMA), refined.cast(MR_SCHEMA)


# --- the domains ---------------------------------------------------------------------------------------


def refined_keys(plan: BannerPlan, keys: pa.Table) -> pa.Table:
    """The ``keys`` table (see :mod:`wavetool.stats.design`) of the refined cells: every key once per
    banner code, with its core key's jurisdiction, owner, stratum and PSU."""
    rows = keys.to_pylist()
    out = [
        {**r, "key": refined_key(r["key"], b, index)}
        for b, banner in enumerate(plan.banners)
        for index in range(1, len(banner.codes) + 1)
        for r in rows
    ]
    return pa.Table.from_pylist(out, schema=keys.schema) if out else keys.schema.empty_table()


def domain_tables(
    plan: BannerPlan, keys: pa.Table, scopes: list[str], jurisdictions_of: dict[str, set[str] | None]
) -> tuple[list[tuple[str, int, str]], list[tuple[str, str]]]:
    """The (scope, spos, key) rows of every banner column and the (scope, key) rows of its benchmark: the
    same column among all other respondents of the wave (none for ``all``). ``jurisdictions_of`` gives
    each scope's jurisdictions (None: all)."""
    key_rows = keys.to_pylist()
    core = {r["key"]: r["jurisdiction"] for r in key_rows if r["owner"] is None}
    scope_rows, bench_rows = [], []
    for position, domain in enumerate(plan.domains(scopes)):
        wanted = jurisdictions_of[domain.scope]
        members = sorted(k for k, j in core.items() if wanted is None or j in wanted)
        own = members + [r["key"] for r in key_rows if r["owner"] == domain.scope]
        indexes = [domain.banner.index(v) for v in domain.column.values]
        scope_rows += [(domain.id, position, refined_key(k, domain.bpos, i)) for k in own for i in indexes]
        if domain.scope != "all":
            others = sorted(set(core) - set(members))
            bench_rows += [(domain.id, refined_key(k, domain.bpos, i)) for k in others for i in indexes]
    return scope_rows, bench_rows


# --- column tests and the combined tables ---------------------------------------------------------------


def _critical_values(plan: BannerPlan, confidence: float) -> pa.Table:
    """z critical values for each (m pairs in a row, rank k of a pair by |z|): Bonferroni
    z(1 − α/2m), Benjamini–Hochberg z(1 − kα/2m) (step-up on the ranks), none z(1 − α/2)."""
    alpha = 1 - confidence
    largest = max((len(_pairs_of(b)) for b in plan.banners), default=0)
    inv = NormalDist().inv_cdf
    rows = []
    for m in range(1, largest + 1):
        for k in range(1, m + 1):
            level = {"bonferroni": alpha / m, "bh": k * alpha / m, "none": alpha}[plan.adjust]
            rows.append((m, k, inv(1 - level / 2)))
    return pa.table(
        {
            "m": pa.array([r[0] for r in rows], pa.int64()),
            "k": pa.array([r[1] for r in rows], pa.int64()),
            "crit": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def _pairs_of(banner: Banner) -> list[tuple[int, int]]:
    """The column pairs of a banner that are tested: those sharing no code (a net is not tested against
    its own codes)."""
    cols = banner.columns
    return [
        (a, b)
        for a in range(len(cols))
        for b in range(a + 1, len(cols))
        if not set(cols[a].values) & set(cols[b].values)
    ]


_LETTERS_SQL = """
WITH r AS (
    SELECT u.rn, u.wave, d.scope, d.bpos, d.cpos, d.letter, u.question, u.code, u.val, u.se
    FROM _wt_units u JOIN _wt_domains d ON u.scope = d.id WHERE u.ok
),
t AS (
    SELECT a.rn AS rn_a, b.rn AS rn_b, a.letter AS la, b.letter AS lb, a.val - b.val AS diff,
        sqrt(a.se * a.se + b.se * b.se) AS se, a.wave, a.scope, a.question, a.code, a.bpos
    FROM r a JOIN r b ON a.wave = b.wave AND a.scope = b.scope AND a.question = b.question AND a.code = b.code
        AND a.bpos = b.bpos AND a.cpos < b.cpos
    JOIN _wt_pairs p ON p.bpos = a.bpos AND p.ca = a.cpos AND p.cb = b.cpos
),
s AS (
    SELECT *, CASE WHEN diff IS NULL OR se IS NULL OR diff = 0 THEN 0.0 WHEN se = 0 THEN 'inf'::DOUBLE
        ELSE abs(diff) / se END AS z
    FROM t
),
ranked AS (
    SELECT *, count(*) OVER g AS m, row_number() OVER (g ORDER BY z DESC, la, lb) AS k
    FROM s WINDOW g AS (PARTITION BY wave, scope, question, code, bpos)
),
judged AS (
    SELECT r.*, max(CASE WHEN r.z > c.crit THEN r.k END) OVER (PARTITION BY wave, scope, question, code, bpos) AS kstar
    FROM ranked r JOIN _wt_crit c ON c.m = r.m AND c.k = r.k
),
sig AS (
    SELECT CASE WHEN diff > 0 THEN rn_a ELSE rn_b END AS rn, CASE WHEN diff > 0 THEN lb ELSE la END AS letter
    FROM judged WHERE k <= kstar AND diff <> 0
),
letters AS (SELECT rn, string_agg(letter, '' ORDER BY letter) AS letters FROM sig GROUP BY rn)
SELECT coalesce(l.letters, '') AS letters FROM range($n) AS x(rn) LEFT JOIN letters l USING (rn) ORDER BY x.rn
"""


def _letters(con: duckdb.DuckDBPyConnection, units: pa.Table, tables: dict[str, pa.Table]) -> pa.ChunkedArray:
    """For each unit (rn, wave, scope, question, code, val, se, ok) in order: the letters of the columns of
    its banner it is significantly higher than."""
    with registered(con, {"units": units, **tables}, ("units", *tables)):
        return fetch_arrow(con, _LETTERS_SQL.replace("$n", str(int(units.num_rows)))).column("letters")


def _units(table: pa.Table, val: str, se: str, ok: str, code: str = "code") -> str:
    return (
        f"SELECT (row_number() OVER () - 1)::BIGINT AS rn, wave, scope, question, {code} AS code, "
        f"{val} AS val, {se} AS se, ({ok}) AS ok FROM _wt_t"
    )


def _unit_table(con: duckdb.DuckDBPyConnection, table: pa.Table, sql: str) -> pa.Table:
    con.register("_wt_t", table)
    try:
        return fetch_arrow(con, sql)
    finally:
        con.unregister("_wt_t")


def _se(table: pa.Table, design: str, kish: str) -> str:
    """The standard error the main tables use: the design's when the table carries it, else Kish's."""
    return design if design in table.column_names else kish


def combine(
    con: duckdb.DuckDBPyConnection,
    plan: BannerPlan,
    scopes: list[str],
    main: tuple[pa.Table, pa.Table, pa.Table],
    banner: tuple[pa.Table, pa.Table, pa.Table],
    confidence: float,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The main tables (the Total columns) and the banner columns' tables as one set of (rows,
    summaries, audit): each scope's Total, then its banner columns, with the banner columns and the
    column-test letters appended."""
    rows_b, summaries_b, audit_b = banner
    domains = plan.domains(scopes)
    ids = pa.array([d.id for d in domains], pa.string())
    tables = {
        "domains": pa.table(
            {
                "id": ids,
                "scope": pa.array([d.scope for d in domains], pa.string()),
                "bpos": pa.array([d.bpos for d in domains], pa.int64()),
                "cpos": pa.array([d.cpos for d in domains], pa.int64()),
                "letter": pa.array([d.column.letter for d in domains], pa.string()),
            }
        ),
        "pairs": pa.table(
            {
                name: pa.array(
                    [p[i] for b, banner_ in enumerate(plan.banners) for p in [(b, *x) for x in _pairs_of(banner_)]],
                    pa.int64(),
                )
                for i, name in enumerate(("bpos", "ca", "cb"))
            }
        ),
        "crit": _critical_values(plan, confidence),
    }
    kish_p = "100.0 * sqrt(greatest(percent / 100 * (1 - percent / 100), 0) / n_eff)"
    row_units = _unit_table(
        con,
        rows_b,
        _units(rows_b, "percent", _se(rows_b, "se", kish_p), "NOT suppressed AND percent IS NOT NULL AND n_eff > 0"),
    )
    kish_top = "100.0 * sqrt(greatest(topbox / 100 * (1 - topbox / 100), 0) / n_eff)"
    top_units = _unit_table(
        con,
        summaries_b,
        _units(
            summaries_b,
            "topbox",
            _se(summaries_b, "topbox_se", kish_top),
            "NOT suppressed AND topbox IS NOT NULL AND n_eff > 0",
            "''",
        ),
    )
    mean_units = _unit_table(
        con,
        summaries_b,
        _units(
            summaries_b,
            "mean",
            _se(summaries_b, "mean_se", "sd / sqrt(n_eff)"),
            "NOT suppressed AND mean IS NOT NULL AND n_eff > 0",
            "''",
        ),
    )
    row_letters = _letters(con, row_units, tables)
    top_letters = _letters(con, top_units, tables)
    mean_letters = _letters(con, mean_units, tables)
    # each row's question's top-box and mean letters
    position = _summary_position(con, rows_b, summaries_b)
    index = pc.index_in(summaries_b.column("scope"), value_set=ids)
    sums_meta = _domain_columns(plan, domains, index)
    summaries_b = _replace_scope(summaries_b, domains, index)
    for name, column in (*sums_meta, ("topbox_sig_columns", top_letters), ("mean_sig_columns", mean_letters)):
        summaries_b = summaries_b.append_column(name, column)
    index = pc.index_in(rows_b.column("scope"), value_set=ids)
    rows_meta = _domain_columns(plan, domains, index)
    rows_b = _replace_scope(rows_b, domains, index)
    for name, column in (
        *rows_meta,
        ("sig_columns", row_letters),
        ("topbox_sig_columns", top_letters.take(position)),
        ("mean_sig_columns", mean_letters.take(position)),
    ):
        rows_b = rows_b.append_column(name, column)
    index = pc.index_in(audit_b.column("scope"), value_set=ids)
    audit_meta = dict(_domain_columns(plan, domains, index))
    audit_b = _replace_scope(audit_b, domains, index)
    for name in AUDIT_COLUMNS:
        audit_b = audit_b.append_column(name, audit_meta[name])
    # a banner column of 'all' has no benchmark to withhold
    keep = pc.invert(
        pc.and_(pc.equal(audit_b.column("scope"), "all"), pc.equal(audit_b.column("withheld"), "benchmark"))
    )
    audit_b = audit_b.filter(keep)
    rows_m, summaries_m, audit_m = main
    return (
        _appended(_with_total(rows_m, ROW_COLUMNS), rows_b),
        _appended(_with_total(summaries_m, SUMMARY_COLUMNS), summaries_b),
        _appended(_with_total(audit_m, AUDIT_COLUMNS), audit_b),
    )


def _summary_position(con: duckdb.DuckDBPyConnection, rows: pa.Table, summaries: pa.Table) -> pa.Array:
    """For each row, the position of its question's summary."""
    with registered(
        con,
        {"r": rows.select(["wave", "scope", "question"]), "s": summaries.select(["wave", "scope", "question"])},
        ("r", "s"),
    ):
        return fetch_arrow(
            con,
            "WITH s AS (SELECT *, (row_number() OVER () - 1)::BIGINT AS pos FROM _wt_s), "
            "r AS (SELECT *, row_number() OVER () AS rn FROM _wt_r) "
            "SELECT s.pos FROM r JOIN s USING (wave, scope, question) ORDER BY r.rn",
        ).column("pos")


def _domain_columns(plan: BannerPlan, domains: list[Domain], index: pa.Array) -> list[tuple[str, pa.Array]]:
    values = {
        "banner": [d.banner.variable for d in domains],
        "banner_code": [d.column.code for d in domains],
        "banner_label": [d.column.label or "" for d in domains],
        "column": [d.column.letter for d in domains],
    }
    return [(name, pa.array(v, pa.string()).take(index)) for name, v in values.items()]


def _replace_scope(table: pa.Table, domains: list[Domain], index: pa.Array) -> pa.Table:
    parents = pa.array([d.scope for d in domains], pa.string()).take(index)
    return table.set_column(table.schema.get_field_index("scope"), "scope", parents)


def _with_total(table: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """The main table with the banner columns of a Total: no banner, labelled 'Total', untested."""
    for name in names:
        value = "Total" if name == "banner_label" else ""
        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def _appended(total: pa.Table, columns: pa.Table) -> pa.Table:
    """The Total rows exactly as without banners, then the banner columns' rows (each in output order:
    wave, scope, banner, column, question, code). Appending costs nothing; interleaving 2 million rows
    by scope cost more than the column tests."""
    return pa.concat_tables([total, columns.select(total.column_names)])


def banner_meta(plan: BannerPlan, confidence: float) -> dict:
    """How the banner columns were made and tested (the tables' ``meta["banners"]``)."""
    adjust = {
        "bonferroni": "Bonferroni within each row's pairs of columns",
        "bh": "Benjamini-Hochberg within each row's pairs of columns",
        "none": "none",
    }[plan.adjust]
    return {
        "variables": [
            {
                "variable": b.variable,
                "label": b.label,
                "columns": [
                    {
                        "column": c.letter,
                        "code": c.code,
                        "label": c.label,
                        "net": c.net,
                        "codes": [code_text(v) for v in c.values],
                    }
                    for c in b.columns
                ],
            }
            for b in plan.banners
        ],
        "test": f"column tests: two-sided two-sample z-tests between the columns of a banner (independent "
        f"samples), {1 - confidence:.2g} level, on the tables' standard errors",
        "adjust": adjust,
        "adjust_method": plan.adjust,
    }
