"""The one heavy step: every respondent's answers reduced to weighted counts per cell.

A *cell* is (wave, question, key, value) with ``n`` (respondents), ``sw`` (sum of weights) and ``sw2``
(sum of squared weights). ``key`` is the respondent's cell key: its jurisdiction (and stratum and PSU
when the design has them), prefixed by ``@<subscriber>`` for a subscriber's custom question; what a key
means is the ``keys`` table of :mod:`wavetool.stats.design`. These three sums are additive, so every scope (all, a jurisdiction, a
subscriber's pooled jurisdictions) and every benchmark (everyone else) is a cheap roll-up of the cells,
and every statistic (percents, Kish n_eff, means, SDs, CIs, tests) follows from them exactly. The wave
table is therefore scanned once per wave, in one query over all questions (see single_cells_sql).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ..sql import literal as sql_text
from ..store import fetch_arrow
from .questions import Question

CELL_SCHEMA = pa.schema(
    [
        ("wave", pa.int32()),
        ("question", pa.string()),
        ("key", pa.string()),
        ("value", pa.float64()),
        ("n", pa.int64()),
        ("sw", pa.float64()),
        ("sw2", pa.float64()),
    ]
)
MR_SCHEMA = pa.schema(
    [
        ("wave", pa.int32()),
        ("question", pa.string()),
        ("key", pa.string()),
        ("item", pa.string()),
        ("role", pa.string()),
        ("n", pa.int64()),
        ("sw", pa.float64()),
        ("sw2", pa.float64()),
    ]
)


def _weight_expr(weighted: bool) -> str:
    return "CAST(_weight AS DOUBLE)" if weighted else "1.0::DOUBLE"


BLOCK = 3  # questions grouped together in the first pass (see single_cells_sql)


def single_cells_sql(
    source: str,
    wave: int,
    expressions: list[str],
    weighted: bool,
    key_expr: str,
    *,
    block: int = BLOCK,
    weights: tuple[str, str] | None = None,
) -> str:
    """SQL aggregating the questions given as SQL ``expressions`` over ``source`` (one wave) into cells, in
    one query; a cell's ``question`` is the position of its expression in ``expressions``.

    Questions are taken three at a time: a first GROUP BY on (key, Qa, Qb, Qc) collapses the respondents
    to their distinct answer combinations (a few thousand at most), each carrying its three (position,
    value) pairs as lists; unnesting them (a NULL value is a system-missing answer and stays) and a final
    GROUP BY give the cells. Each respondent row is hashed once per three questions instead of once per
    question: about twice as fast as one UNPIVOT of the whole table, and quick to plan. Positions rather
    than names keep the final GROUP BY on integers.

    ``block`` is the number of questions per first pass; ``weights`` the SQL of each row's weight and
    squared weight when ``source`` carries them (the banner scan's: see ``banners.number_respondents``;
    default: from ``_weight``)."""
    weight = _weight_expr(weighted)
    sw, sw2 = weights or (weight, f"{weight} * {weight}")
    blocks = []
    for start in range(0, len(expressions), block):
        chunk = expressions[start : start + block]
        values = [f"CAST({expr} AS DOUBLE)" for expr in chunk]
        positions = ", ".join(str(start + offset) for offset in range(len(chunk)))
        blocks.append(
            f"SELECT {key_expr} AS key, [{positions}] AS questions, [{', '.join(values)}] AS answers, "
            f"count(*) AS n, sum({sw}) AS sw, sum({sw2}) AS sw2 "
            f"FROM {source} GROUP BY {key_expr}, {', '.join(values)}"
        )
    return (
        f"SELECT {int(wave)}::INTEGER AS wave, question::INTEGER AS question, key, value, sum(n)::BIGINT AS n, "
        f"sum(sw) AS sw, sum(sw2) AS sw2 "
        f"FROM (SELECT key, unnest(questions) AS question, unnest(answers) AS value, n, sw, sw2 "
        f"FROM ({' UNION ALL '.join(blocks)})) GROUP BY ALL"
    )


def fetch_single_cells(
    con: duckdb.DuckDBPyConnection,
    source: str,
    wave: int,
    questions: list[tuple[str, str]],
    weighted: bool,
    key_expr: str,
) -> pa.Table:
    """The cells of ``questions`` ((SQL expression over ``source``, question id) pairs) of one wave, as
    Arrow in CELL_SCHEMA (see single_cells_sql)."""
    sql = single_cells_sql(source, wave, [expr for expr, _ in questions], weighted, key_expr)
    cells = fetch_arrow(con, sql)
    ids = pa.array([qid for _, qid in questions], type=pa.string()).take(cells.column("question"))
    return cells.set_column(cells.schema.get_field_index("question"), "question", ids).cast(CELL_SCHEMA)


def mr_cells_sql(select_sql: str, wave: int, sets: list[Question], weighted: bool) -> str:
    """SQL aggregating multiple-response sets into cells: one row per item (respondents who gave that
    response), 'base' (respondents who gave at least one) and 'none' (those who gave none).
    ``select_sql`` gives each respondent's cell key as ``_wt_key`` (see :mod:`wavetool.stats.design`)."""
    branches = []
    for mr in sets:
        name = sql_text(mr.name)
        any_response = "(" + " OR ".join(f"coalesce({item.condition}, FALSE)" for item in mr.items) + ")"
        for item in mr.items:
            branches.append(
                f"SELECT {name} AS question, {sql_text(item.code)} AS item, 'item' AS role, key, w FROM h WHERE {item.condition}"
            )
        branches.append(f"SELECT {name}, NULL, 'base', key, w FROM h WHERE {any_response}")
        branches.append(f"SELECT {name}, NULL, 'none', key, w FROM h WHERE NOT {any_response}")
    return (
        f"WITH h AS (SELECT _wt_key AS key, {_weight_expr(weighted)} AS w, * FROM ({select_sql})) "
        f"SELECT {int(wave)}::INTEGER AS wave, question, key, item, role, count(*)::BIGINT AS n, sum(w) AS sw, sum(w * w) AS sw2 "
        f"FROM ({' UNION ALL '.join(branches)}) GROUP BY ALL"
    )


def fetch_cells(con: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema) -> pa.Table:
    """Run a cell query and return its (small) result as Arrow in the given schema."""
    return fetch_arrow(con, sql).cast(schema)
