"""What gets tabulated in a wave: single-response questions, multiple-response sets and a subscriber's
custom questions, each with its codes, user-missing declarations and top/bottom boxes.

Everything here is small metadata read from the codebook tables; the respondents' answers are only ever
touched by the SQL in :mod:`wavetool.stats.frequencies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ..codebook import MissingSpec, Variable, code_text, core_variables, harmonised_codebook, is_missing_code
from ..config import StudyConfig, by_name
from ..custom import custom_questions
from ..store import quote

SCALE_MEASURES = ("ordinal", "scale", "unknown")
MIN_SCALE_CODES = 3  # a 1-2 code item (yes/no) has no meaningful top-2 box or mean


@dataclass(frozen=True)
class MrItem:
    """One line of a multiple-response set: a member (dichotomy) or a code (category set)."""

    code: str
    label: str | None
    condition: str  # SQL boolean over the respondent row: "this respondent gave this response"


@dataclass(frozen=True)
class Question:
    """One tabulated question of one wave.

    ``kind`` is 'single' (a core single-response question), 'multiple' (a multiple-response set) or
    'custom' (a subscriber's own question, tabulated only in that subscriber's scope)."""

    name: str
    kind: str
    label: str | None
    codes: dict[float, str] = field(default_factory=dict)  # labelled numeric codes -> label
    missing: tuple[MissingSpec, ...] = ()
    top: tuple[float, ...] = ()
    bottom: tuple[float, ...] = ()
    owner: str | None = None  # the subscriber of a custom question
    items: tuple[MrItem, ...] = ()  # multiple-response sets only

    @property
    def is_scale(self) -> bool:
        return bool(self.top or self.bottom)

    def is_missing(self, code: float) -> bool:
        """Whether ``code`` is one of this question's user-missing codes."""
        return is_missing_code(self.missing, code)

    def valid_codes(self) -> list[float]:
        return sorted(c for c in self.codes if not self.is_missing(c))


def _numeric_codes(var: Variable) -> dict[float, str]:
    codes = {}
    for code, label in var.value_labels.items():
        try:
            codes[float(code)] = label
        except ValueError:
            continue
    return codes


def study_measures(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The measurement levels each core question has in any imported wave (a .por keeps none, so a
    question's level is taken from the waves that do)."""
    rows = con.execute(
        "SELECT question, list(DISTINCT measure) FROM variables WHERE book = '' AND role IS NULL AND measure <> 'unknown'"
        " GROUP BY question"
    ).fetchall()
    return {question: set(measures) for question, measures in rows}


def _boxes(
    config: StudyConfig, name: str, config_key: str, var: Variable, codes: dict[float, str], measures: set[str]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Top and bottom box codes: from ``[tables.scales]`` when configured, else the two highest and two
    lowest valid labelled codes of an ordinal item with at least three valid codes."""
    configured = by_name(config.tables.scales, config_key) or by_name(config.tables.scales, name)
    if configured:
        return configured.top, configured.bottom
    measure = var.measure
    if measure == "unknown" and measures:  # e.g. a .por wave: use the level the other waves declare
        measure = "nominal" if "nominal" in measures else sorted(measures)[0]
    valid = sorted(c for c in codes if not is_missing_code(var.missing, c))
    if measure not in SCALE_MEASURES or len(valid) < MIN_SCALE_CODES:
        return (), ()
    return tuple(valid[-2:]), tuple(valid[:2])


def single_questions(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int) -> list[Question]:
    """The wave's core single-response questions (numeric with value labels), in file order."""
    measures = study_measures(con)
    result = []
    for name, var in harmonised_codebook(con, config, wave).items():
        question = single_question(config, name, var, measures)
        if question is not None:
            result.append(question)
    return result


def single_question(config: StudyConfig, name: str, var: Variable, measures: dict[str, set[str]]) -> Question | None:
    """The core question ``name`` (its harmonised codebook entry ``var``) as the tables tabulate it, or
    None when they do not (not numeric, or no value labels); ``measures`` from :func:`study_measures`."""
    codes = _numeric_codes(var)
    if var.type != "numeric" or not codes:
        return None
    top, bottom = _boxes(config, name, name, var, codes, measures.get(name, set()))
    return Question(name, "single", var.label, codes, var.missing, top, bottom)


def mr_sets(con: duckdb.DuckDBPyConnection, wave: int, singles: list[Question]) -> list[Question]:
    """The study's multiple-response sets that ``wave`` can answer.

    A set is defined once for the study: its latest definition in any imported wave. SPSS keeps MR sets
    only in .sav files, so a wave exported as CSV or .por gets the set from another wave whenever all of
    its member questions are there (a file-format difference, not a change in the questionnaire)."""
    variable_question = {}
    for w, name, question in con.execute(
        "SELECT wave, name, question FROM variables WHERE book = '' AND role IS NULL ORDER BY wave"
    ).fetchall():
        variable_question[(w, name)] = question
    definitions: dict[str, tuple] = {}
    for w, name, label, mtype, counted, members in con.execute(
        "SELECT wave, name, label, type, counted_value, variables FROM mr_sets WHERE book = '' ORDER BY wave"
    ).fetchall():
        questions = tuple(variable_question.get((w, v), v) for v in members)
        definitions[name] = (label, mtype, counted, questions)
    by_name = {q.name: q for q in singles}
    result = []
    for name, (label, mtype, counted, members) in sorted(definitions.items()):
        if not members or any(m not in by_name for m in members):
            continue
        items = (
            _dichotomy_items(members, by_name, counted) if mtype == "dichotomy" else _category_items(members, by_name)
        )
        if items:
            result.append(Question("$" + name.lstrip("$"), "multiple", label, items=tuple(items)))
    return result


def _dichotomy_items(members: tuple[str, ...], by_name: dict[str, Question], counted: str | None) -> list[MrItem]:
    try:
        value = repr(float(counted if counted is not None else "1"))
    except ValueError:
        return []
    return [MrItem(m, by_name[m].label, f"{quote(m)} = {value}") for m in members]


def _category_items(members: tuple[str, ...], by_name: dict[str, Question]) -> list[MrItem]:
    codes: dict[float, str] = {}
    for m in members:
        for code in by_name[m].valid_codes():
            codes.setdefault(code, by_name[m].codes[code])
    return [
        MrItem(code_text(code), label, "(" + " OR ".join(f"{quote(m)} = {code!r}" for m in members) + ")")
        for code, label in sorted(codes.items())
    ]


def custom_question_list(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, subscriber: str
) -> list[Question]:
    """A subscriber's custom questions of ``wave`` that are tabulated (numeric with value labels)."""

    result = []
    for cq in custom_questions(con, wave, subscriber):
        var = cq.variable
        codes = _numeric_codes(var)
        if var.type != "numeric" or not codes:
            continue
        top, bottom = _boxes(config, cq.question, f"{subscriber}:{cq.question}", var, codes, set())
        result.append(Question(cq.question, "custom", var.label, codes, var.missing, top, bottom, owner=subscriber))
    return result


def core_question_names(con: duckdb.DuckDBPyConnection, wave: int) -> list[str]:
    """The study-level names of the wave's core questions (for messages)."""
    return [q for _, q in core_variables(con, wave)]
