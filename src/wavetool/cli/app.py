"""The typer application and what every command receives (its :class:`AppContext`).

Command modules import ``app`` and ``ctx_obj`` from here and register themselves; ``cli/__init__`` imports
them all and holds :func:`main`. (Keeping ``app`` out of ``cli/__init__`` is what stops the command modules
and the package from importing each other.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from typer.core import TyperOption

from .. import __version__
from ..config import StudyConfig, find_study, load_config
from ..context import Clock, Context, system_clock
from .output import make_console, progress_display

app = typer.Typer(
    name="wavetool",
    help="Run a multi-wave public-sector survey: import, harmonise, tabulate, report and deliver.\n\n"
    "Example: wavetool --study demo status",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_type_column = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """Help's type column for an option: empty for an on/off flag (typer prints `<bool>` after every one,
    which reads as if the flag took a value)."""
    return None if self.is_flag else _type_column(self, ctx)


TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]


@dataclass
class AppContext:
    """What every command receives: the study folder, the config (loaded once, on first use), the two
    consoles (``out`` for results, ``err`` for warnings and errors) and the clock. :meth:`run` gives the
    library its :class:`~wavetool.context.Context`: this clock and the CLI's one progress display. The study
    folder given as ``study_option`` (None: found upward from the current directory, as git finds a
    repository)."""

    study_option: Path | None
    traceback: bool = False
    _config: StudyConfig | None = None
    out: Console = field(default_factory=make_console)
    err: Console = field(default_factory=lambda: make_console(stderr=True))
    clock: Clock = system_clock

    @property
    def study(self) -> Path:
        return self.study_option if self.study_option is not None else find_study(Path.cwd())

    @property
    def config(self) -> StudyConfig:
        if self._config is None:
            self._config = load_config(self.study)
        return self._config

    def context(self) -> Context:
        """The library Context of a command that shows no progress: just the clock."""
        return Context(clock=self.clock)

    @contextlib.contextmanager
    def run(self, title: str, *, lines: bool = False, quiet: bool = False) -> Iterator[Context]:
        """The library Context of one command: progress shown on ``out`` under ``title`` (a live bar on a
        terminal; when piped, each step as a plain line with ``lines``, else nothing; nothing when ``quiet``)."""
        with progress_display(self.out, title, lines=lines, quiet=quiet) as progress:
            yield Context(progress=progress, clock=self.clock)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wavetool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    study: Path | None = typer.Option(
        None,
        "--study",
        "-C",
        envvar="WAVETOOL_STUDY",
        help="Study folder (holds wavetool.toml). Default: the current folder or the nearest one above it that holds"
        " a wavetool.toml.",
        file_okay=False,
    ),
    traceback: bool = typer.Option(
        False, "--traceback", help="Show the full stack trace of an error (for bug reports)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Run a multi-wave public-sector survey: import, harmonise, tabulate, report and deliver.

    Example: wavetool --study demo status
    """
    ctx.obj = AppContext(study_option=study, traceback=traceback)


def ctx_obj(ctx: typer.Context) -> AppContext:
    """The AppContext of the running command."""
    return ctx.find_root().obj
