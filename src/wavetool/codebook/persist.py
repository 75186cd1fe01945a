"""The codebook tables of the study database (variables, value_labels, missing_values, mr_sets): the one
store of every codebook, keyed by ``book``: :data:`CORE` (``''``) for a wave's main file, a subscriber id
for that subscriber's merged custom-question file. Written by the wave import (the core book) and the
custom merge (a subscriber's book), both through this module, and read by everything above. SQL elsewhere
that reads these tables reads the core book only (``book = ''``)."""

from __future__ import annotations

from typing import Any

import duckdb

from ..errors import InputMissingError
from ..store import first_row
from .model import Codebook, MissingSpec, MrSet, Variable

CORE = ""  # the book of a wave's main file (core questions and subscribers' prefix columns)


def save_codebook(
    con: duckdb.DuckDBPyConnection,
    wave: int,
    codebook: Codebook,
    roles: dict[str, str],
    owners: dict[str, str],
    questions: dict[str, str] | None = None,
    book: str = CORE,
) -> None:
    """Write one codebook of a wave (the main file's, or with ``book`` a subscriber's custom file's) into the
    codebook tables, replacing that book's previous one (inside the caller's transaction)."""
    delete_codebook(con, wave, book)
    role_of = {column: role for role, column in roles.items()}
    questions = questions or {}
    var_rows, label_rows, missing_rows = [], [], []
    for position, var in enumerate(codebook.variables.values(), start=1):
        var_rows.append(
            (
                wave,
                var.name,
                position,
                var.label,
                var.type,
                var.measure,
                var.format,
                var.width,
                role_of.get(var.name),
                owners.get(var.name),
                questions.get(var.name, var.name),
                book,
            )
        )
        for code, label in var.value_labels.items():
            label_rows.append((wave, var.name, code, _as_number(code) if var.type != "string" else None, label, book))
        for spec in var.missing:
            missing_rows.append((wave, var.name, spec.kind, spec.code, spec.low, spec.high, book))
    if var_rows:
        con.executemany("INSERT INTO variables VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", var_rows)
    if label_rows:
        con.executemany("INSERT INTO value_labels VALUES (?,?,?,?,?,?)", label_rows)
    if missing_rows:
        con.executemany("INSERT INTO missing_values VALUES (?,?,?,?,?,?,?)", missing_rows)
    for mr in codebook.mr_sets.values():
        con.execute(
            "INSERT INTO mr_sets VALUES (?,?,?,?,?,?,?)",
            [wave, mr.name, mr.label, mr.type, mr.counted_value, list(mr.variables), book],
        )


_NAME_COLUMN = {"variables": "name", "value_labels": "variable", "missing_values": "variable", "mr_sets": "name"}


def delete_codebook(
    con: duckdb.DuckDBPyConnection, wave: int, book: str = CORE, names: list[str] | None = None
) -> None:
    """Remove one codebook of a wave (or only the named variables of it) from the codebook tables (inside
    the caller's transaction). The other books of the wave stay: re-importing a wave keeps the merged
    custom questions' codebooks, as it keeps their answers."""
    for table, column in _NAME_COLUMN.items():
        if names is None:
            con.execute(f"DELETE FROM {table} WHERE wave = ? AND book = ?", [wave, book])
        elif table != "mr_sets":  # a set goes with its whole book; a partial removal names single variables
            con.execute(
                f"DELETE FROM {table} WHERE wave = ? AND book = ? AND list_contains(?, {column})", [wave, book, names]
            )


def set_questions(con: duckdb.DuckDBPyConnection, wave: int, questions: dict[str, str]) -> None:
    """Store the study-level question of each named core variable of ``wave`` (a crosswalk rename re-applied)."""
    for name, question in questions.items():
        con.execute(
            "UPDATE variables SET question = ? WHERE wave = ? AND name = ? AND question <> ? AND book = ''",
            [question, wave, name, question],
        )


def _as_number(code: str) -> float | None:
    try:
        return float(code)
    except ValueError:
        return None


def load_codebook(
    con: duckdb.DuckDBPyConnection, wave: int, book: str = CORE, variables: list[str] | None = None
) -> Codebook:
    """A wave's codebook as stored in the database: its main file's, or with ``book`` a subscriber's custom
    file's (empty when that subscriber merged none; no encoding, which is the main file's); with
    ``variables``, those variables only (and no multiple-response set)."""
    only = "" if variables is None else " AND list_contains(?, {})"
    key = [wave, book] if variables is None else [wave, book, variables]
    labels: dict[str, dict[str, str]] = {}
    for variable, code, label in con.execute(
        "SELECT variable, code, label FROM value_labels WHERE wave = ? AND book = ?"
        + only.format("variable")
        + " ORDER BY variable, code_num NULLS LAST, code",
        key,
    ).fetchall():
        labels.setdefault(variable, {})[code] = label
    missing: dict[str, list[MissingSpec]] = {}
    for variable, kind, code, low, high in con.execute(
        "SELECT variable, kind, code, low, high FROM missing_values WHERE wave = ? AND book = ?"
        + only.format("variable")
        + " ORDER BY variable, low, code",
        key,
    ).fetchall():
        missing.setdefault(variable, []).append(MissingSpec(kind, code, low, high))
    variables = {}
    for name, label, vtype, measure, fmt, width in con.execute(
        "SELECT name, label, type, measure, format, width FROM variables WHERE wave = ? AND book = ?"
        + only.format("name")
        + " ORDER BY position",
        key,
    ).fetchall():
        variables[name] = Variable(
            name, label, vtype, measure, fmt, width, labels.get(name, {}), tuple(missing.get(name, ()))
        )
    mr_sets = {
        name: MrSet(name, label, mtype, counted, tuple(vars_))
        for name, label, mtype, counted, vars_ in con.execute(
            "SELECT name, label, type, counted_value, variables FROM mr_sets WHERE wave = ? AND book = ? ORDER BY name",
            [wave, book],
        ).fetchall()
        if variables is None
    }
    encoding = first_row(con, "SELECT encoding FROM waves WHERE wave = ?", [wave]) if book == CORE else None
    return Codebook(variables=variables, mr_sets=mr_sets, encoding=encoding[0] if encoding else None)


def codebook_rows(con: duckdb.DuckDBPyConnection, wave: int, variable: str | None = None) -> list[dict[str, Any]]:
    """The stored codebook of a wave (or one variable) as plain records, for display and JSON."""
    codebook = load_codebook(con, wave)
    if variable is not None and variable not in codebook.variables:
        raise InputMissingError(
            f"wave {wave}: no variable {variable!r}",
            hint="run `wavetool codebook --wave N` to list the variables",
        )
    names = [variable] if variable else list(codebook.variables)
    meta = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT name, role, owner, question FROM variables WHERE wave = ? AND book = ''", [wave]
        ).fetchall()
    }
    rows = []
    for name in names:
        var = codebook.variables[name]
        role, owner, question = meta.get(name, (None, None, None))
        rows.append(
            {
                "wave": wave,
                "name": name,
                "question": question,
                "label": var.label,
                "type": var.type,
                "measure": var.measure,
                "format": var.format,
                "width": var.width,
                "role": role,
                "owner": owner,
                "value_labels": var.value_labels,
                "missing": [spec.describe() for spec in var.missing],
            }
        )
    return rows
