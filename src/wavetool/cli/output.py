"""How the CLI prints: rich tables on a terminal, plain text and no animation when piped, JSON on request."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..context import Progress

# A cell that reads as a number: 12, -3.5, 1,234, 68.6%, or an interval 61.2–70.4.
_NUMBER = re.compile(r"\A[-+−]?\d[\d,]*(\.\d+)?%?(–[-+−]?\d[\d,]*(\.\d+)?%?)?\Z")


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


def _is_number(cell: Any) -> bool:
    if isinstance(cell, bool):
        return False
    return isinstance(cell, (int, float)) or bool(_NUMBER.match(str(cell)))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich table with the given columns; ``None`` cells print as empty. Cells are plain text, never rich
    markup (a suggested ``[[crosswalk]]`` entry must print as typed), and a column whose every filled cell
    is a number is right-aligned, so that digits line up."""
    out = Table(title=Text(title) if title else None, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        cells = [row[i] for row in rows if i < len(row) and row[i] not in (None, "")]
        numeric = bool(cells) and all(_is_number(cell) for cell in cells)
        out.add_column(Text(column), overflow="fold", justify="right" if numeric else "left")
    for row in rows:
        out.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return out


# Steps that must stay on screen (not only in wavetool.log) while the live line redraws itself.
_NOTICE = re.compile(r"warning:|FAILED|UNCERTAIN| deferred,|refused")


class _Bar(Progress):
    """The live display on a terminal: a spinner, the title and the current step, a bar when counting.
    Warnings and failures are printed above it, where they stay."""

    def __init__(self, progress: Any, task: Any, title: str) -> None:
        self.progress, self.task, self.title = progress, task, title

    def step(self, message: str) -> None:
        if _NOTICE.search(message):
            self.progress.console.print(message, markup=False, style="yellow")
        self.progress.update(self.task, description=f"{self.title}: {message}")

    def count(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)


class _Lines(Progress):
    """Piped (cron, logs): each step as one plain line, no animation; counts are not printed."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def step(self, message: str) -> None:
        self.console.print(message, markup=False)


@contextlib.contextmanager
def progress_display(console: Console, title: str, *, lines: bool = False, quiet: bool = False) -> Iterator[Progress]:
    """The CLI's one progress display, a :class:`~wavetool.context.Progress`: a live line and bar on a
    terminal; when piped, each step as a plain line if ``lines`` (``wavetool run``), else nothing; nothing at
    all when ``quiet`` (``--json``)."""
    if quiet or not console.is_terminal:
        yield _Lines(console) if lines and not quiet else Progress()
        return
    # lazy: rich.progress is only needed on a terminal, and the CLI should start fast
    from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console, transient=True) as progress:
        yield _Bar(progress, progress.add_task(title, total=None), title)
