"""The study's DuckDB database: opening it safely, numbered migrations, and the study lock.

Writers take the study lock (an ``fcntl`` lock on ``.wavetool.lock``) for the short transaction that
writes; readers open DuckDB read-only. Both wait a little when another process has the database open
and then fail with a message naming the holder rather than DuckDB's raw error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb

from .errors import InputMissingError, OutputError, StudyLockedError
from .sql import quote  # noqa: F401  (re-exported: callers import quote from store)

DB_NAME = "wavetool.duckdb"
LOCK_NAME = ".wavetool.lock"
_PID_RE = re.compile(r"PID (\d+)")


def db_path(study: Path) -> Path:
    """Where the study's DuckDB file lives."""
    return Path(study) / DB_NAME


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped with wavetool: (version, name, SQL), in order."""
    found = []
    for entry in files("wavetool").joinpath("migrations").iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


def _connect_once(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only, config={"threads": max(os.cpu_count() or 1, 1)})
    quiet(con)
    return con


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Turn off DuckDB's own progress bar: it would print on stdout, even when piped, for slow queries."""
    con.execute("SET enable_progress_bar = false")
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_STORAGE_FAILURES = ("No space left on device", "Read-only file system", "Could not write file", "Disk quota exceeded")


def _is_storage_failure(exc: BaseException) -> bool:
    """Whether an error from a write is the disk's fault (full, read-only) rather than a bug."""
    return isinstance(exc, (duckdb.IOException, OSError)) or any(text in str(exc) for text in _STORAGE_FAILURES)


def _lock_holder(message: str) -> str:
    match = _PID_RE.search(message)
    return f"PID {match[1]}" if match else "another process"


def connect(study: Path, read_only: bool = False, timeout: float = 10.0) -> duckdb.DuckDBPyConnection:
    """Open the study database, waiting up to ``timeout`` seconds if another process holds it.

    A database a previous release made is upgraded first (read-only too: the readers' SQL needs the
    current schema), under the study lock."""
    path = db_path(study)
    if not path.exists():
        raise InputMissingError(
            f"{path}: no study database here", hint=f"run `wavetool init {study}` first, or pass --study DIR"
        )
    con = _open(path, read_only, timeout)
    if not read_only:
        migrate(con)
    elif pending_migrations(con):
        con.close()
        with study_lock(study, timeout=timeout, purpose="wavetool: upgrading the study database"):
            writer = _open(path, False, timeout)
            try:
                migrate(writer)
            finally:
                writer.close()
        con = _open(path, True, timeout)
    return con


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            con = _connect_once(path, read_only)
            break
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" not in text.lower():
                raise OutputError(f"{path}: cannot open the study database: {text}") from None
            if time.monotonic() >= deadline:
                raise StudyLockedError(
                    f"{path}: study is busy (held by {_lock_holder(text)})",
                    hint="wait for the other wavetool run to finish, then try again",
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    return con


def create_database(study: Path) -> Path:
    """Create an empty, fully migrated study database if there is none; return its path."""
    path = db_path(study)
    con = _connect_once(path, read_only=False)
    try:
        migrate(con)
    finally:
        con.close()
    return path


def pending_migrations(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The versions of the shipped migrations this database has not applied yet."""
    try:
        applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    except duckdb.CatalogException:
        applied = set()
    return [version for version, _, _ in migrations() if version not in applied]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded in the database, each in its own transaction."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    done = []
    for version, name, sql in migrations():
        if version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(version)
    return done


@contextlib.contextmanager
def read_store(study: Path, timeout: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the study database, closed on exit."""
    con = connect(study, read_only=True, timeout=timeout)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def study_lock(study: Path, timeout: float = 60.0, purpose: str = "wavetool", name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold the study's exclusive lock; wait up to ``timeout`` seconds, then raise StudyLockedError.

    ``name`` picks another lock file in the study folder (``wavetool run`` and ``wavetool send`` hold their own
    for their whole duration, so the short store writes inside them still take this one without deadlock)."""
    lock_path = Path(study) / name
    try:
        handle = open(lock_path, "a+", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{lock_path}: cannot create the study lock: {exc.strerror}") from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise StudyLockedError(
                        f"{study}: study is busy (held by {holder})",
                        hint="wait for the other wavetool run to finish, or raise [pipeline] lock_timeout",
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()}: {purpose}")
        handle.flush()
        yield lock_path
    finally:
        with contextlib.suppress(OSError):
            handle.truncate(0)
        handle.close()  # closing releases the flock


@contextlib.contextmanager
def write_store(study: Path, timeout: float = 60.0, purpose: str = "wavetool") -> Iterator[duckdb.DuckDBPyConnection]:
    """The study lock plus a read-write connection, for the short span in which a command writes."""
    with study_lock(study, timeout=timeout, purpose=purpose):
        con = connect(study, read_only=False, timeout=timeout)
        try:
            yield con
        except (duckdb.Error, OSError) as exc:
            if not _is_storage_failure(exc):
                raise
            # Disk full or a read-only folder mid-write: DuckDB rolls the transaction back; say so plainly.
            raise OutputError(
                f"{db_path(study)}: cannot write the study database: {_first_line(exc)}",
                hint="free disk space or make the study folder writable, then run the command again (nothing was changed)",
            ) from None
        finally:
            with contextlib.suppress(duckdb.Error):
                con.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One all-or-nothing transaction: committed on success, rolled back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def wave_table(wave: int) -> str:
    """The name of the wide table holding one wave's respondents."""
    return f"wave_{int(wave)}"


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, or None; fetches everything so the connection is free for the next
    statement (DuckDB 2 refuses new work while a result is only partly fetched)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The whole result of a query, in its order, as an Arrow table.

    The query runs into a temporary table that is then read as a relation: a relation over the query
    itself (``con.sql``) would bind it once to describe it and again to run it, which for the long
    generated queries of the tables costs more than the copy."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _wt_result AS {sql}")
    try:
        return con.sql("SELECT * FROM _wt_result").to_arrow_table()
    finally:
        con.execute("DROP TABLE _wt_result")
