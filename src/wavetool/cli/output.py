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


@contextlib.contextmanager
def progress_steps(console: Console, title: str) -> Iterator[Any]:
    """A callback that reports steps: a spinner on a terminal, nothing animated otherwise."""
    if not console.is_terminal:
        yield lambda _message: None
        return
    with console.status(title) as status:
        yield lambda message: status.update(f"{title}: {message}")
