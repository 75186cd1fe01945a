"""Sample sizes per wave and jurisdiction, for the report's sample table and margins of error."""

from __future__ import annotations

import duckdb

from ..store import wave_table


def sample_sizes(con: duckdb.DuckDBPyConnection, waves: list[int]) -> dict[int, dict[str, tuple[int, float, float]]]:
    """Per wave and jurisdiction: (n, sum of weights, sum of squared weights), from the weights the
    tables use (``_weight``: the raked weight once ``wavetool weight`` ran)."""
    result: dict[int, dict[str, tuple[int, float, float]]] = {}
    for w in waves:
        rows = con.execute(
            f"SELECT _jurisdiction, count(*), sum(_weight), sum(_weight * _weight) FROM {wave_table(w)} "
            "GROUP BY _jurisdiction ORDER BY _jurisdiction"
        ).fetchall()
        result[w] = {code: (n, sw, sw2) for code, n, sw, sw2 in rows}
    return result
