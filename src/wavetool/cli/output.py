"""How the CLI prints: rich tables on a terminal, plain text and no animation when piped, JSON on request."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def make_console(stderr: bool = False) -> Console:
    """A console that never hard-wraps (cron logs keep whole paths) and is plain when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    # Piped output (cron, logs) gets wide tables rather than rich's default of 80 columns.
    width = 200 if piped and "COLUMNS" not in os.environ else None
    return Console(stderr=stderr, soft_wrap=True, highlight=False, emoji=False, width=width)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (dates and paths as strings)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich table with the given columns; ``None`` cells print as empty."""
    out = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


class _Steps:
    """The callback ``progress_steps`` yields: ``step(message)``, and ``step.rows(done, total)`` for a bar."""

    def __init__(self, progress: Any, task: Any, title: str) -> None:
        self.progress, self.task, self.title = progress, task, title

    def __call__(self, message: str) -> None:
        self.progress.update(self.task, description=f"{self.title}: {message}")

    def rows(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)


@contextlib.contextmanager
def progress_steps(console: Console, title: str) -> Iterator[Any]:
    """A callback that reports steps (and, through ``.rows(done, total)``, rows done): a spinner and a
    progress bar on a terminal, nothing animated (and nothing printed) otherwise."""
    if not console.is_terminal:
        quiet = lambda _message: None  # noqa: E731
        quiet.rows = lambda _done, _total: None  # type: ignore[attr-defined]
        yield quiet
        return
    # lazy: rich.progress is only needed on a terminal, and the CLI should start fast
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield _Steps(progress, progress.add_task(title, total=None), title)
