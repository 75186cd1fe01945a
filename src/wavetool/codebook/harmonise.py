"""Harmonised questions: one study-level identity per question across waves (crosswalk renames and
recodes applied)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

import duckdb

from ..sql import code_text, quote
from ..store import wave_table
from .model import MissingSpec, Variable
from .persist import _as_number, load_codebook

# --- harmonised questions (one identity across waves) --------------------------------------------


def _recode_for(config: Any, question: str, wave: int) -> dict[float, float]:
    for entry in config.crosswalk:
        if entry.question.casefold() == question.casefold() and wave in entry.waves and entry.recode:
            return entry.recode
    return {}


def core_variables(con: duckdb.DuckDBPyConnection, wave: int) -> list[tuple[str, str]]:
    """(variable, question) of a wave's core questions: not a role column, not a subscriber's own."""
    return con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND book = '' AND role IS NULL AND owner IS NULL ORDER BY position",
        [wave],
    ).fetchall()


def harmonised_select(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> str:
    """SQL selecting a wave's respondents with one column per study-level question (crosswalk renames
    and recodes applied) beside ``_id``, ``_jurisdiction`` and ``_weight``. Subscriber-owned columns are
    never part of it."""
    columns = ["_id", "_jurisdiction", "_weight"]
    columns += [f"{expr} AS {quote(question)}" for question, expr in harmonised_columns(con, config, wave).items()]
    return f"SELECT {', '.join(columns)} FROM {wave_table(wave)}"


def harmonised_columns(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, str]:
    """question -> SQL expression over the wave table giving that question's answers (the columns of
    :func:`harmonised_select`; the tables use them directly to aggregate many questions in one query)."""
    columns = {}
    for variable, question in core_variables(con, wave):
        recode = _recode_for(config, question, wave)
        expr = quote(variable)
        if recode:
            cases = " ".join(f"WHEN {old!r} THEN {new!r}" for old, new in recode.items())
            expr = f"CASE {expr} {cases} ELSE {expr} END"
        columns[question] = expr
    return columns


def in_study_coding(var: Variable, recode: dict[float, float]) -> Variable:
    """``var`` with its value labels and user-missing codes moved into the study's coding by a crosswalk
    recode (unchanged without one)."""
    if not recode:
        return var
    labels = {
        code_text(recode.get(float(c), float(c))) if _as_number(c) is not None else c: lbl
        for c, lbl in var.value_labels.items()
    }
    return replace(var, value_labels=labels, missing=tuple(_recode_missing(spec, recode) for spec in var.missing))


def harmonised_codebook(
    con: duckdb.DuckDBPyConnection, config: Any, wave: int, questions: Collection[str] | None = None
) -> dict[str, Variable]:
    """A wave's core questions keyed by study-level question, with codes in the study's coding (with
    ``questions``, those study-level questions only: the drivers need a dozen of a wave's hundreds)."""
    pairs = core_variables(con, wave)
    if questions is not None:
        pairs = [(variable, question) for variable, question in pairs if question in questions]
    book = load_codebook(con, wave, variables=None if questions is None else [v for v, _ in pairs])
    result = {}
    for variable, question in pairs:
        var = in_study_coding(book.variables[variable], _recode_for(config, question, wave))
        result[question] = replace(var, name=question)
    return result


def _recode_missing(spec: MissingSpec, recode: dict[float, float]) -> MissingSpec:
    if spec.kind != "value" or spec.low is None or spec.low not in recode:
        return spec
    new = recode[spec.low]
    return MissingSpec("value", code_text(new), new, new)


def question_map(config: Any, wave: int, names: list[str], known: dict[str, str] | None = None) -> dict[str, str]:
    """The study-level question of each variable of ``wave``: its own name unless a crosswalk entry
    for that wave maps the variable to a question (e.g. Q5A in wave 4 answers Q5).

    Names match as SPSS matches them, whatever their case (a .por stores Q1 for a .sav's q1): ``known``
    (casefolded name -> question, see :func:`known_questions`) gives a question the spelling the other
    waves already use, so that a case-only difference is the same question, not drift."""
    known = known or {}
    questions = {n: known.get(n.casefold(), n) for n in names}
    for entry in config.crosswalk:
        if entry.variable and wave in entry.waves:
            for name in names:
                if name.casefold() == entry.variable.casefold():
                    questions[name] = known.get(entry.question.casefold(), entry.question)
    return questions


def known_questions(con: duckdb.DuckDBPyConnection, wave: int) -> dict[str, str]:
    """casefolded question -> its spelling in the other stored waves (the earliest wave's wins)."""
    rows = con.execute(
        "SELECT question, min(wave) FROM variables WHERE wave <> ? AND book = '' AND question IS NOT NULL"
        " GROUP BY 1 ORDER BY 2 DESC",
        [wave],
    ).fetchall()
    return {question.casefold(): question for question, _ in rows}
