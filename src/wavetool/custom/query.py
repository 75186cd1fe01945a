"""Reading custom questions: a subscriber's questions of a wave, its eligible respondents' answers
(:func:`custom_select`), and notices about merged answers a replaced wave orphaned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ..codebook import CORE_LANGUAGE, Variable, load_codebook
from ..config import StudyConfig
from ..errors import DataError
from ..sql import missing_condition, text_list
from ..store import first_row, quote, read_store, wave_table


@dataclass(frozen=True)
class CustomQuestion:
    """One subscriber's custom question in one wave; ``variable`` is named by the question."""

    subscriber: str
    wave: int
    question: str
    variable: Variable
    language: str
    source: str  # 'file' (merged) | 'prefix' (a column of the main wave file)


def custom_table(subscriber_id: str, wave: int) -> str:
    """The wide table holding a subscriber's merged custom answers for one wave (ids are slugs, so
    replacing '-' by '_' cannot make two subscribers' tables collide)."""
    return f"custom_{subscriber_id.replace('-', '_')}_{int(wave)}"


def custom_questions(con: duckdb.DuckDBPyConnection, wave: int, subscriber_id: str) -> list[CustomQuestion]:
    """A subscriber's custom questions in ``wave``: prefix columns of the main file (in file order),
    then the questions merged from its custom file."""
    result = []
    prefix = con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND owner = ? AND book = '' ORDER BY position",
        [wave, subscriber_id],
    ).fetchall()
    if prefix:
        book = load_codebook(con, wave)
        for name, question in prefix:
            var = book.variables[name]
            result.append(
                CustomQuestion(
                    subscriber_id,
                    wave,
                    question,
                    Variable(
                        question, var.label, var.type, var.measure, var.format, var.width, var.value_labels, var.missing
                    ),
                    CORE_LANGUAGE,
                    "prefix",
                )
            )
    merge = first_row(
        con, "SELECT language FROM custom_merges WHERE subscriber = ? AND wave = ?", [subscriber_id, wave]
    )
    if merge:
        for name, var in load_codebook(con, wave, book=subscriber_id).variables.items():
            result.append(CustomQuestion(subscriber_id, wave, name, var, merge[0] or CORE_LANGUAGE, "file"))
    return result


def unmatched_custom_answers(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int) -> list[str]:
    """One notice per subscriber whose merged custom answers for ``wave`` no longer all belong to its own
    respondents of the wave (after the wave was replaced): those answers are not counted anywhere, since only
    the subscriber's respondents are ever read (custom_select), but the coordinator should know."""
    notices = []
    merges = con.execute(
        "SELECT subscriber, table_name, file_name FROM custom_merges WHERE wave = ? AND content_sha256 <> ''"
        " ORDER BY subscriber",
        [wave],
    ).fetchall()
    for subscriber_id, table, file_name in merges:
        if subscriber_id not in config.subscribers:
            continue
        codes = _jurisdiction_list(config.subscribers[subscriber_id].jurisdictions)
        total, absent, outside = first_row(
            con,
            f"SELECT count(*), count(*) FILTER (WHERE w._id IS NULL),"
            f" count(*) FILTER (WHERE w._id IS NOT NULL AND NOT list_contains({codes}, w._jurisdiction))"
            f" FROM {table} c LEFT JOIN {wave_table(wave)} w ON w._id = c._id",
        )
        if absent or outside:
            parts = [f"{absent} are no longer respondents of the wave"] if absent else []
            parts += [f"{outside} are now outside its jurisdictions"] if outside else []
            notices.append(
                f"wave {wave}: {subscriber_id}'s custom answers ({file_name}): {' and '.join(parts)}, of {total};"
                " they are not counted. Merge a custom file that matches the new wave"
                f" (`wavetool custom merge FILE --subscriber {subscriber_id} --wave {wave} --replace`)"
            )
    return notices


def _jurisdiction_list(codes: tuple[str, ...]) -> str:
    return text_list(codes)


def custom_select(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, subscriber_id: str) -> str:
    """SQL: the subscriber's ELIGIBLE respondents of ``wave`` (jurisdiction among its own) with ``_id``,
    ``_jurisdiction``, ``_weight`` and one column per custom question named by the question. Eligible
    respondents without an answer are NULL (or their user-missing code); others are not rows at all."""
    subscriber = config.subscriber(subscriber_id)
    questions = custom_questions(con, wave, subscriber_id)
    names = [q.question for q in questions]
    clash = next((n for n in names if names.count(n) > 1 or n in ("_id", "_jurisdiction", "_weight")), None)
    if clash:
        raise DataError(
            f"wave {wave}: {subscriber_id}'s custom question {clash} is both a main-file column and a merged question",
            hint=f"rename one, or `wavetool custom remove --subscriber {subscriber_id} --wave {wave} {clash}`",
        )
    columns = ["w._id", "w._jurisdiction", "w._weight"]
    merged_table = None
    for q in questions:
        if q.source == "prefix":
            variable = first_row(
                con,
                "SELECT name FROM variables WHERE wave = ? AND owner = ? AND question = ? AND book = ''",
                [wave, subscriber_id, q.question],
            )[0]
            columns.append(f"w.{quote(variable)} AS {quote(q.question)}")
        else:
            merged_table = custom_table(subscriber_id, wave)
            columns.append(f"c.{quote(q.question)} AS {quote(q.question)}")
    join = f" LEFT JOIN {merged_table} AS c ON c._id = w._id" if merged_table else ""
    return (
        f"SELECT {', '.join(columns)} FROM {wave_table(wave)} AS w{join}"
        f" WHERE list_contains({_jurisdiction_list(subscriber.jurisdictions)}, w._jurisdiction)"
    )


def missing_sql(column: str, var: Variable) -> str:
    """A SQL condition true where ``column`` holds one of ``var``'s user-missing codes."""
    return missing_condition(column, var.missing, string=var.type == "string")


def list_custom(config: StudyConfig, wave: int | None = None, subscriber: str | None = None) -> list[dict[str, Any]]:
    """What each subscriber has in each wave: one record per custom question with its text, where it came
    from, how many eligible respondents there are and how many answered (not blank, not user-missing)."""
    subscribers = [config.subscriber(subscriber)] if subscriber else list(config.subscribers.values())
    rows: list[dict[str, Any]] = []
    with read_store(config.root) as con:
        waves = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        for w in waves:
            if wave is not None and w != wave:
                continue
            files = {
                r[0]: r[1:]
                for r in con.execute(
                    "SELECT subscriber, file_name, sha256, rows FROM custom_merges WHERE wave = ?", [w]
                ).fetchall()
            }
            for sub in subscribers:
                questions = custom_questions(con, w, sub.id)
                if not questions:
                    continue
                counts = ["count(*)"] + [
                    f"count({quote(q.question)}) FILTER (WHERE NOT coalesce({missing_sql(quote(q.question), q.variable)}, FALSE))"
                    for q in questions
                ]
                totals = first_row(con, f"SELECT {', '.join(counts)} FROM ({custom_select(con, config, w, sub.id)})")
                main_file = ", ".join(
                    r[0]
                    for r in con.execute(
                        "SELECT file_name FROM wave_files WHERE wave = ? ORDER BY position", [w]
                    ).fetchall()
                )
                for q, answered in zip(questions, totals[1:], strict=True):
                    file_name, sha, file_rows = (
                        files.get(sub.id, (None, None, None)) if q.source == "file" else (main_file, None, None)
                    )
                    rows.append(
                        {
                            "subscriber": sub.id,
                            "wave": w,
                            "question": q.question,
                            "text": q.variable.label,
                            "language": q.language,
                            "source": q.source,
                            "type": q.variable.type,
                            "value_labels": len(q.variable.value_labels),
                            "missing": [s.describe() for s in q.variable.missing],
                            "eligible": totals[0],
                            "answered": answered,
                            "rows": file_rows,
                            "file": file_name,
                            "sha256": sha,
                        }
                    )
    return rows
