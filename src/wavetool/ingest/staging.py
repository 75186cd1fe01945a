"""The staging database: a private, temporary DuckDB file that files are decoded into before the lock.

Decoding streams a file's rows in batches into staging (memory bounded: DuckDB spills to disk), the
checks run there as SQL, and only then does the import take the study lock and copy the staged tables
into the study database in one transaction. Staging lives in the system temporary folder (``TMPDIR``),
never in the study folder, so a failed import leaves the study exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from ..codebook import Variable
from ..errors import DataError, OutputError
from ..store import quiet, quote

PREFIX = "wavetool-import-"
STAGING_MEMORY = "512MB"  # DuckDB's share of an import's memory; beyond it, staging spills to disk
SPSS_EPOCH = 12219379200  # seconds from SPSS's day zero (1582-10-14) to 1970-01-01


def _remove_stale() -> None:
    """Delete staging folders left by imports that were killed (their process no longer exists)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


class Staging:
    """A temporary DuckDB database (and folder for scratch files), removed on close."""

    def __init__(self, in_memory: bool = False) -> None:
        _remove_stale()
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
        except OSError as exc:
            raise OutputError(f"{tempfile.gettempdir()}: cannot create a staging folder: {exc.strerror}",
                              hint="free space in the temporary folder or point TMPDIR elsewhere") from None
        self.path = None if in_memory else self.folder / "staging.duckdb"
        config = {"memory_limit": STAGING_MEMORY, "preserve_insertion_order": True,
                  "temp_directory": str(self.folder / "spill")}
        self.con: duckdb.DuckDBPyConnection | None = quiet(
            duckdb.connect(str(self.path) if self.path else ":memory:", config=config))

    def close_connection(self) -> None:
        """Close the connection (checkpointing the file) so another connection may ATTACH it."""
        if self.con is not None:
            self.con.close()
            self.con = None

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.close_connection()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamError(Exception):
    """The first error raised by a batch source while DuckDB was pulling from it."""


def stream_into(
    con: duckdb.DuckDBPyConnection,
    table: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    columns: Callable[[pa.Schema], list[str]],
    observe: Callable[[pa.RecordBatch], None] | None = None,
) -> int:
    """``CREATE TABLE table AS SELECT columns(schema) FROM batches``, streamed; the number of rows.

    ``observe`` sees every batch on its way in. An error inside ``batches`` is re-raised as it was (not as
    DuckDB's wrapping of it)."""
    failure: list[BaseException] = []

    def guarded() -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                if observe is not None:
                    observe(batch)
                yield batch
        except Exception as exc:
            failure.append(exc)
        except BaseException as exc:  # a Rust panic (pyo3 PanicException) derives from BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                raise
            failure.append(exc)

    reader = pa.RecordBatchReader.from_batches(schema, guarded())
    name = f"__stream_{table}"
    con.register(name, reader)
    try:
        con.execute(f"CREATE TABLE {quote(table)} AS SELECT {', '.join(columns(schema))} FROM {quote(name)}")
    except duckdb.Error as exc:
        if failure:
            raise failure[0] from None
        raise DataError(f"cannot stage the decoded values: {str(exc).splitlines()[0]}") from None
    finally:
        con.unregister(name)
    if failure:
        raise failure[0]
    return con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0]


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_time(arrow_type):
        return "time"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return "string"
    return "number"


def canonical_column(name: str, arrow_type: pa.DataType, variable: Variable) -> str:
    """The SQL that stores one decoded column in wavetool's canonical type, whichever reader decoded it.

    Strings are VARCHAR; ``date`` variables DATE; ``datetime`` variables TIMESTAMP; every other numeric
    variable DOUBLE with SPSS's own number (a TIME or DTIME value is its seconds, as SPSS stores it).
    pyreadstat hands over dates as SPSS seconds since 1582-10-14, polars-readstat as Arrow dates: both
    end up identical."""
    col, kind = quote(name), _kind(arrow_type)
    if variable.type == "string":
        expr = col if kind == "string" else f"CAST({col} AS VARCHAR)"
    elif variable.type == "date":
        expr = {
            "date": col,
            "timestamp": f"CAST({col} AS DATE)",
            "number": f"DATE '1582-10-14' + CAST(floor({col} / 86400) AS INTEGER)",
        }.get(kind, f"CAST({col} AS DATE)")
    elif variable.type == "datetime":
        expr = {
            "date": f"CAST({col} AS TIMESTAMP)",
            "timestamp": f"CAST({col} AS TIMESTAMP)",
            "number": f"TIMESTAMP '1582-10-14' + to_microseconds(CAST(round({col} * 1e6) AS BIGINT))",
        }.get(kind, f"CAST({col} AS TIMESTAMP)")
    else:
        expr = {
            "date": f"epoch({col}) + {SPSS_EPOCH}",
            "timestamp": f"epoch({col}) + {SPSS_EPOCH}",
            "time": f"epoch({col})",
        }.get(kind, f"CAST({col} AS DOUBLE)")
    return f"{expr} AS {col}"
