"""The drift gate as stored: refuse a wave whose codebook drift is unreviewed (the verdict is written by
:mod:`wavetool.drift`)."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from ..errors import DriftGateError
from ..store import first_row


def ensure_reviewed(con: duckdb.DuckDBPyConnection, waves: list[int] | tuple[int, ...]) -> None:
    """Refuse (DriftGateError) to use a wave whose codebook drift has not been reviewed."""
    rows = con.execute(
        "SELECT wave, drift FROM waves WHERE review_status = 'unreviewed' AND list_contains(?, wave) ORDER BY wave",
        [list(waves)],
    ).fetchall()
    if rows:
        wave, drift = rows[0]
        raise DriftGateError(
            f"wave {wave}'s codebook drifted from the previous wave and has not been reviewed: {drift_summary(drift)}",
            hint=f"see `wavetool codebook diff {_previous_label(con, wave)} {wave}`; add a [[crosswalk]] entry that explains it"
            f" and run `wavetool codebook review --wave {wave}`, or accept it with `wavetool codebook approve --wave {wave}`",
        )


def drift_summary(drift: Any) -> str:
    """A one-line description of stored drift records."""
    items = json.loads(drift) if isinstance(drift, str) else (drift or [])
    # Only what gates: added questions and crosswalk-explained changes are listed by `codebook diff`.
    items = [d for d in items if d.get("gates", d.get("explained_by") is None and d.get("change") != "added")]
    parts = [f"{d.get('question', '?')} {d.get('change', 'changed')}" for d in items[:5]]
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return (", ".join(parts) + more) or "unexplained changes"


def _previous_wave(con: duckdb.DuckDBPyConnection, wave: int) -> int | None:
    row = first_row(con, "SELECT max(wave) FROM waves WHERE wave < ?", [wave])
    return row[0] if row and row[0] is not None else None


def _previous_label(con: duckdb.DuckDBPyConnection, wave: int) -> str:
    previous = _previous_wave(con, wave)
    return str(previous if previous is not None else wave - 1)
