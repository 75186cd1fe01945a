"""The codebook tables of the study database (variables, value_labels, missing_values, mr_sets):
written by the wave import and read by everything above."""

from __future__ import annotations

from typing import Any

import duckdb

from ..errors import InputMissingError
from ..store import first_row
from .model import Codebook, MissingSpec, MrSet, Variable


def save_codebook(
    con: duckdb.DuckDBPyConnection,
    wave: int,
    codebook: Codebook,
    roles: dict[str, str],
    owners: dict[str, str],
    questions: dict[str, str] | None = None,
) -> None:
    """Write a wave's codebook into the codebook tables (inside the caller's transaction)."""
    delete_codebook(con, wave)
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
            )
        )
        for code, label in var.value_labels.items():
            label_rows.append((wave, var.name, code, _as_number(code) if var.type != "string" else None, label))
        for spec in var.missing:
            missing_rows.append((wave, var.name, spec.kind, spec.code, spec.low, spec.high))
    if var_rows:
        con.executemany("INSERT INTO variables VALUES (?,?,?,?,?,?,?,?,?,?,?)", var_rows)
    if label_rows:
        con.executemany("INSERT INTO value_labels VALUES (?,?,?,?,?)", label_rows)
    if missing_rows:
        con.executemany("INSERT INTO missing_values VALUES (?,?,?,?,?,?)", missing_rows)
    for mr in codebook.mr_sets.values():
        con.execute(
            "INSERT INTO mr_sets VALUES (?,?,?,?,?,?)",
            [wave, mr.name, mr.label, mr.type, mr.counted_value, list(mr.variables)],
        )


def delete_codebook(con: duckdb.DuckDBPyConnection, wave: int) -> None:
    """Remove a wave's codebook from the codebook tables (inside the caller's transaction)."""
    for table in ("variables", "value_labels", "missing_values", "mr_sets"):
        con.execute(f"DELETE FROM {table} WHERE wave = ?", [wave])


def set_questions(con: duckdb.DuckDBPyConnection, wave: int, questions: dict[str, str]) -> None:
    """Store the study-level question of each named variable of ``wave`` (a crosswalk rename re-applied)."""
    for name, question in questions.items():
        con.execute(
            "UPDATE variables SET question = ? WHERE wave = ? AND name = ? AND question <> ?",
            [question, wave, name, question],
        )


def _as_number(code: str) -> float | None:
    try:
        return float(code)
    except ValueError:
        return None


def load_codebook(con: duckdb.DuckDBPyConnection, wave: int) -> Codebook:
    """A wave's codebook as stored in the database."""
    labels: dict[str, dict[str, str]] = {}
    for variable, code, label in con.execute(
        "SELECT variable, code, label FROM value_labels WHERE wave = ? ORDER BY variable, code_num NULLS LAST, code",
        [wave],
    ).fetchall():
        labels.setdefault(variable, {})[code] = label
    missing: dict[str, list[MissingSpec]] = {}
    for variable, kind, code, low, high in con.execute(
        "SELECT variable, kind, code, low, high FROM missing_values WHERE wave = ? ORDER BY variable, low, code",
        [wave],
    ).fetchall():
        missing.setdefault(variable, []).append(MissingSpec(kind, code, low, high))
    variables = {}
    for name, label, vtype, measure, fmt, width in con.execute(
        "SELECT name, label, type, measure, format, width FROM variables WHERE wave = ? ORDER BY position",
        [wave],
    ).fetchall():
        variables[name] = Variable(
            name, label, vtype, measure, fmt, width, labels.get(name, {}), tuple(missing.get(name, ()))
        )
    mr_sets = {
        name: MrSet(name, label, mtype, counted, tuple(vars_))
        for name, label, mtype, counted, vars_ in con.execute(
            "SELECT name, label, type, counted_value, variables FROM mr_sets WHERE wave = ? ORDER BY name", [wave]
        ).fetchall()
    }
    encoding = first_row(con, "SELECT encoding FROM waves WHERE wave = ?", [wave])
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
        for row in con.execute("SELECT name, role, owner, question FROM variables WHERE wave = ?", [wave]).fetchall()
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
