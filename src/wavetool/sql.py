"""SQL text helpers used by every module that writes SQL: identifier quoting, literals, the canonical
text of a code, and the user-missing condition. One rule each, so Python and SQL never disagree.

The canonical code text (the rule, in Python and in SQL): an integral number below 1e18 in magnitude is
written as an integer (``1.0`` -> ``'1'``, ``-9.0`` -> ``'-9'``); any other number as the shortest text
that reads back to the same double (``1.5``, ``-0.25``, ``1e+18``); a string as itself (SQL: trimmed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Below 1e18 every integral double fits a BIGINT, so the SQL and Python integer texts agree.
INTEGER_TEXT_LIMIT = 1e18


def quote(identifier: str) -> str:
    """A SQL identifier, double-quoted so any variable name from a file is safe in SQL."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a string (quotes doubled), a number or None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def escaped(text: str) -> str:
    """``text`` with its single quotes doubled, for splicing inside a SQL string literal."""
    return text.replace("'", "''")


def text_list(values: Iterable[str]) -> str:
    """A SQL list literal of strings: ``['a', 'b']``."""
    return "[" + ", ".join(literal(str(v)) for v in values) + "]"


def code_text(value: Any) -> str:
    """The canonical text of a code: ``1.0`` -> ``'1'``, ``1.5`` -> ``'1.5'``, ``'ON'`` -> ``'ON'``."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < INTEGER_TEXT_LIMIT else repr(number)
    return str(value)


def code_text_sql(column: str, string: bool = False) -> str:
    """SQL giving a column's canonical code text (the same text :func:`code_text` gives in Python);
    ``string`` columns are trimmed."""
    if string:
        return f"trim({column})"
    return (
        f"CASE WHEN {column} = floor({column}) AND abs({column}) < 1e18"
        f" THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"
    )


def missing_condition(column: str, specs: Iterable[Any], string: bool = False) -> str:
    """A SQL condition true where ``column`` holds one of the user-missing declarations ``specs``
    (objects with ``kind`` 'value' or 'range', ``code``, ``low``, ``high``: codebook.MissingSpec)."""
    parts = []
    for spec in specs:
        if spec.kind == "value" and string and spec.code is not None:
            parts.append(f"{column} = {literal(spec.code)}")
        elif spec.kind == "value" and spec.low is not None:
            parts.append(f"{column} = {spec.low!r}")
        elif spec.kind == "range":
            low = "'-inf'::DOUBLE" if spec.low is None else repr(float(spec.low))
            high = "'inf'::DOUBLE" if spec.high is None else repr(float(spec.high))
            parts.append(f"{column} BETWEEN {low} AND {high}")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
