"""The delivery log: one row per message, in a SQLite file (WAL mode) beside the study database.

Why not DuckDB: sending can take minutes and the study database allows one writer, so the log lives in
its own file and a send never holds the study lock. Each status change is its own durable commit
(``synchronous=FULL``): a row is written ``sending`` before the SMTP DATA command and becomes ``sent`` only
after the server accepted the message. A row still ``sending`` when the next run starts was cut off by a
crash; it becomes ``uncertain`` and is not sent again without ``--resend``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context import Clock, system_clock
from ..errors import OutputError

LOG_NAME = "wavetool-delivery.sqlite"
SEND_LOCK_NAME = ".wavetool-send.lock"
STATUSES = ("sending", "sent", "failed", "uncertain")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber TEXT NOT NULL,
    wave INTEGER NOT NULL,
    report_sha256 TEXT NOT NULL,
    recipients TEXT NOT NULL,           -- JSON {"to": [...], "cc": [...], "bcc": [...]}
    message_id TEXT NOT NULL,
    transport TEXT NOT NULL,            -- 'outbox' | 'smtp'
    destination TEXT,                   -- the .eml file, or host:port
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'uncertain')),
    attempts INTEGER NOT NULL DEFAULT 0,
    temporary INTEGER NOT NULL DEFAULT 0, -- 1 when the last failure was a 4xx/deferral
    error TEXT,                         -- the server's words, or what went wrong
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_report ON deliveries (wave, subscriber, id);
"""
# Added with data books ([delivery] attach): the sha256 of the .xlsx sent with the report (NULL: none).
_BOOK_COLUMN = "ALTER TABLE deliveries ADD COLUMN book_sha256 TEXT"


def log_path(study: Path) -> Path:
    """Where a study's delivery log lives."""
    return Path(study) / LOG_NAME


def now_text(clock: Clock = system_clock) -> str:
    """``clock``'s UTC time as ISO 8601 text with a Z suffix (what the log stores)."""
    return clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Delivery:
    """One row of the delivery log."""

    id: int
    subscriber: str
    wave: int
    report_sha256: str
    recipients: dict[str, list[str]]
    message_id: str
    transport: str
    destination: str | None
    status: str
    attempts: int
    temporary: bool
    error: str | None
    created_at: str
    updated_at: str
    sent_at: str | None
    book_sha256: str | None = None  # the data book attached beside the PDF, if any

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row(row: sqlite3.Row) -> Delivery:
    values = dict(row)
    values["recipients"] = json.loads(values["recipients"])
    values["temporary"] = bool(values["temporary"])
    return Delivery(**values)


class DeliveryLog:
    """The study's delivery log; every method commits at once (autocommit)."""

    def __init__(self, study: Path, *, create: bool = True, clock: Clock = system_clock) -> None:
        self.path, self.clock = log_path(study), clock
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        try:
            self.con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path}: cannot open the delivery log: {exc}") from None
        self.con.row_factory = sqlite3.Row
        self.con.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the SMTP DATA that follows it, even across a power cut.
        self.con.execute("PRAGMA synchronous=FULL")
        if create:
            self.con.executescript(_SCHEMA)
            columns = {r[1] for r in self.con.execute("PRAGMA table_info(deliveries)").fetchall()}
            if "book_sha256" not in columns:
                self.con.execute(_BOOK_COLUMN)
            self.con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DeliveryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(
        self,
        *,
        subscriber: str,
        wave: int,
        report_sha256: str,
        recipients: dict[str, list[str]],
        message_id: str,
        transport: str,
        destination: str | None,
        book_sha256: str | None = None,
    ) -> int:
        """Record a message as ``sending`` (committed) and return its row id; call before handing it over."""
        stamp = now_text(self.clock)
        cur = self.con.execute(
            "INSERT INTO deliveries (subscriber, wave, report_sha256, recipients, message_id, transport, destination,"
            " status, attempts, created_at, updated_at, book_sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'sending', 0, ?, ?, ?)",
            [
                subscriber,
                wave,
                report_sha256,
                json.dumps(recipients, sort_keys=True),
                message_id,
                transport,
                destination,
                stamp,
                stamp,
                book_sha256,
            ],
        )
        return int(cur.lastrowid)

    def finish(
        self,
        row_id: int,
        status: str,
        *,
        error: str | None = None,
        temporary: bool = False,
        destination: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Move a row to ``sent``, ``failed`` or ``uncertain`` (with how many tries it took)."""
        if status not in STATUSES or status == "sending":
            raise ValueError(f"cannot finish a delivery as {status!r}")
        stamp = now_text(self.clock)
        self.con.execute(
            "UPDATE deliveries SET status = ?, error = ?, temporary = ?, updated_at = ?,"
            " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, destination = coalesce(?, destination),"
            " attempts = coalesce(?, attempts) WHERE id = ?",
            [status, error, int(temporary), stamp, status, stamp, destination, attempts, row_id],
        )

    def confirm(self, row_ids: list[int], note: str) -> None:
        """Mark rows ``sent`` in one statement (all or none), e.g. after the mail server's log showed them."""
        stamp = now_text(self.clock)
        marks = ", ".join("?" for _ in row_ids)
        self.con.execute(
            f"UPDATE deliveries SET status = 'sent', error = ?, temporary = 0, updated_at = ?, sent_at = ?"
            f" WHERE id IN ({marks})",
            [note, stamp, stamp, *row_ids],
        )

    def interrupted(self) -> list[Delivery]:
        """Rows left ``sending`` by a run that died; only meaningful while holding the send lock."""
        rows = self.con.execute("SELECT * FROM deliveries WHERE status = 'sending' ORDER BY id").fetchall()
        return [_row(r) for r in rows]

    def latest(self, wave: int) -> dict[str, Delivery]:
        """The most recent delivery of each subscriber's report for ``wave`` (that decides what to send)."""
        rows = self.con.execute(
            "SELECT * FROM deliveries d WHERE wave = ? AND id = (SELECT max(id) FROM deliveries e"
            " WHERE e.wave = d.wave AND e.subscriber = d.subscriber)",
            [wave],
        ).fetchall()
        return {r["subscriber"]: _row(r) for r in rows}

    def sent_for(self, wave: int, subscriber: str) -> list[Delivery]:
        """Every message accepted for this subscriber's report of ``wave``, oldest first."""
        rows = self.con.execute(
            "SELECT * FROM deliveries WHERE wave = ? AND subscriber = ? AND status = 'sent' ORDER BY id",
            [wave, subscriber],
        ).fetchall()
        return [_row(r) for r in rows]

    def rows(self, wave: int | None = None) -> list[Delivery]:
        """Every row (optionally of one wave), oldest first."""
        if wave is None:
            rows = self.con.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
        else:
            rows = self.con.execute("SELECT * FROM deliveries WHERE wave = ? ORDER BY id", [wave]).fetchall()
        return [_row(r) for r in rows]

    def summary(self) -> list[dict[str, Any]]:
        """Per wave and status: how many subscribers' latest message is in that status."""
        rows = self.con.execute(
            "SELECT wave, status, count(*) AS n, max(updated_at) AS last FROM deliveries d"
            " WHERE id = (SELECT max(id) FROM deliveries e WHERE e.wave = d.wave AND e.subscriber = d.subscriber)"
            " GROUP BY wave, status ORDER BY wave, status"
        ).fetchall()
        return [dict(r) for r in rows]


@contextlib.contextmanager
def open_log(study: Path, clock: Clock = system_clock) -> Iterator[DeliveryLog]:
    """The study's delivery log (created if missing), closed on exit; its time stamps come from ``clock``."""
    log = DeliveryLog(study, clock=clock)
    try:
        yield log
    finally:
        log.close()


def read_log(study: Path) -> DeliveryLog | None:
    """The delivery log if the study has one (for status), else None; never creates it."""
    try:
        return DeliveryLog(study, create=False)
    except FileNotFoundError:
        return None
