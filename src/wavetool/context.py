"""The explicit context a library call runs in: a clock and the one progress protocol.

The CLI builds one per command (``cli/app.py``: its consoles and its progress display) and passes it down;
every stage (import, merge, tables, render, send, the run) reports through ``ctx.progress`` and reads the
time from ``ctx.clock`` only, so a test can fix both. The library never prints: a Progress is where the
caller chose to show things. ``QUIET`` (the default everywhere) reports nowhere and reads the system clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

Clock = Callable[[], dt.datetime]  # returns an aware UTC datetime


def system_clock() -> dt.datetime:
    """The real time, in UTC."""
    return dt.datetime.now(dt.UTC)


def fixed_clock(at: dt.datetime) -> Clock:
    """A clock that always reads ``at`` (naive means UTC): for tests and reproducible runs."""
    moment = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return lambda: moment


class Progress:
    """The one progress protocol: ``step(message)`` says what a stage is doing now, ``count(done, total)``
    how far it is through its items (rows read, reports rendered; ``total`` None when unknown).
    This base class reports nowhere; a display (the CLI's) or a log overrides both."""

    def step(self, message: str) -> None:
        pass

    def count(self, done: int, total: int | None) -> None:
        pass


class _Prefixed(Progress):
    """Steps of a sub-stage, each message prefixed (``render: ...``) before it reaches the outer Progress."""

    def __init__(self, outer: Progress, prefix: str) -> None:
        self.outer, self.prefix = outer, prefix

    def step(self, message: str) -> None:
        self.outer.step(f"{self.prefix}{message}")

    def count(self, done: int, total: int | None) -> None:
        self.outer.count(done, total)


@dataclass(frozen=True)
class Context:
    """A clock and a Progress, passed explicitly (``ctx=``) from the CLI down to every stage."""

    progress: Progress = field(default_factory=Progress)
    clock: Clock = system_clock

    def now(self) -> dt.datetime:
        """Now as the database stores it: naive UTC, whole seconds."""
        return self.clock().astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)

    def stamp(self) -> str:
        """Now as text for logs and summaries: ``2026-03-01T09:30:00Z``."""
        return self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def with_progress(self, progress: Progress) -> Context:
        """The same clock, reporting to ``progress``."""
        return replace(self, progress=progress)

    def prefixed(self, prefix: str) -> Context:
        """The same clock, each step message prefixed with ``prefix`` (a pipeline stage's name)."""
        return replace(self, progress=_Prefixed(self.progress, prefix))


QUIET = Context()
