"""From cells to tables: roll the cells up to scopes, benchmarks and the previous wave, compute every
statistic, and withhold small bases. All in SQL over small Arrow inputs (a few thousand rows per wave),
in two stages, each run once per wave on that wave's own cursor (see ``stats._tables_by_wave``):

- :func:`aggregate`: every sum (scopes, benchmarks, bases, means, spreads);
- :func:`report`: joins and row-wise arithmetic, given the wave's aggregates and the previous wave's
  statistics.

Floating-point sums depend on the order of addition, and DuckDB's threads combine partial sums in
whatever order they finish; every query here runs on one thread, which keeps the tables byte-for-byte
reproducible, and the waves run side by side instead.

Inputs (registered as views named ``_wt_<name>`` while a stage runs):

- ``cells`` / ``mr``: see :mod:`wavetool.stats.frequencies`.
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

import duckdb
import pyarrow as pa

from ..sql import code_text_sql
from .significance import mean_ci_sql, proportion_ci_sql, verdict_sql

AGGREGATE_INPUTS = ("cells", "mr", "questions", "codes", "ranges", "boxes", "scopes", "bench")
AGGREGATES = ("classified", "is_missing", "mr_rolled", "stats", "mr_responses")
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


# The statistics of every (side, wave, scope, question) base: side 'scope' is the scope itself,
# 'bench' its benchmark. Multiple-response sets get their base (respondents with at least one response)
# and nothing else.
# Every cell classified as valid, user-missing or system-missing (and in a box or not), before it is rolled
# up to the scopes and the benchmarks.
_MARK_CTES = """
observed AS (SELECT DISTINCT wave, question, value FROM _wt_cells WHERE value IS NOT NULL),
is_missing AS (
    SELECT wave, question, value FROM _wt_codes WHERE missing
    UNION
    SELECT o.wave, o.question, o.value FROM observed o
    JOIN _wt_ranges m ON o.wave = m.wave AND o.question = m.question AND o.value BETWEEN m.low AND m.high
),
marked AS (
    SELECT c.*,
        CASE WHEN c.value IS NULL THEN 'system' WHEN im.value IS NOT NULL THEN 'user' ELSE 'valid' END AS status,
        coalesce(bx.top, FALSE) AS top, coalesce(bx.bottom, FALSE) AS bottom
    FROM _wt_cells c
    LEFT JOIN is_missing im ON c.wave = im.wave AND c.question = im.question AND c.value = im.value
    LEFT JOIN _wt_boxes bx ON c.wave = bx.wave AND c.question = bx.question AND c.value = bx.value
)
"""

_ROLLUP_CTES = """
scoped AS (  -- the code rows of each scope
    SELECT m.wave, s.scope, m.question, m.value, m.status, m.top, m.bottom,
        sum(m.n)::BIGINT AS n, sum(m.sw) AS sw, sum(m.sw2) AS sw2
    FROM marked m JOIN _wt_scopes s ON m.key = s.key GROUP BY ALL
)
"""

# A benchmark shows no code rows, only its base's statistics, so it is summed from each key's sufficient
# statistics: n, Σw, Σw², box sums, and the sums of (x − c) and (x − c)², c being the question's mean over the
# whole wave (close to any benchmark's mean, which keeps the one-pass variance exact to many digits).
_BENCH_CTES = """
centres AS (
    SELECT wave, question, sum(sw * value) / nullif(sum(sw), 0) AS centre
    FROM marked WHERE status = 'valid' AND NOT starts_with(key, '@')  -- custom answers have no benchmark
    GROUP BY ALL
),
key_sums AS (
    SELECT m.wave, m.key, m.question, any_value(c.centre) AS centre,
        sum(m.n) FILTER (WHERE m.status = 'valid') AS n,
        sum(m.sw) FILTER (WHERE m.status = 'valid') AS w,
        sum(m.sw2) FILTER (WHERE m.status = 'valid') AS w2,
        sum(m.sw) FILTER (WHERE m.status = 'valid' AND m.top) AS top_w,
        sum(m.sw) FILTER (WHERE m.status = 'valid' AND m.bottom) AS bottom_w,
        sum(m.sw * (m.value - c.centre)) FILTER (WHERE m.status = 'valid') AS wd,
        sum(m.sw * (m.value - c.centre) * (m.value - c.centre)) FILTER (WHERE m.status = 'valid') AS wdd
    FROM marked m JOIN centres c USING (wave, question) GROUP BY m.wave, m.key, m.question
),
bench_sums AS (
    SELECT k.wave, b.scope, k.question, any_value(k.centre) AS centre, sum(k.n) AS n, sum(k.w) AS w,
        sum(k.w2) AS w2, sum(k.top_w) AS top_w, sum(k.bottom_w) AS bottom_w, sum(k.wd) AS wd, sum(k.wdd) AS wdd
    FROM key_sums k JOIN _wt_bench b ON k.key = b.key GROUP BY k.wave, b.scope, k.question
)
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

# A scope's base sums come from its code rows, so a percent is exactly its row over the base (one valid
# code is exactly 100 %), and the spread is taken around the base's own mean (two passes: all-equal answers
# have an SD of exactly 0).
_STATS_CTES = """
base AS (
    SELECT 'scope' AS side, wave, scope, question,
        coalesce(sum(n) FILTER (WHERE status = 'valid'), 0)::BIGINT AS base_n,
        coalesce(sum(sw) FILTER (WHERE status = 'valid'), 0) AS base_w,
        sum(sw2) FILTER (WHERE status = 'valid') AS base_w2,
        coalesce(sum(sw) FILTER (WHERE status = 'valid' AND top), 0) AS top_w,
        coalesce(sum(sw) FILTER (WHERE status = 'valid' AND bottom), 0) AS bottom_w,
        sum(sw * value) FILTER (WHERE status = 'valid') / nullif(sum(sw) FILTER (WHERE status = 'valid'), 0) AS mean
    FROM scoped GROUP BY wave, scope, question
),
spread AS (
    SELECT b.side, b.wave, b.scope, b.question,
        sum(r.sw * (r.value - b.mean) * (r.value - b.mean)) FILTER (WHERE r.status = 'valid') AS ss
    FROM base b JOIN scoped r USING (wave, scope, question) GROUP BY ALL
),
single_stats AS (
    SELECT b.side, b.wave, b.scope, b.question, b.base_n, b.base_w,
        b.base_w * b.base_w / nullif(b.base_w2, 0) AS n_eff,
        CASE WHEN q.is_scale AND b.base_w > 0 THEN b.top_w / b.base_w END AS p_top,
        CASE WHEN q.is_scale AND b.base_w > 0 THEN b.bottom_w / b.base_w END AS p_bottom,
        CASE WHEN q.is_scale THEN b.mean END AS mean,
        CASE WHEN q.is_scale AND b.base_n > 1 THEN sqrt(greatest(sp.ss, 0) / b.base_w * b.base_n / (b.base_n - 1)) END AS sd
    FROM base b JOIN spread sp USING (side, wave, scope, question) JOIN _wt_questions q USING (wave, question)
    UNION ALL
    SELECT 'bench', d.wave, d.scope, d.question, coalesce(d.n, 0)::BIGINT, coalesce(d.w, 0),
        d.w * d.w / nullif(d.w2, 0),
        CASE WHEN q.is_scale AND d.w > 0 THEN coalesce(d.top_w, 0) / d.w END,
        CASE WHEN q.is_scale AND d.w > 0 THEN coalesce(d.bottom_w, 0) / d.w END,
        CASE WHEN q.is_scale AND d.w > 0 THEN d.centre + d.wd / d.w END,
        CASE WHEN q.is_scale AND d.n > 1 THEN sqrt(greatest(d.wdd - d.wd * d.wd / d.w, 0) / d.w * d.n / (d.n - 1)) END
    FROM bench_sums d JOIN _wt_questions q USING (wave, question)
),
mr_stats AS (
    SELECT side, wave, scope, question,
        coalesce(sum(n) FILTER (WHERE role = 'base'), 0)::BIGINT AS base_n,
        coalesce(sum(sw) FILTER (WHERE role = 'base'), 0) AS base_w,
        sum(sw) FILTER (WHERE role = 'base') * sum(sw) FILTER (WHERE role = 'base') / nullif(sum(sw2) FILTER (WHERE role = 'base'), 0) AS n_eff,
        NULL::DOUBLE AS p_top, NULL::DOUBLE AS p_bottom, NULL::DOUBLE AS mean, NULL::DOUBLE AS sd
    FROM mr_rolled GROUP BY ALL
),
stats AS (SELECT * FROM single_stats UNION ALL SELECT * FROM mr_stats)
"""

# The questions each (wave, scope) shows: the core ones, and a subscriber's own custom ones in its scope.
_TARGET_QUESTIONS = """
    SELECT t.wave, t.scope, s.spos, q.question, q.name, q.kind, q.label, q.qpos, q.is_scale
    FROM _wt_targets t
    JOIN _wt_scopes s USING (scope)
    JOIN _wt_questions q ON q.wave = t.wave AND (q.owner IS NULL OR q.owner = t.scope)
"""

# Each target question's statistics beside its benchmark's and the previous wave's.
_JOINED_CTE = """
joined AS (
    SELECT tq.*,
        coalesce(s.base_n, 0) AS base_n, coalesce(s.base_w, 0) AS base_w, s.n_eff, s.p_top, s.p_bottom, s.mean, s.sd,
        b.base_n AS b_n, b.n_eff AS b_neff, b.p_top AS b_top, b.mean AS b_mean, b.sd AS b_sd,
        p.base_n AS p_n, p.n_eff AS p_neff, p.p_top AS p_top_prev, p.mean AS p_mean, p.sd AS p_sd,
        coalesce(s.base_n, 0) < $min_base AS suppressed,
        coalesce(b.base_n, 0) >= $min_base AS bench_ok,
        coalesce(p.base_n, 0) >= $min_base AS prev_ok
    FROM target_questions tq
    LEFT JOIN stats s ON s.side = 'scope' AND s.wave = tq.wave AND s.scope = tq.scope AND s.question = tq.question
    LEFT JOIN stats b ON b.side = 'bench' AND b.wave = tq.wave AND b.scope = tq.scope AND b.question = tq.question
    LEFT JOIN stats p ON p.side = 'scope' AND p.wave = tq.wave - 1 AND p.scope = tq.scope AND p.question = tq.question
)
"""


def _summary_select() -> str:
    z = "$z"
    keep = "NOT j.suppressed"
    top_se_bench = (
        "sqrt(greatest(j.p_top * (1 - j.p_top), 0) / j.n_eff + greatest(j.b_top * (1 - j.b_top), 0) / j.b_neff)"
    )
    top_se_prev = "sqrt(greatest(j.p_top * (1 - j.p_top), 0) / j.n_eff + greatest(j.p_top_prev * (1 - j.p_top_prev), 0) / j.p_neff)"
    mean_se_bench = "sqrt(j.sd * j.sd / j.n_eff + j.b_sd * j.b_sd / j.b_neff)"
    mean_se_prev = "sqrt(j.sd * j.sd / j.n_eff + j.p_sd * j.p_sd / j.p_neff)"
    return f"""
    SELECT j.wave, j.scope, j.name AS question, j.kind, j.label,
        j.base_n,
        CASE WHEN {keep} THEN j.base_w END AS base_weighted,
        CASE WHEN {keep} THEN j.n_eff END AS n_eff,
        CASE WHEN {keep} THEN 100.0 * j.p_top END AS topbox,
        CASE WHEN {keep} THEN {proportion_ci_sql("j.p_top", "j.n_eff", z, True)} END AS topbox_ci_low,
        CASE WHEN {keep} THEN {proportion_ci_sql("j.p_top", "j.n_eff", z, False)} END AS topbox_ci_high,
        CASE WHEN {keep} THEN 100.0 * j.p_bottom END AS bottombox,
        CASE WHEN {keep} THEN j.mean END AS mean,
        CASE WHEN {keep} THEN j.sd END AS sd,
        CASE WHEN {keep} THEN {mean_ci_sql("j.mean", "j.sd", "j.n_eff", z, True)} END AS mean_ci_low,
        CASE WHEN {keep} THEN {mean_ci_sql("j.mean", "j.sd", "j.n_eff", z, False)} END AS mean_ci_high,
        CASE WHEN {keep} AND j.bench_ok THEN 100.0 * j.b_top END AS benchmark_topbox,
        CASE WHEN {keep} AND j.bench_ok THEN j.b_mean END AS benchmark_mean,
        CASE WHEN {keep} AND j.bench_ok THEN {verdict_sql("(j.p_top - j.b_top)", top_se_bench, z)} ELSE '' END AS sig_topbox_vs_benchmark,
        CASE WHEN {keep} AND j.bench_ok THEN {verdict_sql("(j.mean - j.b_mean)", mean_se_bench, z)} ELSE '' END AS sig_mean_vs_benchmark,
        CASE WHEN {keep} AND j.prev_ok THEN 100.0 * j.p_top_prev END AS previous_topbox,
        CASE WHEN {keep} AND j.prev_ok THEN j.p_mean END AS previous_mean,
        CASE WHEN {keep} AND j.prev_ok THEN {verdict_sql("(j.p_top - j.p_top_prev)", top_se_prev, z)} ELSE '' END AS sig_topbox_vs_previous,
        CASE WHEN {keep} AND j.prev_ok THEN {verdict_sql("(j.mean - j.p_mean)", mean_se_prev, z)} ELSE '' END AS sig_mean_vs_previous,
        $test AS test,
        j.suppressed,
        CASE WHEN j.suppressed THEN
            CASE WHEN j.base_n = 0 THEN 'no valid responses (base 0 < min_base ' || $min_base || ')'
                 ELSE 'unweighted base ' || j.base_n || ' < min_base ' || $min_base END
        ELSE '' END AS suppression_reason,
        j.spos, j.qpos, j.question AS qid,
        j.b_n, j.p_n, j.bench_ok, j.prev_ok, j.base_w AS base_w_raw
    FROM joined j
    """


SUMMARY_COLUMNS = (
    "wave, scope, question, kind, label, base_n, base_weighted, n_eff, topbox, topbox_ci_low, topbox_ci_high, "
    "bottombox, mean, sd, mean_ci_low, mean_ci_high, benchmark_topbox, benchmark_mean, sig_topbox_vs_benchmark, "
    "sig_mean_vs_benchmark, previous_topbox, previous_mean, sig_topbox_vs_previous, sig_mean_vs_previous, test, "
    "suppressed, suppression_reason"
)


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


def _rows_select() -> str:
    """The code rows of every summary (``sidx``: the summary's position), in display order: valid codes,
    user-missing codes, then system missing; a multiple-response set's items in set order, then the
    respondents who gave none. Only the row's own columns: :func:`report` adds its summary's."""
    z = "$z"
    code = CODE_TEXT.format(v="r.value")
    scope_cell = "c.wave = su.wave AND c.scope = su.scope AND c.question = su.qid"
    return f"""
    single_lines AS (
        SELECT su.sidx, k.value, k.label, k.missing AS user_missing, c.n, c.sw
        FROM summary su JOIN _wt_codes k ON k.wave = su.wave AND k.question = su.qid
        LEFT JOIN classified c ON {scope_cell} AND c.value = k.value
        WHERE su.kind <> 'multiple'
        UNION ALL  -- values answered that have no label
        SELECT su.sidx, c.value, NULL, im.value IS NOT NULL, c.n, c.sw
        FROM summary su JOIN classified c ON {scope_cell}
        LEFT JOIN _wt_codes k ON k.wave = c.wave AND k.question = c.question AND k.value = c.value
        LEFT JOIN is_missing im ON im.wave = c.wave AND im.question = c.question AND im.value = c.value
        WHERE su.kind <> 'multiple' AND c.value IS NOT NULL AND k.value IS NULL
        UNION ALL  -- system missing, always shown
        SELECT su.sidx, NULL, 'System missing', FALSE, c.n, c.sw
        FROM summary su LEFT JOIN classified c ON {scope_cell} AND c.value IS NULL
        WHERE su.kind <> 'multiple'
    ),
    single_rows AS (
        SELECT l.sidx,
            CASE WHEN l.value IS NULL THEN '.' ELSE {code.replace("r.value", "l.value")} END AS code,
            l.label, (l.value IS NULL OR l.user_missing) AS missing,
            coalesce(l.n, 0) AS n_raw, coalesce(l.sw, 0.0) AS w_raw,
            CASE WHEN l.value IS NOT NULL AND NOT l.user_missing AND su.base_w_raw > 0 THEN coalesce(l.sw, 0.0) / su.base_w_raw END AS p,
            NULL::DOUBLE AS p_responses,
            CASE WHEN l.value IS NULL THEN 2 WHEN l.user_missing THEN 1 ELSE 0 END AS rank1,
            coalesce(l.value, 0) AS rank2
        FROM single_lines l JOIN summary su USING (sidx)
    ),
    multiple_rows AS (
        SELECT su.sidx, i.item AS code, i.label, FALSE AS missing,
            coalesce(c.n, 0) AS n_raw, coalesce(c.sw, 0.0) AS w_raw,
            CASE WHEN su.base_w_raw > 0 THEN coalesce(c.sw, 0.0) / su.base_w_raw END AS p,
            CASE WHEN r.total > 0 THEN 100.0 * coalesce(c.sw, 0.0) / r.total END AS p_responses,
            0 AS rank1, i.ipos AS rank2
        FROM summary su JOIN _wt_items i ON i.wave = su.wave AND i.question = su.qid
        LEFT JOIN mr_rolled c ON {scope_cell} AND c.role = 'item' AND c.item = i.item
        LEFT JOIN mr_responses r ON r.wave = su.wave AND r.scope = su.scope AND r.question = su.qid
        UNION ALL
        SELECT su.sidx, '.', 'No response counted', TRUE, coalesce(c.n, 0), coalesce(c.sw, 0.0), NULL, NULL, 2, 0
        FROM summary su LEFT JOIN mr_rolled c ON {scope_cell} AND c.role = 'none'
        WHERE su.kind = 'multiple'
    ),
    all_rows AS (SELECT * FROM single_rows UNION ALL SELECT * FROM multiple_rows)
    SELECT r.sidx, r.code, r.label, r.missing,
        CASE WHEN NOT su.suppressed THEN r.n_raw END AS n,
        CASE WHEN NOT su.suppressed THEN r.w_raw END AS weighted_n,
        CASE WHEN NOT su.suppressed THEN 100.0 * r.p END AS percent,
        CASE WHEN NOT su.suppressed AND r.p IS NOT NULL THEN su.n_eff END AS n_eff,
        CASE WHEN NOT su.suppressed AND r.p IS NOT NULL THEN {proportion_ci_sql("r.p", "su.n_eff", z, True)} END AS ci_low,
        CASE WHEN NOT su.suppressed AND r.p IS NOT NULL THEN {proportion_ci_sql("r.p", "su.n_eff", z, False)} END AS ci_high,
        CASE WHEN NOT su.suppressed THEN r.p_responses END AS percent_of_responses
    FROM all_rows r JOIN summary su USING (sidx)
    ORDER BY r.sidx, r.rank1, r.rank2
    """


def _audit_select() -> str:
    return """
    SELECT wave, scope, question, 'question' AS withheld, base_n, $min_base AS min_base, suppression_reason AS reason,
        spos, qpos
    FROM summary WHERE suppressed
    UNION ALL
    SELECT wave, scope, question, 'benchmark', coalesce(b_n, 0), $min_base,
        'benchmark (all other respondents) unweighted base ' || coalesce(b_n, 0) || ' < min_base ' || $min_base, spos, qpos
    FROM summary WHERE NOT suppressed AND kind <> 'custom' AND scope <> 'all' AND NOT bench_ok
    UNION ALL
    SELECT wave, scope, question, 'previous wave', p_n, $min_base,
        'wave ' || (wave - 1) || ' unweighted base ' || p_n || ' < min_base ' || $min_base, spos, qpos
    FROM summary WHERE NOT suppressed AND p_n IS NOT NULL AND NOT prev_ok
    """


def _aliases(names: tuple[str, ...]) -> str:
    return ", ".join(f"{name} AS (SELECT * FROM _wt_{name})" for name in names)


def aggregate(con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The first stage, for one wave: roll its cells up to the scopes and benchmarks, and compute every
    base's statistics.

    Returns the ``AGGREGATES`` tables, which :func:`report` takes: only the scope
    side of the roll-ups (the benchmarks live on in ``stats``)."""
    with registered(con, inputs, AGGREGATE_INPUTS):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_marked AS WITH {_MARK_CTES} SELECT * FROM marked")
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _wt_m_scoped AS WITH marked AS (SELECT * FROM _wt_m_marked), "
                f"{_ROLLUP_CTES} SELECT * FROM scoped"
            )
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_m_mr_rolled AS WITH {_MR_CTES} SELECT * FROM mr_rolled")
            stats = (
                "WITH marked AS (SELECT * FROM _wt_m_marked), scoped AS (SELECT * FROM _wt_m_scoped), "
                f"mr_rolled AS (SELECT * FROM _wt_m_mr_rolled), {_BENCH_CTES}, {_STATS_CTES}"
            )
            return {
                "classified": con.sql("SELECT wave, scope, question, value, n, sw FROM _wt_m_scoped").to_arrow_table(),
                "mr_rolled": con.sql("SELECT * FROM _wt_m_mr_rolled WHERE side = 'scope'").to_arrow_table(),
                # the values answered that are user-missing (the report looks up the unlabelled ones here)
                "is_missing": con.sql(
                    "SELECT DISTINCT wave, question, value FROM _wt_m_marked WHERE status = 'user'"
                ).to_arrow_table(),
                "stats": con.sql(f"{stats} SELECT * FROM stats").to_arrow_table(),
                "mr_responses": con.sql(
                    "SELECT wave, scope, question, sum(sw) AS total FROM _wt_m_mr_rolled"
                    " WHERE side = 'scope' AND role = 'item' GROUP BY ALL"
                ).to_arrow_table(),
            }
        finally:
            for name in ("marked", "scoped", "mr_rolled"):
                con.execute(f"DROP TABLE IF EXISTS _wt_m_{name}")


def report(
    con: duckdb.DuckDBPyConnection, inputs: dict[str, pa.Table], *, z: float, min_base: int, test: str
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The second stage, for one wave: (rows, summaries, audit) as Arrow tables, sorted by scope, question
    and code, from the wave's :func:`aggregate` tables (``stats`` also holding the previous wave's) and
    ``REPORT_INPUTS``.

    The target questions and the summaries are computed once into temporary tables, which the rows and
    the audit then read."""
    params = {"z": z, "min_base": min_base, "test": test}
    with registered(con, inputs, (*AGGREGATES, *REPORT_INPUTS)):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_target_questions AS {_TARGET_QUESTIONS}")
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _wt_summary AS WITH {_aliases((*AGGREGATES, 'target_questions'))}, "
                f"{_JOINED_CTE}, summary AS ({_summary_select()}) "
                "SELECT *, (row_number() OVER (ORDER BY wave, spos, qpos) - 1)::INTEGER AS sidx FROM summary",
                params,
            )
            summary = con.sql("SELECT * FROM _wt_summary ORDER BY sidx").to_arrow_table()
            own = con.sql(
                f"WITH {_aliases((*AGGREGATES, 'summary'))}, {_rows_select()}", params={"z": z}
            ).to_arrow_table()
            audit = con.sql(
                f"WITH {_aliases(('summary',))} SELECT wave, scope, question, withheld, base_n, min_base, reason "
                f"FROM ({_audit_select()}) ORDER BY wave, spos, qpos, withheld",
                params={"min_base": min_base},
            ).to_arrow_table()
        finally:
            for name in ("target_questions", "summary"):
                con.execute(f"DROP TABLE IF EXISTS _wt_{name}")
    summaries = summary.select([c.strip() for c in SUMMARY_COLUMNS.split(",")])
    return _rows_with_summaries(own, summary), summaries, audit


def _rows_with_summaries(own: pa.Table, summary: pa.Table) -> pa.Table:
    """Each code row followed by its question's summary columns (taken by position, not joined in SQL:
    sorting and converting the repeated columns cost more than the rest of the query)."""
    taken = summary.select(list(ROW_SUMMARY_COLUMNS)).take(own.column("sidx"))
    columns = {name: taken.column(name) for name in ROW_SUMMARY_COLUMNS[:3]}
    columns |= {name: own.column(name) for name in own.column_names if name != "sidx"}
    columns |= {"kind": taken.column("kind"), "question_label": taken.column("label")}
    columns |= {name: taken.column(name) for name in ROW_SUMMARY_COLUMNS[5:]}
    return pa.table(columns)
