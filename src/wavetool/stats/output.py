"""The result of tabulating: rows, summaries and the suppression audit, and their writers.

The tables are kept as Arrow tables (fast to build, write and hand to the PDF renderer); ``rows``,
``summaries`` and ``suppressed`` give them as lists of dicts. Every writer carries the same fields, and a
suppressed cell is the same everywhere: empty value, ``suppressed`` true, ``suppression_reason`` set.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import OutputError
from ..fsutil import write_atomic

ROW_KEYS_FIRST = ("wave", "scope", "question", "code", "label", "missing", "n", "weighted_n", "percent")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _csv_column(column: pa.ChunkedArray) -> list[Any]:
    """A column's CSV cells: empty for null (and NaN or infinity), true/false for booleans, else the value."""
    values = column.to_pylist()
    if pa.types.is_boolean(column.type):
        return ["" if v is None else ("true" if v else "false") for v in values]
    if pa.types.is_floating(column.type):
        return ["" if v is None or not math.isfinite(v) else v for v in values]
    return ["" if v is None else v for v in values]


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in table.to_pylist()]


@dataclass
class Tables:
    """Weighted tables of one or more waves for a list of scopes.

    ``rows``: one dict per (wave, scope, question, code); ``summaries``: one per (wave, scope, question);
    ``suppressed``: the audit of what was withheld and why; ``meta``: how they were computed."""

    rows_table: pa.Table
    summaries_table: pa.Table
    suppressed_table: pa.Table
    meta: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        return _records(self.rows_table)

    @cached_property
    def summaries(self) -> list[dict[str, Any]]:
        return _records(self.summaries_table)

    @cached_property
    def suppressed(self) -> list[dict[str, Any]]:
        return _records(self.suppressed_table)

    def summary(self, wave: int, scope: str, question: str) -> dict[str, Any] | None:
        """The summary of one question in one scope, or None."""
        return next(
            (s for s in self.summaries if s["wave"] == wave and s["scope"] == scope and s["question"] == question), None
        )

    def question_rows(self, wave: int, scope: str, question: str) -> list[dict[str, Any]]:
        """The code rows of one question in one scope, in display order."""
        return [r for r in self.rows if r["wave"] == wave and r["scope"] == scope and r["question"] == question]

    # --- writers -------------------------------------------------------------------------------------

    def to_csv(self, target: str | Path | IO[str] | IO[bytes], table: str = "rows") -> None:
        """Write one table (``rows``, ``summaries`` or ``suppressed``) as CSV to a path or a stream.
        Empty cells are empty; booleans are ``true``/``false``; percents are in 0-100 units."""
        write_csv(target, self._table(table))

    def to_json(self, target: str | Path | IO[str] | None = None) -> str:
        """The tables as one JSON document {meta, rows, summaries, suppressed}; written to ``target``
        when given, and returned."""
        text = json.dumps(
            {"meta": self.meta, "rows": self.rows, "summaries": self.summaries, "suppressed": self.suppressed},
            ensure_ascii=False,
            indent=1,
            default=str,
        )
        if target is not None:
            _write(target, (text + "\n").encode("utf-8"))
        return text

    def to_parquet(self, path: str | Path, table: str = "rows") -> None:
        """Write one table as Parquet (the study's metadata is stored in the file's key-value metadata)."""
        write_parquet(path, self._table(table), self.meta)

    def write(self, path: str | Path, format: str = "csv") -> Path | None:
        """Write the tables to ``path`` as ``csv``, ``json`` or ``parquet``: the one writer `tabulate --output`
        and `wavetool run` share. CSV and Parquet get the suppression audit beside them, ``NAME-suppressed.csv``
        (or ``.parquet``), which is returned; JSON holds its audit inside (None is returned). A file whose
        content did not change is left as it was (with its time stamp)."""
        path = Path(path)
        if format == "json":
            self.to_json(path)
            return None
        if format not in ("csv", "parquet"):
            raise ValueError(f"unknown format {format!r}; one of csv, json, parquet")
        audit = path.with_name(f"{path.stem}-suppressed.{format}")
        for target, table in ((path, "rows"), (audit, "suppressed")):
            if format == "csv":
                self.to_csv(target, table=table)
            else:
                self.to_parquet(target, table=table)
        return audit

    def _table(self, name: str) -> pa.Table:
        tables = {"rows": self.rows_table, "summaries": self.summaries_table, "suppressed": self.suppressed_table}
        if name not in tables:
            raise ValueError(f"unknown table {name!r}; one of {', '.join(tables)}")
        return tables[name]


def write_parquet(path: str | Path, data: pa.Table, meta: dict[str, Any]) -> None:
    """Write ``data`` as Parquet through a temporary file (``meta`` goes in the key-value metadata)."""
    data = data.replace_schema_metadata(
        {**(data.schema.metadata or {}), b"wavetool": json.dumps(meta, default=str).encode()}
    )
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(data, str(tmp))
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc}") from None


def write_csv(target: str | Path | IO[str] | IO[bytes], data: pa.Table) -> None:
    """Write ``data`` as CSV (see :meth:`Tables.to_csv` for how cells are written)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(data.column_names)
    # Column by column: converting each column once is several times faster than a dict per row.
    writer.writerows(zip(*(_csv_column(column) for column in data.columns), strict=True))
    _write(target, buffer.getvalue().encode("utf-8"))


def _write(target: str | Path | IO[str] | IO[bytes], payload: bytes) -> None:
    if isinstance(target, (str, Path)):
        path = Path(target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file() and path.stat().st_size == len(payload) and path.read_bytes() == payload:
                return  # unchanged: the old file stays, with its time stamp (a re-run touches nothing)
            write_atomic(path, payload)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        return
    if isinstance(target, io.TextIOBase) or hasattr(target, "encoding"):
        target.write(payload.decode("utf-8"))  # type: ignore[arg-type]
    else:
        target.write(payload)  # type: ignore[arg-type]
