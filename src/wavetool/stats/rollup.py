"""From cells to tables: roll the cells up to scopes, benchmarks and the previous wave, compute every
statistic, and withhold small bases. SQL and numpy over small Arrow inputs (a few thousand rows per wave),
in two stages, each run once per wave on that wave's own cursor (see ``stats._tables_by_wave``):

- :func:`aggregate`: every sum (scopes, benchmarks, bases, means, spreads). SQL classifies the cells (sums
  per key and answer, from the scan); each key's sums per question, the sums over each domain's keys (a
  scope's code rows, a benchmark's and the simple design's variance terms: see :func:`domain_sums`) and the
  base statistics that follow are numpy;
- :func:`report`: joins and row-wise arithmetic, given the wave's aggregates and the previous wave's
  statistics.

Floating-point sums depend on the order of addition, and DuckDB's threads combine partial sums in
whatever order they finish; every query here runs on one thread, and numpy sums in a fixed order (rows by
position, domains' keys in order), which keeps the tables byte-for-byte reproducible; the waves run side by
side instead.

The design (see :mod:`wavetool.stats.design`): cells are sums per *key*, and no SQL here parses a key. The
``keys`` input maps every key to its jurisdiction, owner (custom answers), stratum and PSU, and ``strata``
gives each stratum's n_h (units over all the wave's respondents); the linearised variances sum each
domain's per-key statistics by stratum (and by PSU). So a caller may key the cells more finely (banner
columns: jurisdiction + SEP + banner code; a strata or cluster column) and, by supplying the matching
``keys`` / ``strata`` and ``scopes`` tables, get every statistic of the finer domains unchanged.

Inputs (registered as views named ``_wt_<name>`` while a stage runs):

- ``cells`` / ``mr``: see :mod:`wavetool.stats.frequencies`.
- ``keys`` (key, jurisdiction, owner, stratum, psu[, part]) and ``strata`` (stratum, n_h): see above. The
  optional ``part`` lets one stage roll up the scopes' own keys (part 0) and finer keys of the same
  respondents (the banner columns' keys, part 1) together: the questions' centres (see
  _key_question_sums) are then taken over part 0 alone, so its statistics are those of its own roll-up.
- ``questions`` (wave, question, name, kind, label, owner, qpos, is_scale): ``question`` is the internal id
  (``<subscriber>:<name>`` for a custom question, so it never merges with a core question of that name).
- ``codes`` (wave, question, value, label, missing): labelled codes; ``missing`` = declared user-missing.
- ``ranges`` (wave, question, low, high): user-missing declarations, to classify unlabelled codes.
- ``boxes`` (wave, question, value, top, bottom): top/bottom-box codes of scales.
- ``items`` (wave, question, item, label, ipos): the lines of multiple-response sets.
- ``scopes``: for :func:`aggregate` (scope, spos, key) and ``bench`` (scope, key), which cell keys make up
  a scope and its benchmark (every other respondent of the wave: independent samples); for
  :func:`report` (scope, spos), the scopes in output order.
- ``targets`` (wave, scope): the wave/scope pairs to output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sql import code_text_sql
from .significance import (
    adjust_families,
    effective_base_sql,
    interval_sql,
    mean_ci_sql,
    p_values,
    verdict_sql,
)

AGGREGATE_INPUTS = ("cells", "mr", "questions", "codes", "ranges", "boxes", "scopes", "bench", "keys", "strata")
AGGREGATES = ("classified", "unlabelled", "mr_rolled", "stats", "mr_responses")
REPORT_INPUTS = ("questions", "codes", "items", "scopes", "targets")

CODE_TEXT = code_text_sql("{v}")


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], names: tuple[str, ...]) -> Iterator[None]:
    """Register the Arrow inputs ``names`` as ``_wt_<name>`` views, and unregister them afterwards."""
    for name in names:
        con.register(f"_wt_{name}", inputs[name])
    try:
        yield
    finally:
        for name in names:
            con.unregister(f"_wt_{name}")


class _Ids:
    """Integer codes for the engine's string ids (``scope``, ``question``, ``key``) while one stage runs:
    DuckDB joins and groups integers several times faster than strings (a 4-column join of 270,000 cell
    rows: 86 ms on strings, 16 ms on integers), and the SQL only ever compares these ids for equality.
    Each stage encodes its inputs and decodes what it returns, so the stages still exchange strings."""

    def __init__(self, **columns: list[pa.ChunkedArray | pa.Array]) -> None:
        # each column's dictionary: its distinct values where it occurs, in first-seen order
        self.dictionaries = {
            name: pc.unique(
                pa.chunked_array([c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in seen])
            )
            for name, seen in columns.items()
        }

    def encode(self, table: pa.Table) -> pa.Table:
        for name, values in self.dictionaries.items():
            if name in table.column_names:
                codes = pc.index_in(table.column(name), value_set=values)
                table = table.set_column(table.schema.get_field_index(name), name, codes)
        return table

    def decode(self, table: pa.Table) -> pa.Table:
        for name, values in self.dictionaries.items():
            if name in table.column_names:
                names = pc.take(values, table.column(name))
                table = table.set_column(table.schema.get_field_index(name), name, names)
        return table


def _columns(inputs: dict[str, pa.Table], name: str, tables: tuple[str, ...]) -> list[pa.ChunkedArray]:
    return [inputs[t].column(name) for t in tables if t in inputs and name in inputs[t].column_names]


# The statistics of every (side, wave, scope, question) base: side 'scope' is the scope itself,
# 'bench' its benchmark. Multiple-response sets get their base (respondents with at least one response)
# and nothing else.
# Every cell classified as valid, user-missing or system-missing (and in a box or not), before it is rolled
# up to the scopes and the benchmarks.
# Every (question, value) answered, numbered (qv: the scopes' code rows are summed by (scope, qv), two
# integers, and take the rest from here), with its status and boxes.
_MARK_CTES = """
observed AS (SELECT DISTINCT wave, question, value FROM _wt_cells),
is_missing AS (
    SELECT wave, question, value FROM _wt_codes WHERE missing
    UNION
    SELECT o.wave, o.question, o.value FROM observed o
    JOIN _wt_ranges m ON o.wave = m.wave AND o.question = m.question AND o.value BETWEEN m.low AND m.high
),
marks AS (
    SELECT (row_number() OVER (ORDER BY o.wave, o.question, o.value NULLS FIRST) - 1)::INTEGER AS qv,
        o.wave, o.question, o.value,
        CASE WHEN o.value IS NULL THEN 'system' WHEN im.value IS NOT NULL THEN 'user' ELSE 'valid' END AS status,
        coalesce(bx.top, FALSE) AS top, coalesce(bx.bottom, FALSE) AS bottom
    FROM observed o
    LEFT JOIN is_missing im ON o.wave = im.wave AND o.question = im.question AND o.value = im.value
    LEFT JOIN _wt_boxes bx ON o.wave = bx.wave AND o.question = bx.question AND o.value = bx.value
)
"""
# Every cell with its mark.
_MARKED = """
    SELECT c.*, k.qv, k.status, k.top, k.bottom
    FROM _wt_cells c JOIN _wt_m_marks k
        ON c.wave = k.wave AND c.question = k.question AND c.value IS NOT DISTINCT FROM k.value
"""

# Each key's stratum size and the weights of its share of a linearised variance, α q + β t² (α = n_h/(n_h − 1),
# β = −1/(n_h − 1); α = 0, β = 1 for a lonely stratum), computed by key_weights.
_KEY_N_CTE = """
key_n AS NOT MATERIALIZED (SELECT * FROM _wt_m_key_n),
"""

_MR_CTES = """
mr_scoped AS (
    SELECT c.wave, s.scope, c.question, c.item, c.role, sum(c.n)::BIGINT AS n, sum(c.sw) AS sw, sum(c.sw2) AS sw2
    FROM _wt_mr c JOIN _wt_scopes s ON c.key = s.key GROUP BY ALL
),
mr_rolled AS (
    SELECT 'scope' AS side, * FROM mr_scoped
    UNION ALL
    SELECT 'bench', c.wave, b.scope, c.question, c.item, c.role, sum(c.n)::BIGINT, sum(c.sw), sum(c.sw2)
    FROM _wt_mr c JOIN _wt_bench b ON c.key = b.key GROUP BY ALL
)
"""

# A multiple-response set's base (its respondents with at least one response) and nothing else; the single
# questions' statistics are computed in numpy (see _single_stats).
_MR_STATS = """
    SELECT side, wave, scope, question,
        coalesce(sum(n) FILTER (WHERE role = 'base'), 0)::BIGINT AS base_n,
        coalesce(sum(sw) FILTER (WHERE role = 'base'), 0) AS base_w,
        sum(sw) FILTER (WHERE role = 'base') * sum(sw) FILTER (WHERE role = 'base') / nullif(sum(sw2) FILTER (WHERE role = 'base'), 0) AS n_eff,
        NULL::DOUBLE AS p_top, NULL::DOUBLE AS p_bottom, NULL::DOUBLE AS mean, NULL::DOUBLE AS sd,
        NULL::DOUBLE AS code_d1, NULL::DOUBLE AS code_d2
    FROM _wt_m_mr_rolled GROUP BY ALL
"""

# The questions each (wave, scope) shows: the core ones, and a subscriber's own custom ones in its scope.
_TARGET_QUESTIONS = """
    SELECT t.wave, t.scope, s.name AS scope_name, s.spos, q.question, q.name, q.kind, q.label, q.qpos, q.is_scale
    FROM _wt_targets t
    JOIN _wt_scopes s USING (scope)
    -- a banner column's scope id is its scope + chr(31) + … (stats.banners): it shows its scope's questions
    JOIN _wt_questions q ON q.wave = t.wave AND (q.owner IS NULL OR q.owner = s.parent)
"""

# Each target question's statistics beside its benchmark's and the previous wave's.
_JOINED_CTE = """
joined AS (
    SELECT tq.*,
        coalesce(s.base_n, 0) AS base_n, coalesce(s.base_w, 0) AS base_w, s.n_eff, s.p_top, s.p_bottom, s.mean, s.sd,
        s.var_top, s.var_mean, s.df, s.code_d1, s.code_d2,
        b.base_n AS b_n, b.n_eff AS b_neff, b.p_top AS b_top, b.mean AS b_mean, b.sd AS b_sd,
        b.var_top AS b_vtop, b.var_mean AS b_vmean,
        p.base_n AS p_n, p.n_eff AS p_neff, p.p_top AS p_top_prev, p.mean AS p_mean, p.sd AS p_sd,
        p.var_top AS p_vtop, p.var_mean AS p_vmean,
        coalesce(s.base_n, 0) < $min_base AS small_base,
        coalesce(b.base_n, 0) >= $min_base AS bench_ok,
        coalesce(p.base_n, 0) >= $min_base AS prev_ok
    FROM target_questions tq
    LEFT JOIN stats s ON s.side = 'scope' AND s.wave = tq.wave AND s.scope = tq.scope AND s.question = tq.question
    LEFT JOIN stats b ON b.side = 'bench' AND b.wave = tq.wave AND b.scope = tq.scope AND b.question = tq.question
    LEFT JOIN stats p ON p.side = 'scope' AND p.wave = tq.wave - 1 AND p.scope = tq.scope AND p.question = tq.question
)
"""

TEST_COLUMNS = ("topbox_vs_benchmark", "mean_vs_benchmark", "topbox_vs_previous", "mean_vs_previous")
NEW_SUMMARY_COLUMNS = (
    "topbox_se",
    "mean_se",
    "deff",
    "n_eff_design",
    *(f"p_{t}" for t in TEST_COLUMNS),
    *(f"p_adj_{t}" for t in TEST_COLUMNS),
    "quality",
)


@dataclass(frozen=True)
class Methods:
    """How the report stage computes intervals, tests and flags (from ``[tables]``)."""

    z: float
    confidence: float
    min_base: int
    test: str
    variance: str = "linearized"
    interval: str = "wilson"
    adjust: str = "bh"
    cv_caution: float = 16.6
    cv_suppress: float = 33.3
    min_effective_base: float = 0.0

    @property
    def kish(self) -> bool:
        return self.variance == "kish"

    def params(self) -> dict[str, object]:
        return {"z": self.z, "min_base": self.min_base, "test": self.test}

    def base(self, p: str, var: str, n_eff: str) -> str:
        """The effective base an interval of ``p`` is computed on (Kish's n_eff in kish mode)."""
        return n_eff if self.kish else effective_base_sql(p, var, n_eff)

    def ci(self, p: str, base: str, rows: str, df: str, low: bool) -> str:
        """SQL of one end of the configured interval of ``p`` on ``base`` (a column holding :meth:`base`, computed
        once: the interval names it several times; see significance.interval_sql)."""
        return interval_sql(self.interval, p, base, "$z", self.confidence, rows, df, low)

    def quality(self, cv: str) -> str:
        """SQL flag of an estimate from its coefficient of variation ``cv`` (a fraction; NULL: no flag)."""
        parts = ["CASE WHEN " + cv + " IS NULL THEN ''"]
        if self.cv_suppress > 0:
            parts.append(f"WHEN {cv} > {self.cv_suppress / 100!r} THEN 'F'")
        if self.cv_caution > 0:
            parts.append(f"WHEN {cv} >= {self.cv_caution / 100!r} THEN 'E'")
        return " ".join(parts) + " ELSE '' END"

    def f_reason(self, what: str, cv: str) -> str:
        return (
            f"'{what} CV ' || printf('%.1f', 100 * {cv}) || '% > cv_suppress {self.cv_suppress:g}%"
            " (F: too unreliable to be published)'"
        )


# the four tests of a summary (top box and mean, vs benchmark and vs previous wave), numbered in this order
_TESTS = ("tb", "mb", "tp", "mp")


def _summary_select(m: Methods) -> str:
    """The summaries: ``pre`` (every estimate, its variance and flag), which tests are reported, then the
    published columns; the p-values, their adjustment and the adjusted verdicts are filled in after the
    query (see _tested)."""
    z = "$z"
    eff = f"coalesce({effective_base_sql('j.p_top', 'j.var_top', 'NULL')}, j.n_eff)"
    small_eff = f"coalesce({eff}, 0) < {m.min_effective_base!r}" if m.min_effective_base > 0 else "FALSE"
    cv_top = "(CASE WHEN j.p_top > 0 THEN sqrt(j.var_top) / j.p_top END)"
    pre = f"""
    pre AS (
        SELECT j.*, (j.small_base OR {small_eff}) AS suppressed, {eff} AS eff_base,
            {cv_top} AS cv_top, {m.quality(cv_top)} AS top_quality,
            {m.base("j.p_top", "j.var_top", "j.n_eff")} AS top_ci_base,
            (j.p_top - j.b_top) AS d_tb, sqrt(j.var_top + j.b_vtop) AS se_tb,
            (j.mean - j.b_mean) AS d_mb, sqrt(j.var_mean + j.b_vmean) AS se_mb,
            (j.p_top - j.p_top_prev) AS d_tp, sqrt(j.var_top + j.p_vtop) AS se_tp,
            (j.mean - j.p_mean) AS d_mp, sqrt(j.var_mean + j.p_vmean) AS se_mp
        FROM joined j
    ),
    flagged AS (
        SELECT *, NOT suppressed AS keep, NOT suppressed AND top_quality <> 'F' AS keep_top,
            -- which tests are reported (their p-values are computed after the query: see _tested)
            NOT suppressed AND top_quality <> 'F' AND bench_ok AS ok_tb, NOT suppressed AND bench_ok AS ok_mb,
            NOT suppressed AND top_quality <> 'F' AND prev_ok AS ok_tp, NOT suppressed AND prev_ok AS ok_mp
        FROM pre
    ),
    summary AS ("""
    if m.adjust == "none":  # as before issue 12: |z| > z_(1-α/2)

        def verdict(test: str, ok: str) -> str:
            return f"CASE WHEN {ok} THEN {verdict_sql(f'j.d_{test}', f'j.se_{test}', z)} ELSE '' END"
    else:  # decided on the adjusted p-values, after the query (see _tested)

        def verdict(test: str, ok: str) -> str:
            return "''"

    keep, keep_top = "j.keep", "j.keep_top"
    top = "j.p_top"
    n_eff_design = f"(CASE WHEN j.var_top > 0 THEN {top} * (1 - {top}) / j.var_top END)"
    reason = f"""CASE WHEN j.suppressed THEN
            CASE WHEN j.base_n = 0 THEN 'no valid responses (base 0 < min_base ' || $min_base || ')'
                 WHEN j.small_base THEN 'unweighted base ' || j.base_n || ' < min_base ' || $min_base
                 ELSE 'effective base ' || printf('%.1f', j.eff_base) || ' < min_effective_base {m.min_effective_base:g}' END
            WHEN j.top_quality = 'F' THEN {m.f_reason("top-2 box", "j.cv_top")}
        ELSE '' END"""
    return f"""{pre}
    SELECT j.wave, j.scope_name AS scope, j.name AS question, j.kind, j.label,
        j.base_n,
        CASE WHEN {keep} THEN j.base_w END AS base_weighted,
        CASE WHEN {keep} THEN j.n_eff END AS n_eff,
        CASE WHEN {keep_top} THEN 100.0 * j.p_top END AS topbox,
        CASE WHEN {keep_top} THEN {m.ci(top, "j.top_ci_base", "j.base_n", "j.df", True)} END AS topbox_ci_low,
        CASE WHEN {keep_top} THEN {m.ci(top, "j.top_ci_base", "j.base_n", "j.df", False)} END AS topbox_ci_high,
        CASE WHEN {keep} THEN 100.0 * j.p_bottom END AS bottombox,
        CASE WHEN {keep} THEN j.mean END AS mean,
        CASE WHEN {keep} THEN j.sd END AS sd,
        CASE WHEN {keep} THEN {mean_ci_sql("j.mean", "j.sd", "j.n_eff", z, True) if m.kish else "j.mean - $z * sqrt(j.var_mean)"} END AS mean_ci_low,
        CASE WHEN {keep} THEN {mean_ci_sql("j.mean", "j.sd", "j.n_eff", z, False) if m.kish else "j.mean + $z * sqrt(j.var_mean)"} END AS mean_ci_high,
        CASE WHEN {keep} AND j.bench_ok THEN 100.0 * j.b_top END AS benchmark_topbox,
        CASE WHEN {keep} AND j.bench_ok THEN j.b_mean END AS benchmark_mean,
        {verdict("tb", f"{keep_top} AND j.bench_ok")} AS sig_topbox_vs_benchmark,
        {verdict("mb", f"{keep} AND j.bench_ok")} AS sig_mean_vs_benchmark,
        CASE WHEN {keep} AND j.prev_ok THEN 100.0 * j.p_top_prev END AS previous_topbox,
        CASE WHEN {keep} AND j.prev_ok THEN j.p_mean END AS previous_mean,
        {verdict("tp", f"{keep_top} AND j.prev_ok")} AS sig_topbox_vs_previous,
        {verdict("mp", f"{keep} AND j.prev_ok")} AS sig_mean_vs_previous,
        $test AS test,
        j.suppressed,
        {reason} AS suppression_reason,
        CASE WHEN {keep_top} THEN 100.0 * sqrt(j.var_top) END AS topbox_se,
        CASE WHEN {keep} THEN sqrt(j.var_mean) END AS mean_se,
        CASE WHEN {keep_top} THEN j.base_n / {n_eff_design} END AS deff,
        CASE WHEN {keep_top} THEN {n_eff_design} END AS n_eff_design,
        NULL::DOUBLE AS p_topbox_vs_benchmark, NULL::DOUBLE AS p_mean_vs_benchmark,
        NULL::DOUBLE AS p_topbox_vs_previous, NULL::DOUBLE AS p_mean_vs_previous,
        NULL::DOUBLE AS p_adj_topbox_vs_benchmark, NULL::DOUBLE AS p_adj_mean_vs_benchmark,
        NULL::DOUBLE AS p_adj_topbox_vs_previous, NULL::DOUBLE AS p_adj_mean_vs_previous,
        CASE WHEN {keep} THEN j.top_quality ELSE '' END AS quality,
        j.top_quality = 'F' AND {keep} AS top_withheld, j.cv_top,
        j.spos, j.qpos, j.question AS qid, j.n_eff AS n_eff_raw, j.df,
        j.b_n, j.p_n, j.bench_ok, j.prev_ok, j.base_w AS base_w_raw, j.code_d1, j.code_d2, j.scope AS scope_code,
        j.d_tb, j.d_mb, j.d_tp, j.d_mp, j.se_tb, j.se_mb, j.se_tp, j.se_mp, j.ok_tb, j.ok_mb, j.ok_tp, j.ok_mp
    FROM flagged j
    )"""


SUMMARY_COLUMNS = (
    "wave, scope, question, kind, label, base_n, base_weighted, n_eff, topbox, topbox_ci_low, topbox_ci_high, "
    "bottombox, mean, sd, mean_ci_low, mean_ci_high, benchmark_topbox, benchmark_mean, sig_topbox_vs_benchmark, "
    "sig_mean_vs_benchmark, previous_topbox, previous_mean, sig_topbox_vs_previous, sig_mean_vs_previous, test, "
    "suppressed, suppression_reason"
)
SUMMARY_ORDER = (*(c.strip() for c in SUMMARY_COLUMNS.split(",")), *NEW_SUMMARY_COLUMNS)


# The columns of a row that come from its question's summary (after the row's own), in output order.
ROW_SUMMARY_COLUMNS = (
    "wave",
    "scope",
    "question",
    "kind",
    "label",  # as question_label
    *(
        c.strip()
        for c in SUMMARY_COLUMNS.split(",")[5:]
        if c.strip() not in ("n_eff", "suppressed", "suppression_reason")
    ),
    "suppressed",
    "suppression_reason",
)
# A row's own new columns (se, deff, n_eff_design, quality) and its summary's, after all the above.
ROW_NEW_COLUMNS = ("se", "topbox_se", "mean_se", "deff", "n_eff_design")
ROW_NEW_SUMMARY = tuple(c for c in NEW_SUMMARY_COLUMNS if c.startswith("p_"))


def code_variance_sql(s: str, s1: str, s2: str, s3: str, bw: str, d1: str, d2: str) -> str:
    """SQL of a valid code's linearised variance in the simple design (see _scoped) from its
    weight ``s`` and sums ``s1``-``s3`` and its base's weight ``bw`` and sums ``d1``, ``d2``: with p = s/bw,
    Σ_k (α_k q_k + β_k t_k²) = ((1 − 2p)·s1 + p²·(d1 + d2) + s2 − 2p·s3) / bw², no code × key product.
    Below ~1e-11 of the size of its cancelling terms it is rounding noise (a code chosen by everyone in
    the domain, e.g. a banner variable in its own column), and is 0. NULL without the sums."""
    p = f"({s} / {bw})"
    raw = f"(((1 - 2 * {p}) * {s1} + {p} * {p} * ({d1} + {d2}) + {s2} - 2 * {p} * {s3}) / ({bw} * {bw}))"
    scale = (
        f"((abs(1 - 2 * {p}) * abs({s1}) + {p} * {p} * (abs({d1}) + abs({d2})) + abs({s2}) + 2 * {p} * abs({s3}))"
        f" / ({bw} * {bw}))"
    )
    return f"(CASE WHEN {s1} IS NOT NULL AND {bw} > 0 THEN (CASE WHEN {raw} <= 1e-11 * {scale} THEN 0.0 ELSE {raw} END) END)"


def _rows_select(m: Methods) -> str:
    """The code rows of every summary (``sidx``: the summary's position), with the ranks of their display
    order (sorted by :func:`report`: sidx, rank1, rank2): valid codes, user-missing codes, then system
    missing; a multiple-response set's items in set order, then the
    respondents who gave none. Only the row's own columns: :func:`report` adds its summary's. A row whose
    percent has a CV above cv_suppress is withheld, every estimate of it (its n and weighted n stay:
    counts, not estimates)."""
    code = CODE_TEXT.format(v="r.value")
    # one wave per report (report checks it), so its cells join on scope and question alone: the wave as a
    # fourth key only cost time (a banner wave's report, alternating: median 443 -> 400 and 398 -> 372 ms)
    scope_cell = "c.scope = su.scope_code AND c.question = su.qid"
    kish = "greatest(r.p * (1 - r.p), 0) / su.n_eff_raw"
    cv = "(CASE WHEN r.p > 0 THEN sqrt(r.var) / r.p END)"
    show = "NOT r.su_suppressed AND r.quality <> 'F'"
    n_eff_design = "(CASE WHEN r.var > 0 THEN r.p * (1 - r.p) / r.var END)"
    # the summary's columns each row needs, taken where the lines start from their summary: no join after
    su_cols = (
        "su.suppressed AS su_suppressed, su.n_eff AS su_n_eff, su.n_eff_raw AS su_n_eff_raw, "
        "su.base_n AS su_base_n, su.df AS su_df, su.base_w_raw AS su_bw, su.code_d1 AS su_d1, su.code_d2 AS su_d2"
    )
    code_var = code_variance_sql("r.w_raw", "r.s1", "r.s2", "r.s3", "r.su_bw", "r.su_d1", "r.su_d2")
    var = kish.replace("su.", "r.su_") if m.kish else f"coalesce(r.pre_var, {code_var}, 0)"
    return f"""
    single_lines AS (
        SELECT su.sidx, k.value, k.label, k.missing AS user_missing, c.n, c.sw, c.s1, c.s2, c.s3, c.var, {su_cols}
        FROM summary su JOIN _wt_codes k ON k.wave = su.wave AND k.question = su.qid
        LEFT JOIN classified c ON {scope_cell} AND c.value = k.value
        WHERE su.kind <> 'multiple'
        UNION ALL  -- values answered that have no label
        SELECT su.sidx, c.value, NULL, u.user_missing, c.n, c.sw, c.s1, c.s2, c.s3, c.var, {su_cols}
        FROM unlabelled u JOIN summary su ON su.wave = u.wave AND su.qid = u.question
        JOIN classified c ON {scope_cell} AND c.value = u.value
        WHERE su.kind <> 'multiple'
        UNION ALL  -- system missing, always shown
        SELECT su.sidx, NULL, 'System missing', FALSE, c.n, c.sw, NULL, NULL, NULL, NULL, {su_cols}
        FROM summary su LEFT JOIN classified c ON {scope_cell} AND c.value IS NULL
        WHERE su.kind <> 'multiple'
    ),
    single_rows AS (
        SELECT l.sidx, l.value,
            CASE WHEN l.value IS NULL THEN '.' ELSE {code.replace("r.value", "l.value")} END AS code,
            l.label, (l.value IS NULL OR l.user_missing) AS missing,
            coalesce(l.n, 0) AS n_raw, coalesce(l.sw, 0.0) AS w_raw,
            CASE WHEN l.value IS NOT NULL AND NOT l.user_missing AND l.su_bw > 0 THEN coalesce(l.sw, 0.0) / l.su_bw END AS p,
            NULL::DOUBLE AS p_responses,
            CASE WHEN l.value IS NULL THEN 2 WHEN l.user_missing THEN 1 ELSE 0 END AS rank1,
            coalesce(l.value, 0) AS rank2,
            l.s1, l.s2, l.s3, l.var AS pre_var, l.su_suppressed, l.su_n_eff, l.su_n_eff_raw, l.su_base_n, l.su_df,
            l.su_bw, l.su_d1, l.su_d2
        FROM single_lines l
    ),
    multiple_rows AS (
        SELECT su.sidx, NULL::DOUBLE AS value, i.item AS code, i.label, FALSE AS missing,
            coalesce(c.n, 0) AS n_raw, coalesce(c.sw, 0.0) AS w_raw,
            CASE WHEN su.base_w_raw > 0 THEN coalesce(c.sw, 0.0) / su.base_w_raw END AS p,
            CASE WHEN r.total > 0 THEN 100.0 * coalesce(c.sw, 0.0) / r.total END AS p_responses,
            0 AS rank1, i.ipos AS rank2, NULL::DOUBLE AS s1, NULL::DOUBLE AS s2, NULL::DOUBLE AS s3, c.var AS pre_var,
            {su_cols}
        FROM summary su JOIN _wt_items i ON i.wave = su.wave AND i.question = su.qid
        LEFT JOIN mr_rolled c ON {scope_cell} AND c.role = 'item' AND c.item = i.item
        LEFT JOIN mr_responses r ON r.wave = su.wave AND r.scope = su.scope_code AND r.question = su.qid
        UNION ALL
        SELECT su.sidx, NULL, '.', 'No response counted', TRUE, coalesce(c.n, 0), coalesce(c.sw, 0.0), NULL, NULL, 2, 0,
            NULL, NULL, NULL, NULL, {su_cols}
        FROM summary su LEFT JOIN mr_rolled c ON {scope_cell} AND c.role = 'none'
        WHERE su.kind = 'multiple'
    ),
    all_rows AS (SELECT * FROM single_rows UNION ALL SELECT * FROM multiple_rows),
    with_var AS (SELECT r.*, CASE WHEN r.p IS NOT NULL THEN {var} END AS var FROM all_rows r),
    flagged AS (
        SELECT r.*, {cv} AS cv, CASE WHEN r.su_suppressed THEN '' ELSE {m.quality(cv)} END AS quality,
            {m.base("r.p", "r.var", "r.su_n_eff_raw")} AS ci_base
        FROM with_var r
    )
    SELECT r.sidx, r.rank1, r.rank2, r.code, r.label, r.missing,
        CASE WHEN NOT r.su_suppressed THEN r.n_raw END AS n,
        CASE WHEN NOT r.su_suppressed THEN r.w_raw END AS weighted_n,
        CASE WHEN {show} THEN 100.0 * r.p END AS percent,
        CASE WHEN {show} AND r.p IS NOT NULL THEN r.su_n_eff END AS n_eff,
        CASE WHEN {show} AND r.p IS NOT NULL THEN {m.ci("r.p", "r.ci_base", "r.su_base_n", "r.su_df", True)} END AS ci_low,
        CASE WHEN {show} AND r.p IS NOT NULL THEN {m.ci("r.p", "r.ci_base", "r.su_base_n", "r.su_df", False)} END AS ci_high,
        CASE WHEN {show} THEN r.p_responses END AS percent_of_responses,  -- an F item's share of responses too
        CASE WHEN {show} THEN 100.0 * sqrt(r.var) END AS se,
        CASE WHEN {show} THEN r.su_base_n / {n_eff_design} END AS deff,
        CASE WHEN {show} THEN {n_eff_design} END AS n_eff_design,
        r.quality,
        r.quality = 'F' AS withheld,
        CASE WHEN r.quality = 'F' THEN {m.f_reason("code", "r.cv").replace("'code CV", "'percent CV")} END AS row_reason
    FROM flagged r
    """


def _audit_select() -> str:
    return """
    SELECT wave, scope, question, 'question' AS withheld, base_n, $min_base AS min_base, suppression_reason AS reason,
        spos, qpos
    FROM summary WHERE suppressed
    UNION ALL
    SELECT wave, scope, question, 'top-2 box', base_n, $min_base, suppression_reason, spos, qpos
    FROM summary WHERE top_withheld
    UNION ALL
    SELECT s.wave, s.scope, s.question, 'code ' || r.code, s.base_n, $min_base, r.row_reason, s.spos, s.qpos
    FROM summary s JOIN own_rows r USING (sidx) WHERE r.withheld
    UNION ALL
    SELECT wave, scope, question, 'benchmark', coalesce(b_n, 0), $min_base,
        'benchmark (all other respondents) unweighted base ' || coalesce(b_n, 0) || ' < min_base ' || $min_base, spos, qpos
    FROM summary WHERE NOT suppressed AND kind <> 'custom' AND scope <> 'all' AND NOT bench_ok
    UNION ALL
    SELECT wave, scope, question, 'previous wave', p_n, $min_base,
        'wave ' || (wave - 1) || ' unweighted base ' || p_n || ' < min_base ' || $min_base, spos, qpos
    FROM summary WHERE NOT suppressed AND p_n IS NOT NULL AND NOT prev_ok
    """


# Linearised variances (see the README's definitions and stats.design). Each domain (side, wave, scope,
# question) contributes, per key, t = Σ z and q = Σ z² of the linearised values z = w(y − est)/W of its
# valid answers; an estimate is the mean (y = the value), the top box (y = 1 in the top box) or a code's
# percent (y = 1 for that code, from the key's totals: no code × cell product). Per unit (a PSU, or the
# respondents of a key when they are their own PSUs) T = Σ t and Q = T² or Σ q; per stratum
# n_h/(n_h − 1) · (ΣQ − (ΣT)²/n_h), and a stratum of one unit contributes (ΣT)² (R's
# survey.lonely.psu = "adjust": centred on the grand mean, which is 0 for a domain ratio).
_KEY_CTES = """
sides AS (SELECT 'scope' AS side, scope, key FROM _wt_scopes UNION ALL SELECT 'bench', scope, key FROM _wt_bench),
key_centres AS (  -- each question's mean over the wave, which keeps the centred sums below exact
    SELECT wave, question, sum(sw * value) / nullif(sum(sw), 0) AS centre
    FROM _wt_m_marked WHERE status = 'valid' GROUP BY ALL
),
key_stats AS (  -- per key and question, once: the sums every domain's z-sums follow from
    SELECT m.wave, m.key, m.question, any_value(c.centre) AS centre, sum(m.n) AS n, sum(m.sw) AS w,
        sum(m.sw2) AS w2, coalesce(sum(m.sw) FILTER (WHERE m.top), 0) AS top_w,
        coalesce(sum(m.sw2) FILTER (WHERE m.top), 0) AS top_w2,
        sum(m.sw * (m.value - c.centre)) AS wd, sum(m.sw2 * (m.value - c.centre)) AS w2d,
        sum(m.sw2 * (m.value - c.centre) * (m.value - c.centre)) AS w2dd
    FROM _wt_m_marked m JOIN key_centres c USING (wave, question)
    WHERE m.status = 'valid' GROUP BY m.wave, m.key, m.question
),
"""
_DOMAIN_KEYS_CTE = """
dom_keys AS (
    SELECT d.side, d.scope, k.*, s.base_w AS bw, s.mean - k.centre AS shift, s.p_top
    FROM key_stats k JOIN sides d ON k.key = d.key
    JOIN _wt_m_stats s ON s.side = d.side AND s.wave = k.wave AND s.scope = d.scope AND s.question = k.question
    WHERE s.base_w > 0
),
"""
# the code rows' and multiple-response sets' per-key cells
_CELL_CTES = """
scope_cells AS (  -- the code rows' per-key cells (scopes only: benchmarks show no code rows)
    SELECT d.scope, m.wave, m.question, m.key, m.value, m.sw, m.sw2
    FROM _wt_m_marked m JOIN _wt_scopes d ON m.key = d.key WHERE m.status = 'valid'
),
mr_base AS (
    SELECT s.scope, m.wave, m.question, m.key, m.n, m.sw AS w, m.sw2 AS w2
    FROM _wt_mr m JOIN _wt_scopes s ON m.key = s.key WHERE m.role = 'base'
),
mr_item AS (
    SELECT s.scope, m.wave, m.question, m.key, m.item, m.sw, m.sw2
    FROM _wt_mr m JOIN _wt_scopes s ON m.key = s.key WHERE m.role = 'item'
),
mr_p AS (
    SELECT i.scope, i.wave, i.question, i.item, sum(i.sw) / any_value(t.bw) AS p, any_value(t.bw) AS bw
    FROM mr_item i
    JOIN (SELECT scope, wave, question, sum(w) AS bw FROM mr_base GROUP BY ALL) t USING (scope, wave, question)
    WHERE t.bw > 0 GROUP BY ALL
),
mr_parts AS (  -- a multiple-response set's base respondents (for its degrees of freedom), and its items:
    -- y = 1 for the respondents who gave the item, over the set's base
    SELECT 'scope' AS side, wave, scope, question, 'mrbase' AS estimate, NULL::DOUBLE AS value, key, 0.0 AS t,
        0.0 AS q, n, NULL::VARCHAR AS item
    FROM mr_base
    UNION ALL
    SELECT 'scope', b.wave, b.scope, b.question, 'item', NULL, b.key,
        (coalesce(i.sw, 0) - v.p * b.w) / v.bw,
        (coalesce(i.sw2, 0) * (1 - v.p) * (1 - v.p) + (b.w2 - coalesce(i.sw2, 0)) * v.p * v.p) / (v.bw * v.bw),
        NULL, v.item
    FROM mr_base b
    JOIN mr_p v ON v.wave = b.wave AND v.scope = b.scope AND v.question = b.question
    LEFT JOIN mr_item i ON i.wave = b.wave AND i.scope = b.scope AND i.question = b.question AND i.key = b.key
        AND i.item = v.item
),
"""
_GENERAL_VARIANCES = """
parts AS (
    SELECT side, wave, scope, question, 'mean' AS estimate, NULL::DOUBLE AS value, key,
        (wd - shift * w) / bw AS t, (w2dd - 2 * shift * w2d + shift * shift * w2) / (bw * bw) AS q, n,
        NULL::VARCHAR AS item
    FROM dom_keys
    UNION ALL
    SELECT side, wave, scope, question, 'top', NULL, key, (top_w - p_top * w) / bw,
        (top_w2 * (1 - p_top) * (1 - p_top) + (w2 - top_w2) * p_top * p_top) / (bw * bw), n, NULL
    FROM dom_keys WHERE p_top IS NOT NULL
    UNION ALL
    SELECT 'scope', k.wave, k.scope, k.question, 'code', v.value, k.key,
        (coalesce(c.sw, 0) - v.p * k.w) / k.bw,
        (coalesce(c.sw2, 0) * (1 - v.p) * (1 - v.p) + (k.w2 - coalesce(c.sw2, 0)) * v.p * v.p) / (k.bw * k.bw),
        NULL::BIGINT, NULL
    FROM dom_keys k
    JOIN (SELECT c.wave, c.scope, c.question, c.value, sum(c.sw) / any_value(s.base_w) AS p
          FROM scope_cells c JOIN _wt_m_stats s
              ON s.side = 'scope' AND s.wave = c.wave AND s.scope = c.scope AND s.question = c.question
          WHERE s.base_w > 0 GROUP BY ALL) v
        ON k.side = 'scope' AND v.wave = k.wave AND v.scope = k.scope AND v.question = k.question
    LEFT JOIN scope_cells c ON c.wave = k.wave AND c.scope = k.scope AND c.question = k.question
        AND c.key = k.key AND c.value = v.value
    UNION ALL
    SELECT * FROM mr_parts
),
units AS (
    SELECT p.side, p.wave, p.scope, p.question, p.estimate, p.value, p.item, k.stratum, k.psu,
        sum(p.t) AS t, CASE WHEN k.psu IS NULL THEN sum(p.q) ELSE sum(p.t) * sum(p.t) END AS q,
        CASE WHEN k.psu IS NULL THEN sum(p.n) ELSE 1 END AS units
    FROM parts p JOIN _wt_keys k USING (key)
    GROUP BY p.side, p.wave, p.scope, p.question, p.estimate, p.value, p.item, k.stratum, k.psu
),
by_stratum AS (
    SELECT u.side, u.wave, u.scope, u.question, u.estimate, u.value, u.item, u.stratum, any_value(h.n_h) AS n_h,
        sum(u.t) AS t, sum(u.q) AS q, sum(u.units) AS units
    FROM units u JOIN _wt_strata h USING (stratum)
    GROUP BY u.side, u.wave, u.scope, u.question, u.estimate, u.value, u.item, u.stratum
),
linearised AS (
    SELECT side, wave, scope, question, estimate, value, item,
        sum(CASE WHEN n_h > 1 THEN n_h / (n_h - 1.0) * greatest(q - t * t / n_h, 0) ELSE t * t END) AS var,
        sum(units) - count(*) AS df  -- R's degf() of the domain: its PSUs less its strata
    FROM by_stratum GROUP BY ALL
),
-- As in _simple_variances: a mean's variance below ~1e-11 of the size of its cancelling terms is rounding
-- noise (answers all equal in the domain), and is 0. Those terms are each unit's Q = Σq when the
-- respondents are the PSUs; with clusters Q = T², whose noise is that of T squared, so the unit counts
-- 1e-11·(size of T's terms)²: the same relative rule on T.
mean_units AS (
    SELECT d.side, d.wave, d.scope, d.question, k.stratum,
        CASE WHEN k.psu IS NULL
            THEN sum((abs(d.w2dd) + 2 * abs(d.shift * d.w2d) + d.shift * d.shift * d.w2) / (d.bw * d.bw))
            ELSE 1e-11 * pow(sum((abs(d.wd) + abs(d.shift * d.w)) / d.bw), 2) END AS size
    FROM dom_keys d JOIN _wt_keys k USING (key) GROUP BY d.side, d.wave, d.scope, d.question, k.stratum, k.psu
),
mean_scales AS (
    SELECT u.side, u.wave, u.scope, u.question,
        sum(CASE WHEN h.n_h > 1 THEN h.n_h / (h.n_h - 1.0) ELSE 1.0 END * u.size) AS scale
    FROM mean_units u JOIN _wt_strata h USING (stratum) GROUP BY ALL
),
variances AS (
    SELECT v.side, v.wave, v.scope, v.question, v.estimate, v.value, v.item,
        CASE WHEN v.estimate = 'mean' AND v.var <= 1e-11 * s.scale THEN 0.0 ELSE v.var END AS var, v.df
    FROM linearised v LEFT JOIN mean_scales s ON v.estimate = 'mean' AND s.side = v.side AND s.wave = v.wave
        AND s.scope = v.scope AND s.question = v.question
)
"""
_PART_CTES = _KEY_CTES + _DOMAIN_KEYS_CTE + _CELL_CTES + _GENERAL_VARIANCES


def _contribution(t: str, q: str) -> str:
    """SQL of one stratum's share of a variance from its Σz (``t``) and Σz² (``q``) and its n_h."""
    return f"(CASE WHEN n_h > 1 THEN n_h / (n_h - 1.0) * greatest({q} - {t} * {t} / n_h, 0) ELSE {t} * {t} END)"


# The same variances when every key of a domain is a whole stratum (the default design: strata =
# jurisdictions, no clusters, one key per jurisdiction; see is_simple_design): each key's Σz and Σz² are
# its stratum's, so a domain's variance follows from sums over its keys (see _simple_variances); here, the
# multiple-response sets' (their base's df, their items' variances).
_SIMPLE_MR_VARIANCES = (
    _KEY_N_CTE
    + f"""
mr_variances AS (
    SELECT p.side, p.wave, p.scope, p.question, CASE WHEN p.estimate = 'mrbase' THEN 'base' ELSE 'item' END AS estimate,
        p.value, p.item, sum({_contribution("p.t", "p.q")}) AS var, (sum(p.n) - count(*))::BIGINT AS df,
        NULL::DOUBLE AS var_top, NULL::DOUBLE AS var_mean
    FROM mr_parts p JOIN key_n USING (key)
    GROUP BY p.side, p.wave, p.scope, p.question, p.estimate, p.value, p.item
)
"""
)


# the code rows as the report reads them, when a code's variance follows from its sums (or is Kish's)
_CLASSIFIED = "SELECT wave, scope, question, value, n, sw, s1, s2, s3, NULL::DOUBLE AS var FROM _wt_m_scoped"

# the simple path's variances already hold one row per base
_SIMPLE_WITH_VAR = """
    SELECT s.*, v.var_top, v.var_mean, v.df::DOUBLE AS df
    FROM _wt_m_stats s
    LEFT JOIN _wt_m_var v ON v.estimate = 'base' AND v.side = s.side AND v.wave = s.wave AND v.scope = s.scope
        AND v.question = s.question
"""


def is_simple_design(keys: pa.Table, domains: tuple[pa.Table, ...] = ()) -> bool:
    """True when no key holds a PSU and, among the core keys and among each subscriber's, no two keys
    share a stratum (so every domain's key is a whole stratum: see _simple_variances), or, given the
    ``domains`` ((scope, key) tables: the scopes and benchmarks), no domain holds two such keys (finer
    keys, e.g. the banner columns' jurisdiction + banner code: a domain's one key in a stratum then holds
    all of the stratum's respondents in the domain, which is all the formula needs)."""
    if keys.num_rows == 0:
        return True
    if keys.column("psu").null_count != keys.num_rows:
        return False
    pairs = set(zip(keys.column("owner").to_pylist(), keys.column("stratum").to_pylist(), strict=True))
    if len(pairs) == keys.num_rows:
        return True
    strata = keys.select(["key", "owner", "stratum"])
    for domain in domains:
        joined = domain.select(["scope", "key"]).join(strata, "key")
        counts = joined.group_by(["scope", "owner", "stratum"]).aggregate([("key", "count")])
        if counts.num_rows != joined.num_rows:
            return False
    return bool(domains)


def _aliases(names: tuple[str, ...]) -> str:
    # NOT MATERIALIZED: a CTE read twice would otherwise be copied first, and these only rename a table
    return ", ".join(f"{name} AS NOT MATERIALIZED (SELECT * FROM _wt_{name})" for name in names)


# --- sums over each domain's keys, in numpy ----------------------------------------------------------------
# A domain's sums are its keys' sums added up: a join of every (key, group) row to each domain holding the
# key, then a GROUP BY, in SQL. Here each domain's rows are gathered by position and summed with bincount, in
# (domain, key) order: the same every run, and a fraction of the SQL's cost (the banner columns' code rows:
# 500,000 joined rows, 87 ms in SQL).


def key_weights(keys: pa.Table, strata: pa.Table) -> pa.Table:
    """Each key's stratum size n_h and the weights α, β of its share of a linearised variance (see
    _simple_variances): α = n_h/(n_h − 1), β = −1/(n_h − 1), and α = 0, β = 1 for a stratum of one unit."""
    sizes = dict(zip(strata.column("stratum").to_pylist(), strata.column("n_h").to_pylist(), strict=True))
    n_h = np.array([sizes.get(h, 0) for h in keys.column("stratum").to_pylist()], dtype=np.int64)
    several = n_h > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(several, n_h / (n_h - 1.0), 0.0)
        beta = np.where(several, -1.0 / (n_h - 1.0), 1.0)
    return pa.table({"key": keys.column("key"), "n_h": n_h, "alpha": alpha, "beta": beta})


def domain_sums(
    key: np.ndarray, group: np.ndarray, values: dict[str, np.ndarray], pairs: pa.Table, groups: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each domain's sums of ``values`` over its keys, per group: the rows are (``key``, ``group``) with their
    ``values``, and ``pairs`` (scope, key) says which keys make up each domain (integer codes). Returns the
    (domain, group) of every non-empty sum, in that order, and each value's sums there."""
    known = pc.and_(pc.is_valid(pairs.column("scope")), pc.is_valid(pairs.column("key")))
    pairs = pairs.filter(known)  # a key no cell holds has no code (see _Ids): it adds nothing, as in a join
    domain_of, key_of = (_ints(pairs.column(c)) for c in ("scope", "key"))
    by_pair = np.lexsort((key_of, domain_of))
    domain_of, key_of = domain_of[by_pair], key_of[by_pair]
    by_key = np.argsort(key, kind="stable")
    keys = int(max(key.max(initial=-1), key_of.max(initial=-1))) + 1
    start = np.searchsorted(key[by_key], np.arange(keys + 1))
    lengths = start[key_of + 1] - start[key_of]
    offsets = np.cumsum(lengths) - lengths
    rows = by_key[np.repeat(start[key_of] - offsets, lengths) + np.arange(int(lengths.sum()))]
    cell = np.repeat(domain_of, lengths) * groups + group[rows]
    size = (int(domain_of.max(initial=-1)) + 1) * groups
    present = np.flatnonzero(np.bincount(cell, minlength=size))
    sums = {
        name: np.bincount(cell, weights=v[rows], minlength=size)[present].astype(np.float64)
        for name, v in values.items()
    }
    return present // groups, present % groups, sums


def _ints(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass(frozen=True)
class _Cells:
    """The wave's classified cells (``_wt_m_marked``) as arrays, and the answers they number (``marks``:
    wave, question, value, status, top, bottom, by answer number ``qv``)."""

    marks: pa.Table
    key: np.ndarray
    qv: np.ndarray
    n: np.ndarray
    sw: np.ndarray
    sw2: np.ndarray

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> _Cells:
        marks = con.sql(
            "SELECT wave, question, value, status, top, bottom FROM _wt_m_marks ORDER BY qv"
        ).to_arrow_table()
        cells = con.sql("SELECT key, qv, n, sw, sw2 FROM _wt_m_marked").to_arrow_table()
        key, qv = _ints(cells.column("key")), _ints(cells.column("qv"))
        return cls(marks, key, qv, *(_floats(cells.column(c)) for c in ("n", "sw", "sw2")))

    @property
    def wave(self) -> pa.Scalar:
        """The wave the cells are of (aggregate takes one at a time; a null of its type when there are none)."""
        column = self.marks.column("wave")
        return pc.min(column) if self.marks.num_rows else pa.scalar(None, column.type)

    @property
    def valid_code(self) -> np.ndarray:
        """By answer number: whether the answer is valid (not user- or system-missing)."""
        return pc.equal(self.marks.column("status"), "valid").to_numpy(zero_copy_only=False)


def _key_question_sums(cells: _Cells, keys: pa.Table, *, core_centre: bool) -> pa.Table:
    """Each key's sufficient statistics per question, over its valid answers, sorted by (key, question):
    centre (the question's mean over the wave, over its keys of part 0 when ``keys`` has parts; with
    ``core_centre`` over the core keys only, and only the questions they answered: custom answers have no
    benchmark), n, w = Σw, w2 = Σw², top_w, top_w2, bottom_w (the boxes' Σw and Σw²), and, d being
    x − centre, wd = Σw·d, wdd = Σw·d², w2d = Σw²·d, w2dd = Σw²·d².
    The centre, close to any domain's mean, keeps the one-pass variances exact to many digits."""
    rows = np.flatnonzero(cells.valid_code[cells.qv])
    qv, key = cells.qv[rows], cells.key[rows]
    n, sw, sw2 = cells.n[rows], cells.sw[rows], cells.sw2[rows]
    question = _ints(cells.marks.column("question"))[qv]
    value = _floats(cells.marks.column("value"))[qv]
    top, bottom = (_flags(cells.marks.column(c))[qv] for c in ("top", "bottom"))
    groups = int(question.max(initial=-1)) + 1
    listed = _ints(keys.column("key"))
    size = int(max(key.max(initial=0), listed.max(initial=0))) + 1
    if core_centre:
        centring = np.zeros(size, dtype=bool)
        centring[listed[~pc.is_valid(keys.column("owner")).to_numpy(zero_copy_only=False)]] = True
    else:
        centring = np.ones(size, dtype=bool)
    if "part" in keys.column_names:  # finer keys beside the scopes' own (see the module docstring): not centred on
        centring[listed[_ints(keys.column("part")) != 0]] = False
    counted = centring[key]
    weight = np.bincount(question, weights=np.where(counted, sw, 0.0), minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(
            weight != 0,
            np.bincount(question, weights=np.where(counted, sw * value, 0.0), minlength=groups) / weight,
            np.nan,
        )
    answered = np.bincount(question, weights=counted, minlength=groups) > 0
    keep = answered[question]
    key, question, value, n, sw, sw2, top, bottom = (a[keep] for a in (key, question, value, n, sw, sw2, top, bottom))
    d = value - centre[question]
    cell = key * groups + question
    present = np.unique(cell)
    size = int(present.max(initial=-1)) + 1

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=weights, minlength=size)[present].astype(np.float64)

    q = present % groups
    return pa.table(
        {
            "key": pa.array((present // groups).astype(np.int32)),
            "question": pa.array(q.astype(np.int32)),
            "centre": centre[q],
            "n": total(n),
            "w": total(sw),
            "w2": total(sw2),
            "top_w": total(np.where(top, sw, 0.0)),
            "top_w2": total(np.where(top, sw2, 0.0)),
            "bottom_w": total(np.where(bottom, sw, 0.0)),
            "wd": total(sw * d),
            "wdd": total(sw * d * d),
            "w2d": total(sw2 * d),
            "w2dd": total(sw2 * d * d),
        }
    )


def _scoped(cells: _Cells, inputs: dict[str, pa.Table], key_n: pa.Table | None) -> pa.Table:
    """The code rows of each scope: each (key, question, value) cell's n, Σw and Σw² summed over the scope's
    keys (see domain_sums), with the code's status and boxes. With ``key_n`` (the simple design), also the
    sums a valid code's linearised variance expands into (see code_variance_sql): s1 = Σ α·Σw², s2 = Σ β·(Σw)²,
    s3 = Σ β·Σw·W over the scope's keys, Σw and Σw² being the code's in the key and W the key's valid total
    (α, β: see key_weights). Summed over a scope's valid codes, s1 and s3 give its base's Σ α·W2 and Σ β·W²
    (code_d1, code_d2 in stats), so a code row's variance needs no join of its own."""
    marks, key, qv, sw, sw2 = cells.marks, cells.key, cells.qv, cells.sw, cells.sw2
    values = {"n": cells.n, "sw": sw, "sw2": sw2}
    valid_code = cells.valid_code
    if key_n is not None:
        size = int(key.max(initial=0)) + 1
        alpha, beta = _per_key(key_n, "alpha", size), _per_key(key_n, "beta", size)
        valid = valid_code[qv]
        question = _ints(marks.column("question"))[qv]
        questions = int(question.max(initial=0)) + 1
        key_question = key * questions + question
        total = np.bincount(key_question, weights=np.where(valid, sw, 0.0))[key_question]
        values |= {
            "s1": np.where(valid, alpha[key] * sw2, 0.0),
            "s2": np.where(valid, beta[key] * sw * sw, 0.0),
            "s3": np.where(valid, beta[key] * sw * total, 0.0),
        }
    domain, code, sums = domain_sums(key, qv, values, inputs["scopes"], marks.num_rows)
    rows = marks.take(pa.array(code))
    columns = {"wave": rows.column("wave"), "scope": pa.array(domain.astype(np.int32))}
    columns |= {name: rows.column(name) for name in ("question", "value", "status", "top", "bottom")}
    columns |= {"n": pa.array(np.rint(sums["n"]).astype(np.int64)), "sw": sums["sw"], "sw2": sums["sw2"]}
    no_sum = ~valid_code[code]
    for name in ("s1", "s2", "s3"):
        columns[name] = pa.array(sums[name], mask=no_sum) if key_n is not None else pa.nulls(len(code), pa.float64())
    return pa.table(columns)


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``key`` (stable) and the start of each run of equal keys in that order."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    return order, np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(key) else np.zeros(0, np.int64)


def _scale_flags(questions: pa.Table, size: int) -> tuple[np.ndarray, np.ndarray]:
    """By question code: whether the wave tabulates it (it is in ``questions``) and whether it is a scale."""
    known, scale = np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)
    at = _ints(questions.column("question"))
    inside = (at >= 0) & (at < size)
    known[at[inside]] = True
    scale[at[inside]] = _flags(questions.column("is_scale"))[inside]
    return known, scale


def _stats_table(
    side: str,
    wave: pa.Scalar,
    scope: np.ndarray,
    question: np.ndarray,
    columns: dict[str, np.ndarray],
) -> pa.Table:
    def nullable(values: np.ndarray) -> pa.Array:
        values = np.asarray(values, dtype=np.float64)
        return pa.array(values, mask=np.isnan(values))

    rows = len(scope)
    return pa.table(
        {
            "side": pa.array([side] * rows, pa.string()),
            "wave": pa.array([wave.as_py()] * rows, wave.type),
            "scope": pa.array(scope.astype(np.int32)),
            "question": pa.array(question.astype(np.int32)),
            "base_n": pa.array(np.rint(columns["base_n"]).astype(np.int64)),
            "base_w": pa.array(np.asarray(columns["base_w"], dtype=np.float64)),
            **{
                name: nullable(columns[name])
                for name in ("n_eff", "p_top", "p_bottom", "mean", "sd", "code_d1", "code_d2")
            },
        }
    )


def _single_stats(
    con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], scoped: pa.Table, cells: _Cells
) -> pa.Table:
    """Every single question's base statistics, for each scope (side 'scope') and benchmark ('bench'), and
    the multiple-response sets' bases (_MR_STATS): base_n, base_w, n_eff, p_top, p_bottom, mean, sd (scales
    only), and code_d1, code_d2 (a scope's Σ s1 and Σ s3 over its valid codes: see code_variance_sql).

    A scope's base sums come from its code rows, so a percent is exactly its row over the base (one valid
    code is exactly 100 %), and the spread is taken around the base's own mean (two passes: all-equal answers
    have an SD of exactly 0). A benchmark, which shows no code rows, is summed from each key's sufficient
    statistics (see _key_question_sums: n, Σw, Σw², box sums, and the sums of (x − c) and (x − c)², c being
    the question's mean over the wave's core answers). Valid answers only: a base with none has no row, which the report reads as a base of 0."""
    valid = np.flatnonzero(pc.equal(scoped.column("status"), "valid").to_numpy(zero_copy_only=False))
    scope, question = _ints(scoped.column("scope"))[valid], _ints(scoped.column("question"))[valid]
    k = _key_question_sums(cells, inputs["keys"], core_centre=True)
    size = (
        int(
            max(
                question.max(initial=0),
                _ints(k.column("question")).max(initial=0),
                _ints(inputs["questions"].column("question")).max(initial=0),
            )
        )
        + 1
    )
    known, scale = _scale_flags(inputs["questions"], size)
    parts = []

    order, starts = _groups(scope * size + question)
    n, sw, sw2, value = (_floats(scoped.column(c))[valid][order] for c in ("n", "sw", "sw2", "value"))
    top, bottom = (_flags(scoped.column(c))[valid][order] for c in ("top", "bottom"))
    s1, s3 = (_floats(scoped.column(c))[valid][order] for c in ("s1", "s3"))
    scope, question = scope[order][starts], question[order][starts]

    def total(x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, starts) if len(starts) else np.zeros(0)

    base_n, base_w, base_w2 = total(n), total(sw), total(sw2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(base_w != 0, total(sw * value) / base_w, np.nan)
        centred = value - np.repeat(mean, np.diff(np.r_[starts, len(value)]))
        ss = total(sw * centred * centred)
        is_scale, kept = scale[question], known[question]
        parts.append(
            _stats_table(
                "scope",
                cells.wave,
                scope[kept],
                question[kept],
                {
                    "base_n": base_n[kept],
                    "base_w": base_w[kept],
                    "n_eff": np.where(base_w2 != 0, base_w * base_w / base_w2, np.nan)[kept],
                    "p_top": np.where(is_scale & (base_w > 0), total(np.where(top, sw, 0.0)) / base_w, np.nan)[kept],
                    "p_bottom": np.where(is_scale & (base_w > 0), total(np.where(bottom, sw, 0.0)) / base_w, np.nan)[
                        kept
                    ],
                    "mean": np.where(is_scale, mean, np.nan)[kept],
                    "sd": np.where(
                        is_scale & (base_n > 1), np.sqrt(np.maximum(ss, 0) / base_w * base_n / (base_n - 1)), np.nan
                    )[kept],
                    "code_d1": total(s1)[kept],
                    "code_d2": total(s3)[kept],
                },
            )
        )
        key, kq = _ints(k.column("key")), _ints(k.column("question"))
        sums = {c: _floats(k.column(c)) for c in ("n", "w", "w2", "top_w", "bottom_w", "wd", "wdd")}
        bench, bq, d = domain_sums(key, kq, sums, inputs["bench"], size)
        centre = np.zeros(size)
        centre[kq] = _floats(k.column("centre"))
        is_scale, kept = scale[bq], known[bq]
        w, dn = d["w"], d["n"]
        parts.append(
            _stats_table(
                "bench",
                cells.wave,
                bench[kept],
                bq[kept],
                {
                    "base_n": dn[kept],
                    "base_w": w[kept],
                    "n_eff": np.where(d["w2"] != 0, w * w / d["w2"], np.nan)[kept],
                    "p_top": np.where(is_scale & (w > 0), d["top_w"] / w, np.nan)[kept],
                    "p_bottom": np.where(is_scale & (w > 0), d["bottom_w"] / w, np.nan)[kept],
                    "mean": np.where(is_scale & (w > 0), centre[bq] + d["wd"] / w, np.nan)[kept],
                    "sd": np.where(
                        is_scale & (dn > 1),
                        np.sqrt(np.maximum(d["wdd"] - d["wd"] * d["wd"] / w, 0) / w * dn / (dn - 1)),
                        np.nan,
                    )[kept],
                    "code_d1": np.full(int(kept.sum()), np.nan),
                    "code_d2": np.full(int(kept.sum()), np.nan),
                },
            )
        )
    if inputs["mr"].num_rows:
        parts.append(con.sql(_MR_STATS).to_arrow_table().cast(parts[0].schema))
    return pa.concat_tables(parts)


def _per_key(key_n: pa.Table, name: str, size: int) -> np.ndarray:
    """Column ``name`` of key_weights by key code (0 for a code it does not hold)."""
    out = np.zeros(size)
    at = _ints(key_n.column("key"))
    inside = at < size
    out[at[inside]] = _floats(key_n.column(name))[inside]
    return out


def _simple_variances(
    con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], key_n: pa.Table, cells: _Cells
) -> pa.Table:
    """The variances of the simple design (see is_simple_design): one 'base' row per domain with a valid
    answer (side, wave, scope, question: its top box's and mean's variances and its df); a code's variance
    follows from the code row's and its base's sums in the report (see code_variance_sql).

    Each key's share of a variance is α_k q_k + β_k t_k² (α, β: see key_weights), t and q being linear and
    quadratic in the domain's estimate (its mean's shift from the centre, its top-box share), so a domain's
    variance expands into sums over its keys that do not depend on the estimate (see domain_sums): d1 = Σ α·W2,
    d2 = Σ β·W², m0 = Σ (α·Σw²d² + β·(Σwd)²), m1 = Σ (α·Σw²d + β·Σwd·W), t1 = Σ α·T2, t2 = Σ β·T², t3 =
    Σ β·T·W (W, W2: the key's valid Σw, Σw²; T, T2: its top box's; d = x − the question's centre); with the
    shift s of the domain's mean from the centre and its top box p, var_mean = (m0 − 2 s m1 + s² (d1 + d2))
    / bw² and var_top = ((1 − 2p) t1 + p² (d1 + d2) + t2 − 2p t3) / bw². Below ~1e-11 of the size of its
    cancelling terms (g0..g2 for the mean), a variance is rounding noise (answers all equal in the domain, a
    code chosen by everyone in it, e.g. a banner variable in its own column), and is 0."""
    k = _key_question_sums(cells, inputs["keys"], core_centre=False)
    key, question = _ints(k.column("key")), _ints(k.column("question"))
    n, w, w2, top_w, top_w2, wd, w2d, w2dd = (
        _floats(k.column(c)) for c in ("n", "w", "w2", "top_w", "top_w2", "wd", "w2d", "w2dd")
    )
    size = int(max(key.max(initial=0), _ints(key_n.column("key")).max(initial=0))) + 1
    alpha, beta = _per_key(key_n, "alpha", size)[key], _per_key(key_n, "beta", size)[key]
    g = np.maximum(alpha, 1.0)
    terms = {
        "n": n,
        "keys": np.ones(len(key)),
        "d1": alpha * w2,
        "d2": beta * w * w,
        "m0": alpha * w2dd + beta * wd * wd,
        "m1": alpha * w2d + beta * wd * w,
        "g0": g * w2dd,
        "g1": g * np.abs(w2d),
        "g2": g * w2,
        "t1": alpha * top_w2,
        "t2": beta * top_w * top_w,
        "t3": beta * top_w * w,
    }
    stats = con.sql(
        "SELECT side, scope, question, base_w, mean, p_top FROM _wt_m_stats WHERE base_w > 0"
    ).to_arrow_table()
    groups = int(max(question.max(initial=0), _ints(stats.column("question")).max(initial=0))) + 1
    centre = np.zeros(groups)
    centre[question] = _floats(k.column("centre"))
    parts = []
    for side, pairs in (("scope", inputs["scopes"]), ("bench", inputs["bench"])):
        domain, q, u = domain_sums(key, question, terms, pairs, groups)
        mine = pc.equal(stats.column("side"), side).to_numpy(zero_copy_only=False)
        at = _ints(stats.column("scope"))[mine] * groups + _ints(stats.column("question"))[mine]
        order = np.argsort(at)
        wanted = domain * groups + q
        found = np.clip(np.searchsorted(at[order], wanted), 0, max(len(at) - 1, 0))
        keep = (at[order][found] == wanted) if len(at) else np.zeros(len(wanted), dtype=bool)
        row = order[found[keep]]
        bw, mean, p = (_floats(stats.column(c))[mine][row] for c in ("base_w", "mean", "p_top"))
        u = {name: v[keep] for name, v in u.items()}
        shift = mean - centre[q[keep]]
        bw2 = bw * bw
        d12 = u["d1"] + u["d2"]
        with np.errstate(invalid="ignore"):
            mean_raw = (u["m0"] - 2 * shift * u["m1"] + shift * shift * d12) / bw2
            mean_scale = (u["g0"] + 2 * np.abs(shift) * u["g1"] + shift * shift * u["g2"]) / bw2
            top_raw = ((1 - 2 * p) * u["t1"] + p * p * d12 + u["t2"] - 2 * p * u["t3"]) / bw2
            top_scale = (
                np.abs(1 - 2 * p) * np.abs(u["t1"])
                + p * p * (np.abs(u["d1"]) + np.abs(u["d2"]))
                + np.abs(u["t2"])
                + 2 * p * np.abs(u["t3"])
            ) / bw2
            var_top = np.where(top_raw <= 1e-11 * top_scale, 0.0, top_raw)
            var_mean = np.where(mean_raw <= 1e-11 * mean_scale, 0.0, mean_raw)
        rows = len(row)
        parts.append(
            pa.table(
                {
                    "side": pa.array([side] * rows, pa.string()),
                    "wave": pa.array([cells.wave.as_py()] * rows, cells.wave.type),
                    "scope": pa.array(domain[keep].astype(np.int32)),
                    "question": pa.array(q[keep].astype(np.int32)),
                    "estimate": pa.array(["base"] * rows, pa.string()),
                    "value": pa.nulls(rows, pa.float64()),
                    "item": pa.nulls(rows, pa.string()),
                    "var": pa.nulls(rows, pa.float64()),
                    "df": pa.array(np.rint(u["n"] - u["keys"]).astype(np.int64)),
                    "var_top": pa.array(var_top, mask=np.isnan(var_top)),
                    "var_mean": pa.array(var_mean, mask=np.isnan(var_mean)),
                }
            )
        )
    if inputs["mr"].num_rows:
        mr = con.sql(f"WITH {_CELL_CTES}{_SIMPLE_MR_VARIANCES} SELECT * FROM mr_variances").to_arrow_table()
        parts.append(mr.cast(parts[0].schema))
    return pa.concat_tables(parts)


def _one_wave(inputs: dict[str, pa.Table], names: tuple[str, ...], stage: str) -> None:
    """A ValueError unless the tables ``names`` of ``inputs`` hold one wave at most: a stage sums one wave's
    cells (and the report joins them with no wave in the keys)."""
    waves = {w for name in names for w in pc.unique(inputs[name].column("wave")).to_pylist()}
    if len(waves) > 1:
        raise ValueError(f"{stage} one wave at a time, not waves {sorted(waves)}")


def aggregate(
    con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], *, variance: str = "linearized"
) -> dict[str, pa.Table]:
    """The first stage, for one wave: roll its cells up to the scopes and benchmarks, and compute every
    base's statistics, with their variances (``variance``: "linearized" or "kish").

    Returns the ``AGGREGATES`` tables, which :func:`report` takes: only the scope
    side of the roll-ups (the benchmarks live on in ``stats``)."""
    _one_wave(inputs, ("cells", "mr"), "aggregate sums")
    simple = variance != "kish" and is_simple_design(inputs["keys"], (inputs["scopes"], inputs["bench"]))
    ids = _Ids(
        scope=_columns(inputs, "scope", ("scopes", "bench")),
        question=_columns(inputs, "question", ("questions", "cells", "mr")),
        key=_columns(inputs, "key", ("keys", "cells", "mr")),
    )
    out = _aggregate(con, {name: ids.encode(table) for name, table in inputs.items()}, variance, simple)
    return {name: ids.decode(table) for name, table in out.items()}


def _aggregate(
    con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], variance: str, simple: bool
) -> dict[str, pa.Table]:
    with registered(con, inputs, AGGREGATE_INPUTS):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_marks AS WITH {_MARK_CTES} SELECT * FROM marks")
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_marked AS {_MARKED}")
            key_n = key_weights(inputs["keys"], inputs["strata"])
            con.register("_wt_m_key_n", key_n)
            cells = _Cells.read(con)
            scoped = _scoped(cells, inputs, key_n if simple else None)
            con.register("_wt_m_scoped", scoped)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_mr_rolled AS WITH {_MR_CTES} SELECT * FROM mr_rolled")
            con.register("_wt_m_stats", _single_stats(con, inputs, scoped, cells))
            kish_top = "greatest(s.p_top * (1 - s.p_top), 0) / s.n_eff"
            kish_mean = "s.sd * s.sd / s.n_eff"
            if variance == "kish":
                with_var = (
                    f"SELECT s.*, {kish_top} AS var_top, {kish_mean} AS var_mean, "
                    "(s.base_n - 1)::DOUBLE AS df FROM _wt_m_stats s"
                )
                classified = _CLASSIFIED
                mr_rolled = "SELECT *, NULL::DOUBLE AS var FROM _wt_m_mr_rolled WHERE side = 'scope'"
            else:
                if simple:
                    con.register("_wt_m_var", _simple_variances(con, inputs, key_n, cells))
                else:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_var AS WITH {_PART_CTES} SELECT * FROM variances")
                # one join: each base's variances, pivoted to a row per (side, wave, scope, question)
                with_var = (
                    _SIMPLE_WITH_VAR
                    if simple
                    else """
                    SELECT s.*, v.var_top, v.var_mean, v.df::DOUBLE AS df
                    FROM _wt_m_stats s
                    LEFT JOIN (
                        SELECT side, wave, scope, question,
                            any_value(var) FILTER (WHERE estimate = 'top') AS var_top,
                            any_value(var) FILTER (WHERE estimate = 'mean') AS var_mean,
                            coalesce(any_value(df) FILTER (WHERE estimate = 'mean'),
                                any_value(df) FILTER (WHERE estimate = 'mrbase')) AS df
                        FROM _wt_m_var WHERE estimate IN ('top', 'mean', 'mrbase')
                        GROUP BY side, wave, scope, question
                    ) v ON v.side = s.side AND v.wave = s.wave AND v.scope = s.scope AND v.question = s.question
                """
                )
                # a code's variance: from its row's sums (simple design: see code_variance_sql), or the general path's
                classified = (
                    _CLASSIFIED
                    if simple
                    else """SELECT c.wave, c.scope, c.question, c.value, c.n, c.sw, c.s1, c.s2, c.s3, v.var
                    FROM _wt_m_scoped c LEFT JOIN _wt_m_var v ON v.estimate = 'code' AND v.wave = c.wave
                        AND v.scope = c.scope AND v.question = c.question AND v.value = c.value"""
                )
                mr_rolled = """SELECT r.*, v.var FROM _wt_m_mr_rolled r
                    LEFT JOIN _wt_m_var v ON r.role = 'item' AND v.estimate = 'item' AND v.wave = r.wave
                        AND v.scope = r.scope AND v.question = r.question AND v.item = r.item
                    WHERE r.side = 'scope'"""
            return {
                "classified": con.sql(classified).to_arrow_table(),
                "mr_rolled": con.sql(mr_rolled).to_arrow_table(),
                # the values answered that have no label (the report shows them too), and whether user-missing
                "unlabelled": con.sql(
                    "SELECT m.wave, m.question, m.value, m.status = 'user' AS user_missing FROM _wt_m_marks m "
                    "ANTI JOIN _wt_codes k ON k.wave = m.wave AND k.question = m.question AND k.value = m.value "
                    "WHERE m.value IS NOT NULL"
                ).to_arrow_table(),
                "stats": con.sql(with_var).to_arrow_table(),
                "mr_responses": con.sql(
                    "SELECT wave, scope, question, sum(sw) AS total FROM _wt_m_mr_rolled"
                    " WHERE side = 'scope' AND role = 'item' GROUP BY ALL"
                ).to_arrow_table(),
            }
        finally:
            for name in ("scoped", "key_n", "var", "stats"):
                with contextlib.suppress(duckdb.Error):
                    con.unregister(f"_wt_m_{name}")
            for name in ("marks", "marked", "mr_rolled", "var"):
                con.execute(f"DROP TABLE IF EXISTS _wt_m_{name}")


def report(
    con: duckdb.DuckDBPyConnection,
    inputs: dict[str, pa.Table],
    *,
    z: float,
    min_base: int,
    test: str,
    methods: Methods | None = None,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The second stage, for one wave (a ValueError for cells or targets of several): (rows, summaries,
    audit) as Arrow tables, sorted by scope, question and code, from the wave's :func:`aggregate` tables
    (``stats`` also holding the previous wave's) and ``REPORT_INPUTS``; ``methods`` as in ``[tables]``
    (default: Kish, Wald, no adjustment, no flags).

    The target questions and the summaries are computed once, and the rows and the audit then read them.
    The string ids are integer codes while the SQL runs (see _Ids); the scopes keep their names, and the
    part of a banner column's id that names its scope (``parent``), beside."""
    _one_wave(inputs, ("targets", "classified", "mr_rolled"), "report tabulates")
    ids = _Ids(
        scope=_columns(inputs, "scope", ("scopes", "targets", "stats")),
        question=_columns(inputs, "question", ("questions", "stats")),
    )
    names = inputs["scopes"].column("scope")
    parents = pc.list_element(pc.split_pattern(names, "\x1f", max_splits=1), 0)
    encoded = {name: ids.encode(table) for name, table in inputs.items()}
    encoded["scopes"] = encoded["scopes"].append_column("name", names).append_column("parent", parents)
    return _report(con, encoded, z=z, min_base=min_base, test=test, methods=methods)


def _report(
    con: duckdb.DuckDBPyConnection,
    inputs: dict[str, pa.Table],
    *,
    z: float,
    min_base: int,
    test: str,
    methods: Methods | None,
) -> tuple[pa.Table, pa.Table, pa.Table]:
    m = methods or Methods(
        z=z,
        confidence=0.95,
        min_base=min_base,
        test=test,
        variance="kish",
        interval="wald",
        adjust="none",
        cv_caution=0,
        cv_suppress=0,
    )
    params = {"z": z, "min_base": min_base, "test": test}
    with registered(con, inputs, (*AGGREGATES, *REPORT_INPUTS)):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_target_questions AS {_TARGET_QUESTIONS}")
            # the summaries and the rows come out as Arrow, are sorted there (see _sorted) and are scanned from
            # Arrow by the next queries: no temporary table to write
            summary = con.sql(
                f"WITH {_aliases((*AGGREGATES, 'target_questions'))}, {_JOINED_CTE}, {_summary_select(m)} "
                "SELECT * FROM summary",
                params=params,
            ).to_arrow_table()
            summary = _sorted(summary, ("wave", "spos", "qpos"))
            summary = _tested(summary, m).append_column("sidx", pa.array(np.arange(summary.num_rows, dtype=np.int32)))
            con.register("_wt_summary", summary)
            rows_sql = f"WITH {_aliases((*AGGREGATES, 'summary'))}, {_rows_select(m)}"
            own = con.sql(rows_sql, params={"z": z} if "$z" in rows_sql else None).to_arrow_table()
            own = _sorted(own, ("sidx", "rank1", "rank2")).drop_columns(["rank1", "rank2"])
            con.register("_wt_own_rows", own)
            audit = con.sql(
                f"WITH {_aliases(('summary', 'own_rows'))} SELECT wave, scope, question, withheld, base_n, min_base, reason "
                f"FROM ({_audit_select()}) ORDER BY wave, spos, qpos, withheld",
                params={"min_base": min_base},
            ).to_arrow_table()
        finally:
            con.execute("DROP TABLE IF EXISTS _wt_target_questions")
            for name in ("summary", "own_rows"):
                with contextlib.suppress(duckdb.Error):
                    con.unregister(f"_wt_{name}")
    summaries = summary.select(list(SUMMARY_ORDER))
    return _rows_with_summaries(own, summary), summaries, audit


_VERDICTS = pa.array(["", "higher", "lower"])


def _tested(summary: pa.Table, m: Methods) -> pa.Table:
    """The summaries with the p-values of their reported tests (see significance.p_values), those adjusted
    within each scope's family (every test reported for the scope in the wave: see
    significance.adjust_families) and, unless the adjustment is 'none' (where the query decided as before
    issue 12, on |z|), the sig_* verdicts decided on them: 'higher' or 'lower' where the adjusted p is
    under 1 − confidence and the difference is not 0."""
    diffs = [_floats(summary.column(f"d_{t}")) for t in _TESTS]
    raw = np.column_stack(
        [
            p_values(diff, _floats(summary.column(f"se_{t}")), _flags(summary.column(f"ok_{t}")))
            for diff, t in zip(diffs, _TESTS, strict=True)
        ]
    )
    wave, spos = (summary.column(c).to_numpy(zero_copy_only=False).astype(np.int64) for c in ("wave", "spos"))
    family = np.repeat(wave * (int(spos.max(initial=0)) + 1) + spos, len(TEST_COLUMNS))
    adjusted = adjust_families(raw.ravel(), family, m.adjust).reshape(raw.shape)
    for i, test in enumerate(TEST_COLUMNS):
        for name, values in ((f"p_{test}", raw[:, i]), (f"p_adj_{test}", adjusted[:, i])):
            column = pa.array(values, mask=np.isnan(values))
            summary = summary.set_column(summary.schema.get_field_index(name), name, column)
        if m.adjust == "none":
            continue
        diff = diffs[i]
        with np.errstate(invalid="ignore"):
            verdict = np.where((adjusted[:, i] < 1 - m.confidence) & (diff != 0), np.where(diff > 0, 1, 2), 0)
        words = pa.DictionaryArray.from_arrays(pa.array(verdict.astype(np.int8)), _VERDICTS).cast(pa.string())
        name = f"sig_{test}"
        summary = summary.set_column(summary.schema.get_field_index(name), name, words)
    return summary


def _sorted(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """``table`` in the order of its ``keys`` columns (numbers, unique together), sorted in numpy: a SQL
    ORDER BY moves every column of every row through its sort, which cost three times this lexsort and take."""
    order = np.lexsort([table.column(k).to_numpy(zero_copy_only=False) for k in reversed(keys)])
    return table.take(order)


def _flags(column: pa.ChunkedArray) -> np.ndarray:
    """A boolean column as bool, NULL as False."""
    return pc.fill_null(column, False).to_numpy(zero_copy_only=False).astype(bool)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64, NULL as NaN."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _rows_with_summaries(own: pa.Table, summary: pa.Table) -> pa.Table:
    """Each code row followed by its question's summary columns (taken by position, not joined in SQL:
    sorting and converting the repeated columns cost more than the rest of the query), then the new
    columns: the row's se, its summary's topbox_se and mean_se, the row's deff and n_eff_design, the
    summary's p-values, and the row's quality. A withheld row (F) is marked suppressed, with its reason."""
    taken = summary.select([*ROW_SUMMARY_COLUMNS, "topbox_se", "mean_se", *ROW_NEW_SUMMARY]).take(own.column("sidx"))
    columns = {name: taken.column(name) for name in ROW_SUMMARY_COLUMNS[:3]}
    columns |= {
        name: own.column(name)
        for name in own.column_names
        if name not in ("sidx", "se", "deff", "n_eff_design", "quality", "withheld", "row_reason")
    }
    columns |= {"kind": taken.column("kind"), "question_label": taken.column("label")}
    columns |= {name: taken.column(name) for name in ROW_SUMMARY_COLUMNS[5:]}
    withheld = own.column("withheld")
    columns["suppressed"] = pc.or_(taken.column("suppressed"), withheld)
    columns["suppression_reason"] = pc.if_else(withheld, own.column("row_reason"), taken.column("suppression_reason"))
    columns |= {"se": own.column("se"), "topbox_se": taken.column("topbox_se"), "mean_se": taken.column("mean_se")}
    columns |= {"deff": own.column("deff"), "n_eff_design": own.column("n_eff_design")}
    columns |= {name: taken.column(name) for name in ROW_NEW_SUMMARY}
    columns["quality"] = own.column("quality")
    return pa.table(columns)
