"""Banner tables: the same tables for subgroups (age groups, gender, …) across the top, with column tests.

A banner column is just another *domain* of the tables engine. The cells are keyed one step finer —
the design's key plus the respondent's banner code (:func:`refined_key`) — and a banner column of a scope
is the set of refined keys of that scope's jurisdictions with the column's code (or a net's codes). The
refined cells go through the same :func:`rollup.aggregate` and :func:`rollup.report` as the scopes, with
a ``keys`` table mapping every refined key to its core key's jurisdiction, owner, stratum and PSU, so
percents, bases, means, intervals, standard errors, quality flags and suppression of a banner column come
from the same engine as the main tables. The Total column is the ordinary scope.

One scan serves both: each wave's respondents are grouped by their cell number (core key and banner codes
in one small integer: :func:`number_respondents`) and the answers of two questions at a time
(:func:`single_cells`); the core cells are the sums over the banner codes and each banner's cells the sums
over the other banners'.

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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codebook import code_text
from ..config import StudyConfig
from ..errors import ConfigError, InputMissingError
from ..store import fetch_arrow
from .design import SEP
from .frequencies import CELL_SCHEMA, MR_SCHEMA, single_cells_sql
from .questions import Question

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

NUMBERS = "_wt_numbers"  # the temporary table of each respondent's cell number (see number_respondents)
NUMBER = "_wt_kb"  # its column: the cell number
BLOCK = 2  # questions per first pass (measured: 2 beats 1 and 3 with the cell number in the group key)


def number_respondents(
    con: duckdb.DuckDBPyConnection, plan: BannerPlan, table: str, key_sql: str, bk_sql: str, weighted: bool
) -> list[str]:
    """Create the temporary table NUMBERS: one row per row of the wave table ``table``, in its order, with
    the respondent's *cell number* ``NUMBER`` = (index of its core key) × radix^banners + its banner number
    (``bk_sql``: see :meth:`BannerPlan.bk_sql`), and its weight ``_wt_w`` and squared weight ``_wt_w2``.
    Returns the core keys, by index (sorted).

    The scan then joins the wave to it by position (``table POSITIONAL JOIN NUMBERS``: both are read in row
    order) and groups by this one small integer, not by the key's text and each banner's raw answer: fewer,
    cheaper group columns on every respondent row of every block, and the banner codes' CASE and the
    squared weight computed once per respondent instead of once per block (the same doubles: the sums do
    not change). The key's text is put back on the few thousand cells."""
    span = plan.radix ** len(plan.banners)
    weight = "CAST(_weight AS DOUBLE)" if weighted else "1.0::DOUBLE"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {NUMBERS} AS SELECT ((dense_rank() OVER (ORDER BY _wt_key) - 1) * {span} "
        f"+ _wt_bk)::BIGINT AS {NUMBER}, _wt_key AS {NUMBER}_key, _wt_w, _wt_w * _wt_w AS _wt_w2 "
        f"FROM (SELECT rowid AS _wt_row, {key_sql} AS _wt_key, {bk_sql} AS _wt_bk, {weight} AS _wt_w FROM {table}) "
        "ORDER BY _wt_row"
    )
    rows = con.execute(f"SELECT DISTINCT {NUMBER} // {span}, {NUMBER}_key FROM {NUMBERS} ORDER BY 1").fetchall()
    return [key for _, key in rows]


def drop_numbers(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {NUMBERS}")


def numbered(table: str) -> str:
    """The wave table ``table`` (or a projection of it, parenthesised: the same rows in the same order) with
    each row's cell number ``NUMBER``, weight and squared weight beside it (see number_respondents)."""
    return f"{table} POSITIONAL JOIN {NUMBERS}"


def numbered_by_id(table: str) -> str:
    """SQL of (``_id``, ``NUMBER``, ``_wt_w``, ``_wt_w2``) of every respondent of the wave table ``table``,
    to join by id to a source not in the table's row order (a subscriber's custom answers)."""
    return f"(SELECT _id, {NUMBER}, _wt_w, _wt_w2 FROM {numbered(table)})"


def _split(
    con: duckdb.DuckDBPyConnection, fine_sql: str, plan: BannerPlan, group: tuple[str, ...], keys: list[str]
) -> tuple[pa.Table, pa.Table]:
    """Core cells (summed over the banners) and refined cells (one banner's code appended to the key,
    summed over the other banners) from the fine cells of ``fine_sql``, whose ``key`` is the cell number
    (see number_respondents; ``keys``: the key of each key index) and whose other cell columns are
    ``group``. The fine cells stay in a temporary table, never converted to Arrow; both sums group by
    integers (the key index, and the index of a refined key), and the key texts are taken from two small
    arrays afterwards rather than concatenated on every fine cell."""
    nb, radix = len(plan.banners), plan.radix
    span = radix**nb
    others = ", ".join(group)
    sums = "sum(n)::BIGINT AS n, sum(sw) AS sw, sum(sw2) AS sw2"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_fine AS {fine_sql}")
    try:
        core = fetch_arrow(con, f"SELECT {others}, (key // {span}) AS key, {sums} FROM _wt_fine GROUP BY ALL")
        parts = []
        for b in range(nb):
            digit = f"((key // {radix**b}) % {radix})"
            index = f"(((key // {span}) * {nb} + {b}) * {radix} + {digit})"
            parts.append(f"SELECT {others}, {index} AS key, {sums} FROM _wt_fine WHERE {digit} > 0 GROUP BY ALL")
        refined = fetch_arrow(con, " UNION ALL ".join(parts))
    finally:
        con.execute("DROP TABLE IF EXISTS _wt_fine")
    names = pa.array([refined_key(key, b, d) for key in keys for b in range(nb) for d in range(radix)], pa.string())
    return _keyed(core, pa.array(keys, pa.string())), _keyed(refined, names)


def _keyed(cells: pa.Table, names: pa.Array) -> pa.Table:
    """``cells`` with the key texts ``names[key]`` for their integer keys, the key column after ``question``
    as in the cell schemas."""
    key = names.take(cells.column("key"))
    cells = cells.drop_columns(["key"])
    return cells.add_column(cells.schema.get_field_index("question") + 1, "key", key)


def single_cells(
    con: duckdb.DuckDBPyConnection,
    plan: BannerPlan,
    source: str,
    wave: int,
    questions: list[tuple[str, str]],
    weighted: bool,
    keys: list[str],
) -> tuple[pa.Table, pa.Table]:
    """The core cells and the refined (banner) cells of ``questions`` ((SQL, question id) pairs), in
    CELL_SCHEMA, from ``source`` (with each respondent's cell number ``NUMBER``: see number_respondents;
    ``keys``: the key of each key index).

    The answers are read a few dozen questions at a time and summed in numpy (see _Counted): a question's
    cells are a small dense array of (cell number, answer), from which the core cells are the sums over
    the banner codes and each banner's cells the sums over the other banners'. On one wave of the banner
    benchmark that took about two thirds of the time of a SQL GROUP BY on the cell number (whose hash
    tables hold 15 times the plain scan's groups) and its split. A question with more than MAX_ANSWERS
    distinct answers (a numeric one), or a design with more than MAX_NUMBERS cell numbers (PSUs), is left
    to the SQL scan (see _scanned)."""
    span = plan.radix ** len(plan.banners)
    if len(keys) * span > MAX_NUMBERS:
        return _scanned(con, plan, _fine_sql(source, wave, questions, weighted), questions, keys)
    counted = _Counted(plan, len(keys))
    left: list[tuple[str, str]] = []
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    step = max(1, CHUNK_VALUES // max(rows, 1))
    for start in range(0, len(questions), step):
        chunk = questions[start : start + step]
        answers = ", ".join(f"CAST({expr} AS DOUBLE)" for expr, _ in chunk)
        table = con.sql(f"SELECT {NUMBER}, _wt_w, _wt_w2, {answers} FROM {source}").to_arrow_table()
        number = table.column(0).to_numpy().astype(np.int64)
        # the import refuses a missing weight, so a NULL here only comes from no weight at all: it adds 0
        w, w2 = (pc.fill_null(table.column(i), 0.0).to_numpy() for i in (1, 2))
        for i, question in enumerate(chunk):
            if not counted.add(start + i, table.column(3 + i), number, w, w2):
                left.append(question)
    core, refined = counted.tables(wave, pa.array([qid for _, qid in questions], pa.string()), keys)
    if left:
        sql_core, sql_refined = _scanned(con, plan, _fine_sql(source, wave, left, weighted), left, keys)
        core, refined = pa.concat_tables([core, sql_core]), pa.concat_tables([refined, sql_refined])
    return core, refined


MAX_NUMBERS = 1 << 12  # the most cell numbers (keys × banner codes) the numpy scan lays out densely
MAX_ANSWERS = 64  # the most distinct answers of a question it lays out densely
CHUNK_VALUES = 2_500_000  # answers read per query (rows × questions): 20 MB of doubles
MAX_HELD = 4_000_000  # dense sums held before they are split into cells: 32 MB


class _Counted:
    """The numpy scan's sums (see single_cells): per question, n, Σw and Σw² by (cell number, answer)
    bincounted in the respondents' order; then, for the questions held so far with answers of one width at
    once (a few calls on one stacked array rather than a dozen on each question's), summed over the banner
    codes (core) and over the other banners (refined), nonzero cells kept."""

    def __init__(self, plan: BannerPlan, keys: int) -> None:
        self.nb, self.radix, self.keys = len(plan.banners), plan.radix, keys
        self.core: list[tuple[np.ndarray, ...]] = []
        self.refined: list[tuple[np.ndarray, ...]] = []
        self.held: dict[int, list[tuple[int, np.ndarray, tuple[np.ndarray, ...]]]] = {}  # by answer width
        self.size = 0  # sums held

    def add(self, question: int, column: pa.ChunkedArray, number: np.ndarray, w: np.ndarray, w2: np.ndarray) -> bool:
        """Count one question's answers ``column`` (NULL: system missing); False if it has too many distinct ones."""
        coded = _answer_codes(column)
        if coded is None:
            return False
        code, values = coded
        width = len(values) + 1  # code 0: no answer
        cell = number * width + code
        size = self.keys * self.radix**self.nb * width
        sums = tuple(np.bincount(cell, weights=x, minlength=size) for x in (None, w, w2))
        self.held.setdefault(width, []).append((question, np.r_[np.nan, values], sums))
        self.size += 3 * size
        if self.size > MAX_HELD:
            self._flush()
        return True

    def _flush(self) -> None:
        nb = self.nb
        for width, held in self.held.items():
            questions = np.array([q for q, _, _ in held], np.int64)
            answers = np.stack([a for _, a, _ in held])
            digits = (len(held), self.keys, *([self.radix] * nb), width)  # a cell number's digits, highest first
            sums = [np.stack([s[i] for _, _, s in held]).reshape(digits) for i in range(3)]
            self.core.append(_nonzero(questions, answers, [s.sum(axis=tuple(range(2, nb + 2))) for s in sums], None))
            for b in range(nb):
                axis = nb + 1 - b  # banner b's digit is worth radix**b
                others = tuple(a for a in range(2, nb + 2) if a != axis)
                by_digit = [s.sum(axis=others) if others else s for s in sums]
                self.refined.append(_nonzero(questions, answers, by_digit, (b, nb)))
        self.held, self.size = {}, 0

    def tables(self, wave: int, ids: pa.Array, keys: list[str]) -> tuple[pa.Table, pa.Table]:
        self._flush()
        names = pa.array(
            [refined_key(key, b, d) for key in keys for b in range(self.nb) for d in range(self.radix)], pa.string()
        )
        return _cell_table(wave, ids, pa.array(keys, pa.string()), self.core), _cell_table(
            wave, ids, names, self.refined
        )


def _answer_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each respondent's answer as a small code (0: NULL, k: ``values[k - 1]``), or None for more than
    MAX_ANSWERS distinct answers. Whole-number answers (the usual codes) are coded by their offset from the
    lowest: no sort, a few passes over the column."""
    x = column.to_numpy(zero_copy_only=False)  # NULL as NaN
    blank = np.isnan(x)
    nulls = int(blank.sum())
    if nulls == len(x):
        return np.zeros(len(x), np.int64), np.zeros(0)
    if nulls == column.null_count:  # no NaN answer: every NaN here is a NULL
        low, high = np.fmin.reduce(x), np.fmax.reduce(x)
        if np.isfinite(high) and np.isfinite(low) and high - low < MAX_ANSWERS:
            offset = x - (low - 1)
            offset[blank] = 0
            code = offset.astype(np.int64)
            if np.array_equal(code, offset):
                return code, low + np.arange(int(high - low) + 1, dtype=np.float64)
    missing = column.is_null().to_numpy(zero_copy_only=False)
    values, inverse = np.unique(x[~missing], return_inverse=True)
    if len(values) > MAX_ANSWERS:
        return None
    code = np.zeros(len(x), np.int64)
    code[~missing] = inverse.ravel() + 1
    return code, values


def _nonzero(
    questions: np.ndarray, answers: np.ndarray, sums: list[np.ndarray], banner: tuple[int, int] | None
) -> tuple[np.ndarray, ...]:
    """The cells that anyone is in, of sums by (question, key index[, digit], code): (question, key index,
    answer, no answer, n, Σw, Σw²), ``answers[i, code]`` being the answer of code ``code`` of question
    ``questions[i]``, and the key index a refined key's (see _Counted.tables) when ``banner`` is (b, nb),
    its digit 0 (no valid code) dropped."""
    n = sums[0]
    if banner is not None:
        n = n.copy()
        n[:, :, 0, :] = 0
    at = np.nonzero(n)
    if banner is None:
        key = at[1]
    else:
        b, nb = banner
        key = (at[1] * nb + b) * n.shape[2] + at[2]
    return (questions[at[0]], key, answers[at[0], at[-1]], at[-1] == 0, *(s[at] for s in sums))


def _cell_table(wave: int, ids: pa.Array, names: pa.Array, parts: list[tuple[np.ndarray, ...]]) -> pa.Table:
    if not parts:
        return CELL_SCHEMA.empty_table()
    question, key, value, no_answer, n, sw, sw2 = (np.concatenate(c) for c in zip(*parts, strict=True))
    return pa.table(
        {
            "wave": pa.array(np.full(len(key), wave, np.int32)),
            "question": ids.take(pa.array(question)),
            "key": names.take(pa.array(key)),
            "value": pa.array(value, mask=no_answer),
            "n": pa.array(n),  # bincount's: int64 counts, float64 sums
            "sw": pa.array(sw),
            "sw2": pa.array(sw2),
        },
        schema=CELL_SCHEMA,
    )


def _scanned(
    con: duckdb.DuckDBPyConnection, plan: BannerPlan, fine: str, questions: list[tuple[str, str]], keys: list[str]
) -> tuple[pa.Table, pa.Table]:
    """:func:`single_cells` in SQL: ``fine``, the cells of ``questions`` keyed by the cell number (see
    _fine_sql), split into core and refined cells (see _split)."""
    core, refined = _split(con, fine, plan, ("wave", "question", "value"), keys)
    ids = pa.array([qid for _, qid in questions], type=pa.string())

    def named(cells: pa.Table) -> pa.Table:
        index = cells.schema.get_field_index("question")
        return cells.set_column(index, "question", ids.take(cells.column("question"))).select(CELL_SCHEMA.names)

    return named(core).cast(CELL_SCHEMA), named(refined).cast(CELL_SCHEMA)


def _fine_sql(source: str, wave: int, questions: list[tuple[str, str]], weighted: bool) -> str:
    """:func:`frequencies.single_cells_sql` of ``questions`` keyed by the cell number, two per first pass."""
    expressions = [e for e, _ in questions]
    return single_cells_sql(source, wave, expressions, weighted, NUMBER, block=BLOCK, weights=("_wt_w", "_wt_w2"))


def mr_cells(con: duckdb.DuckDBPyConnection, plan: BannerPlan, sql: str, keys: list[str]) -> tuple[pa.Table, pa.Table]:
    """The core and refined MR cells of an MR cell query whose keys are the respondents' cell numbers
    (see number_respondents; ``keys``: the key of each key index)."""
    core, refined = _split(con, sql, plan, ("wave", "question", "item", "role"), keys)
    return core.select(MR_SCHEMA.names).cast(MR_SCHEMA), refined.select(MR_SCHEMA.names).cast(MR_SCHEMA)


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


def _critical_values(largest: int, adjust: str, confidence: float) -> np.ndarray:
    """z critical values ``crit[m, k]`` for a row of ``m`` tested pairs and a pair ranked ``k`` (1 = largest
    |z|): Bonferroni z(1 − α/2m), Benjamini–Hochberg z(1 − kα/2m) (a step-up on the ranks), none z(1 − α/2)."""
    alpha = 1 - confidence
    inv = NormalDist().inv_cdf
    crit = np.full((largest + 1, largest + 1), np.inf)
    for m in range(1, largest + 1):
        for k in range(1, m + 1):
            level = {"bonferroni": alpha / m, "bh": k * alpha / m, "none": alpha}[adjust]
            crit[m, k] = inv(1 - level / 2)
    return crit


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


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def _dense(combined: np.ndarray) -> np.ndarray:
    """Consecutive ids (in the order of the values) for non-negative integers ``combined``: what
    ``np.unique(return_inverse=True)`` gives, without its sort when the values span a small range."""
    if not len(combined):
        return combined
    span = int(combined.max()) + 1
    if span > 4 * len(combined) + 1024:
        return np.unique(combined, return_inverse=True)[1]
    present = np.zeros(span, dtype=bool)
    present[combined] = True
    return (np.cumsum(present) - 1)[combined]


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """A column's values as integer codes (nulls included) into its dictionary of distinct values, chunk
    by chunk (a chunked column's chunks share one dictionary): no combined copy of the column."""
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], column.type)
    indices = [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
    return np.concatenate(indices).astype(np.int64), chunks[0].dictionary


def _row_codes(table: pa.Table, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, int]]:
    """Integer codes (and how many distinct values) of the named columns of ``table``."""
    out = {}
    for name in names:
        codes, dictionary = _encoded(table.column(name))
        out[name] = (codes, len(dictionary))
    return out


def _rows_of(part: np.ndarray, codes: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One id per row of the tests: ``part`` (the number of the domain's banner and scope) and the
    columns' ``codes`` (wave, question and, for the rows, the code), combined as integers."""
    combined = part.astype(np.int64)
    for values, distinct in codes:
        combined = combined * (distinct + 1) + values
    return _dense(combined)


def _domain_index(table: pa.Table, ids: pa.Array) -> np.ndarray:
    """Each row's position in the domains (its ``scope`` is a domain id): the column dictionary-encoded
    once and its few distinct ids looked up, not every row's id hashed against the list for each use."""
    codes, dictionary = _encoded(table.column("scope"))
    lookup = pc.index_in(dictionary, value_set=ids).to_numpy(zero_copy_only=False).astype(np.int64)
    return lookup[codes]


def _column_tests(
    plan: BannerPlan,
    confidence: float,
    domain: np.ndarray,
    domains: list[Domain],
    group: np.ndarray,
    value: np.ndarray,
    se: np.ndarray,
    ok: np.ndarray,
) -> pa.Array:
    """For each unit (a banner column's estimate in one row: ``group`` ids the row, ``domain`` the column):
    the letters of the columns of its banner it is significantly higher than (see the module docstring).

    Vectorised over rows: the estimates go into a (row × column) grid, and each tested pair of columns is
    one array operation over all rows."""
    if len(group) == 0:
        return pa.array([], pa.string())
    cpos = np.array([d.cpos for d in domains], dtype=np.int64)[domain]
    bpos = np.array([d.bpos for d in domains], dtype=np.int64)[domain]
    rows = int(group.max()) + 1
    width = max(len(b.columns) for b in plan.banners)
    grid_v = np.full((rows, width), np.nan)
    grid_s = np.full((rows, width), np.nan)
    grid_ok = np.zeros((rows, width), dtype=bool)
    grid_v[group, cpos], grid_s[group, cpos], grid_ok[group, cpos] = value, se, ok
    row_banner = np.zeros(rows, dtype=np.int64)
    row_banner[group] = bpos
    masks = np.zeros((rows, width), dtype=np.int64)  # bit b set: higher than column b
    for position, banner in enumerate(plan.banners):
        pairs = _pairs_of(banner)
        mine = np.flatnonzero(row_banner == position)
        if not pairs or not len(mine):
            continue
        # the caller numbers each banner's rows consecutively (see banner_columns): a view, not a copy
        if mine[-1] - mine[0] + 1 == len(mine):
            mine = slice(int(mine[0]), int(mine[-1]) + 1)
        a_cols = np.array([a for a, _ in pairs])
        b_cols = np.array([b for _, b in pairs])
        values, errors, usable = grid_v[mine], grid_s[mine], grid_ok[mine]
        diff = values[:, a_cols] - values[:, b_cols]
        sa, sb = errors[:, a_cols], errors[:, b_cols]
        valid = usable[:, a_cols] & usable[:, b_cols]
        spread = np.sqrt(sa * sa + sb * sb)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(diff == 0, 0.0, np.where(spread == 0, np.inf, np.abs(diff) / spread))
        z = np.where(valid & ~np.isnan(z), z, -np.inf)
        m = valid.sum(axis=1)
        crit = _critical_values(len(pairs), plan.adjust, confidence)
        if plan.adjust == "bh":
            significant = valid & _step_up(z, m, crit)
        else:  # one critical value per row (its number of pairs): a pair passes when its |z| exceeds it
            significant = valid & (z > crit[m, 1][:, None])
        up = significant & (diff > 0)
        down = significant & (diff < 0)
        mine_masks = np.zeros((len(diff), width), dtype=np.int64)  # whole columns: no scatter per pair
        for j, (a, b) in enumerate(pairs):
            mine_masks[:, a] |= up[:, j].astype(np.int64) << b
            mine_masks[:, b] |= down[:, j].astype(np.int64) << a
        masks[mine] = mine_masks
    unit_masks = masks[group, cpos]
    index = _dense(unit_masks)  # a word per distinct mask (few), each unit pointing at its own
    mask_of = np.zeros(int(index.max()) + 1, dtype=np.int64)
    mask_of[index] = unit_masks
    words = pa.array(["".join(LETTERS[i] for i in range(width) if int(m) >> i & 1) for m in mask_of], pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), words).cast(pa.string())


def _step_up(z: np.ndarray, m: np.ndarray, crit: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg's step-up on each row's |z| (``m``: its tested pairs): with the pairs ranked from
    the largest |z|, the largest rank k whose |z| passes ``crit[m, k]``, and every pair at least as extreme
    as that one passes."""
    pairs = z.shape[1]
    ordered = -np.sort(-z, axis=1)  # each row's |z| from the largest
    ranks = np.arange(1, pairs + 1)
    passing = (ordered > crit[m][:, ranks]) & (ranks[None, :] <= m[:, None])
    kstar = np.where(passing.any(axis=1), pairs - np.argmax(passing[:, ::-1], axis=1), 0)
    threshold = np.where(kstar > 0, ordered[np.arange(len(z)), np.maximum(kstar - 1, 0)], np.inf)
    return (z >= threshold[:, None]) & (kstar[:, None] > 0)


def _se(table: pa.Table, design: str, estimate: str, n_eff: np.ndarray, kind: str) -> np.ndarray:
    """The standard errors the main tables use: the design's column when the table carries it, else
    Kish's (a percent's √(p(1−p)/n_eff), a mean's s/√n_eff)."""
    if design in table.column_names:
        return _numbers(table.column(design))
    x = _numbers(table.column(estimate))
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "percent":
            p = x / 100
            return 100 * np.sqrt(np.maximum(p * (1 - p), 0) / n_eff)
        return _numbers(table.column("sd")) / np.sqrt(n_eff)


def banner_columns(
    plan: BannerPlan, scopes: list[str], banner: tuple[pa.Table, pa.Table, pa.Table], confidence: float
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The banner columns' tables (rows, summaries, audit) of one wave, each row with its scope, the banner
    columns and the column-test letters appended (a row of the tests never spans two waves, so each
    wave's worker computes its own: see :func:`combine`)."""
    rows_b, summaries_b, audit_b = banner
    domains = plan.domains(scopes)
    ids = pa.array([d.id for d in domains], pa.string())
    # each domain's (banner, scope) as one number, the banner first so that each banner's rows of the tests
    # are numbered consecutively (see _column_tests): the tests compare the columns within it
    part_of = np.array([d.bpos * len(scopes) + scopes.index(d.scope) for d in domains], dtype=np.int64)

    def tested(
        table: pa.Table, domain: np.ndarray, group: np.ndarray, estimate: str, design_se: str, kind: str
    ) -> pa.Array:
        n_eff = _numbers(table.column("n_eff"))
        value = _numbers(table.column(estimate))
        se = _se(table, design_se, estimate, n_eff, kind)
        withheld = table.column("suppressed").to_numpy(zero_copy_only=False).astype(bool)
        ok = ~withheld & ~np.isnan(value) & ~np.isnan(se) & (n_eff > 0)
        return _column_tests(plan, confidence, domain, domains, group, value, se, ok)

    rows_domain, summaries_domain = _domain_index(rows_b, ids), _domain_index(summaries_b, ids)
    row_codes = _row_codes(rows_b, ("wave", "question", "code"))
    row_ids = _rows_of(part_of[rows_domain], list(row_codes.values()))
    row_letters = tested(rows_b, rows_domain, row_ids, "percent", "se", "percent")
    summary_rows = _rows_of(part_of[summaries_domain], list(_row_codes(summaries_b, ("wave", "question")).values()))
    top_letters = tested(summaries_b, summaries_domain, summary_rows, "topbox", "topbox_se", "percent")
    mean_letters = tested(summaries_b, summaries_domain, summary_rows, "mean", "mean_se", "mean")
    position = _summary_position([row_codes["wave"][0], rows_domain, row_codes["question"][0]])
    index = pa.array(summaries_domain)
    summaries_b = _replace_scope(summaries_b, domains, index)
    for name, column in (
        *_domain_columns(plan, domains, index),
        ("topbox_sig_columns", top_letters),
        ("mean_sig_columns", mean_letters),
    ):
        summaries_b = summaries_b.append_column(name, column)
    index = pa.array(rows_domain)
    rows_meta = _domain_columns(plan, domains, index)
    rows_b = _replace_scope(rows_b, domains, index)
    for name, column in (
        *rows_meta,
        ("sig_columns", row_letters),
        ("topbox_sig_columns", top_letters.take(position)),
        ("mean_sig_columns", mean_letters.take(position)),
    ):
        rows_b = rows_b.append_column(name, column)
    index = pa.array(_domain_index(audit_b, ids))
    audit_meta = dict(_domain_columns(plan, domains, index))
    audit_b = _replace_scope(audit_b, domains, index)
    for name in AUDIT_COLUMNS:
        audit_b = audit_b.append_column(name, audit_meta[name])
    # a banner column of 'all' has no benchmark to withhold
    keep = pc.invert(
        pc.and_(pc.equal(audit_b.column("scope"), "all"), pc.equal(audit_b.column("withheld"), "benchmark"))
    )
    return rows_b, summaries_b, audit_b.filter(keep)


def combine(
    main: tuple[pa.Table, pa.Table, pa.Table], columns: tuple[pa.Table, pa.Table, pa.Table]
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The main tables (the Total columns) and the banner columns' tables (of :func:`banner_columns`) as
    one set of (rows, summaries, audit): the Total rows as without banners, then the banner columns'."""
    rows_b, summaries_b, audit_b = columns
    rows_m, summaries_m, audit_m = main
    return (
        _appended(_with_total(rows_m, ROW_COLUMNS), rows_b),
        _appended(_with_total(summaries_m, SUMMARY_COLUMNS), summaries_b),
        _appended(_with_total(audit_m, AUDIT_COLUMNS), audit_b),
    )


def _summary_position(keys: list[np.ndarray]) -> pa.Array:
    """For each row, the position of its question's summary: the report writes each summary's rows
    together, in the summaries' order, and every summary has at least one row (system missing, or no
    response counted), so a new summary starts wherever (wave, scope, question) changes (``keys``: their
    integer codes per row)."""
    if not len(keys[0]):
        return pa.array([], pa.int64())
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for values in keys:
        change[1:] |= values[1:] != values[:-1]
    return pa.array(np.cumsum(change) - 1)


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
        # one value repeated in Arrow, not a Python list of a million strings
        table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
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
